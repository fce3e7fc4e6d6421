"""Figures of the beam paper: the pitch-angle eigenfunction with its sharp peak."""

import numpy as np

from crsky.physics import pitch_angle


def plot_beam_eigenfunction(eps=2.1e-3, delta=1e-4, u=0.0, profile: str = "matched"):
    """Analogue of the beam paper's Fig. 2: Φ(μ) (D ≡ 1, dashed) and Ψ(μ) (solid), inset at μ → 1.

    Ψ is scaled to the L² fit of the outer solution, so the two curves coincide away from the
    peaks and the tip deficit is the beam's fractional excess. Returns a matplotlib ``Figure``
    (Agg backend, nothing is shown or saved).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sol = pitch_angle.solve(eps, delta, u, profile, 1)
    flat = pitch_angle.solve(eps, delta, u, "flat", 1, mesh_profile=profile)
    mu, psi, phi = (np.asarray(a) for a in (sol.mu, sol.psi[0], flat.psi[0]))
    psi = psi / np.sum(np.asarray(sol.weights) * psi * phi)
    b = float(pitch_angle.peak_width(eps))
    fig = Figure(figsize=(6.0, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(mu, phi, "k--", label=r"$\Phi(\mu)$, $D\equiv1$")
    ax.plot(mu, psi, "C0-", label=rf"$\Psi(\mu)$, {profile}, $\varepsilon$={eps:g}")
    ax.set_xlabel(r"$\mu=\cos\vartheta$")
    ax.set_ylabel("eigenfunction (outer solutions matched)")
    ax.legend(loc="upper left", frameon=False)
    inset = ax.inset_axes([0.52, 0.12, 0.44, 0.42])
    near = mu > 1.0 - 4.0 * b
    inset.plot(mu[near], phi[near], "k--")
    inset.plot(mu[near], psi[near], "C0-")
    inset.axvline(1.0 - b, color="0.6", lw=0.8)
    inset.set_title(r"$\mu\to1$ (grey: $1-b$)", fontsize=8)
    inset.tick_params(labelsize=7)
    return fig


def _figure(width=6.0, height=4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_energy_dependence(table: dict):
    """Width and fractional excess over energy (a :func:`crsky.physics.beam.energy_dependence`
    table), with the paper's scalings width ∝ √E and excess ≈ λ1 b/2 ∝ E (dashed) and, below,
    the local power-law indices. Returns a matplotlib ``Figure``."""
    e = np.asarray(table["energy_tev"])
    fig = _figure(6.0, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.loglog(e, table["width_deg"], "C0-",
               label=r"width $\Delta\vartheta=j_1\sqrt{\varepsilon}$ (deg)")
    top.loglog(e, table["fractional_excess"], "C1-", label="fractional excess (eigen)")
    top.loglog(e, table["fractional_excess_leading"], "C1--", label=r"$\lambda_1 b/2\propto E$")
    top.set_ylabel("observable")
    top.legend(frameon=False, fontsize=8)
    bottom.semilogx(e, table["width_index"], "C0-", label=r"$d\ln\Delta\vartheta/d\ln E$")
    bottom.semilogx(e, table["excess_index"], "C1-", label=r"$d\ln(\mathrm{excess})/d\ln E$")
    for level in (0.5, 1.0):
        bottom.axhline(level, color="0.6", lw=0.8, ls=":")
    bottom.set_xlabel("proton energy E (TeV)")
    bottom.set_ylabel("local index")
    bottom.legend(frameon=False, fontsize=8)
    return fig


def plot_source_distance(l_pc, curves: dict, band=(100.0, 500.0)):
    """Source distance against ``l`` (pc); ``curves`` maps a label to distances (pc) at
    ``l_pc``; the paper's "a few 100 pc" is shaded (``band``). Returns a ``Figure``."""
    fig = _figure()
    ax = fig.add_subplot()
    for label, distance in curves.items():
        ax.loglog(l_pc, distance, label=label)
    ax.axhspan(*band, color="0.85", label="'a few 100 pc'")
    ax.set_xlabel("turbulence scale l (pc)")
    ax.set_ylabel("source distance along the flux tube (pc)")
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_sustainability(energy_tev, content_ratio, threshold_ratio, p_bmax_tev):
    """Beam content ``F_B/F_C`` (beam paper eq. 13) against the instability threshold
    ``F_th/F_C`` over momentum, with ``p_Bmax`` (eq. 15) marked. Returns a ``Figure``."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.loglog(energy_tev, content_ratio, "C0-", label=r"beam $F_B/F_C$ (eq. 13)")
    ax.loglog(energy_tev, np.broadcast_to(threshold_ratio, np.shape(energy_tev)), "C3--",
              label=r"threshold $F_{th}/F_C=\delta/(q_c-2)$")
    ax.axvline(p_bmax_tev, color="0.4", lw=1.0, label=rf"$p_{{B\max}}$ = {p_bmax_tev:.3g} TeV/c")
    ax.set_xlabel("p c (TeV)")
    ax.set_ylabel("flux relative to the background $F_C$")
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_l_posteriors(samples: dict, knee_l_pc, tension: str = "", b0_samples=None,
                      knee_l_b0=None):
    """Posteriors of ``l`` (pc) from each observable alone and jointly, on one log axis.

    ``samples`` maps a label to posterior draws of ``l``; ``knee_l_pc`` (two numbers) is the
    range of ``l = r_g(3 PeV, B0)`` over the B0 prior (shaded); ``tension`` a text line. With
    ``b0_samples`` (label → draws of B0, μG) a second panel shows ``l B0`` (pc μG), which the
    knee fixes to the single value ``knee_l_b0``. Histograms in ``log10`` (densities). Returns
    a ``Figure``.
    """
    panels = 2 if b0_samples else 1
    fig = _figure(6.0 * panels, 4.2)
    axes = np.atleast_1d(fig.subplots(1, panels))
    draws = [samples]
    if b0_samples:
        draws.append({k: np.asarray(v) * np.asarray(b0_samples[k]) for k, v in samples.items()})
    for ax, sets in zip(axes, draws, strict=True):
        logs = np.concatenate([np.log10(np.asarray(v)) for v in sets.values()])
        bins = np.linspace(logs.min(), logs.max(), 60)
        for i, (label, v) in enumerate(sets.items()):
            ax.hist(np.log10(v), bins=bins, density=True, histtype="step", lw=1.6,
                    color=f"C{i}", label=label)
        ax.set_ylabel(r"posterior density in $\log_{10}$")
    axes[0].axvspan(*np.log10(knee_l_pc), color="0.85", zorder=0,
                    label=r"knee: $l=r_g$(3 PeV, $B_0$), $B_0$ prior")
    axes[0].set_xlabel(r"$\log_{10}(l/\mathrm{pc})$")
    axes[0].legend(frameon=False, fontsize=7, loc="upper left")
    if tension:
        axes[0].set_title(tension, fontsize=8)
    if b0_samples:
        axes[1].axvline(np.log10(knee_l_b0), color="0.4", label=r"knee: $l B_0$ = const")
        axes[1].set_xlabel(r"$\log_{10}(l B_0/\mathrm{pc\,\mu G})$")
        axes[1].legend(frameon=False, fontsize=7, loc="upper left")
    return fig
