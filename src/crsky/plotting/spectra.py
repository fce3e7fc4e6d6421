"""Figures of the small-scale anisotropy (rel.-diffusion paper Figs. 2 and 3) and sky maps.

Functions take :class:`crsky.physics.anisotropy.SpectrumStatistics` (one per gradient
orientation, keyed ``"parallel"`` / ``"perpendicular"``: ``{o: ensemble.statistics(o)}``) and
return matplotlib Figures; the caller saves them (``fig.savefig("fig2.png")``). matplotlib is
imported lazily, and the figures are built without pyplot (Agg canvas), except the Mollweide
map, which healpy draws through pyplot and which is detached from pyplot before it is returned.
"""

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from crsky import _validate
from crsky.physics import bgk
from crsky.physics.anisotropy import SpectrumStatistics


def _figure(n_panels: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * n_panels, 4.5), layout="constrained")
    return fig, fig.subplots(1, n_panels, squeeze=False, sharey=True)[0]


def _check_stats(stats_by_orientation: Mapping) -> None:
    if not stats_by_orientation:
        raise ValueError("stats_by_orientation must hold at least one SpectrumStatistics")
    for name, stats in stats_by_orientation.items():
        if not isinstance(stats, SpectrumStatistics):
            raise ValueError(
                f"stats_by_orientation[{name!r}] must be a SpectrumStatistics, "
                f"got {type(stats).__name__}"
            )


def spectrum_evolution(stats_by_orientation: Mapping, lmax_shown: int = 9):
    """Fig. 2 analogue: ``<C_0>``, ``<C_1>``, ``<C_l>`` (2 <= l <= lmax_shown), the shot noise
    (eq. (3.1)) and the standard dipole against ``tOmega`` (log-log), one panel per orientation.
    """
    _check_stats(stats_by_orientation)
    _validate.positive_int("lmax_shown", lmax_shown)
    fig, axes = _figure(len(stats_by_orientation))
    for ax, (name, stats) in zip(axes, stats_by_orientation.items(), strict=True):
        t = np.asarray(stats.t_omega)
        cl = np.asarray(stats.cl_mean)
        for ell in range(2, min(lmax_shown, cl.shape[1] - 1) + 1):
            ax.loglog(
                t,
                cl[:, ell],
                color="tab:green",
                lw=0.8,
                label=rf"$\langle C_\ell\rangle$, $2\leq\ell\leq{lmax_shown}$"
                if ell == 2
                else None,
            )
        ax.loglog(t, cl[:, 0], color="tab:blue", label=r"$\langle C_0\rangle$")
        ax.loglog(t, cl[:, 1], color="black", label=r"$\langle C_1\rangle$")
        ax.loglog(t, np.asarray(stats.noise), color="tab:red", ls="--", label="noise (3.1)")
        ax.loglog(
            t, np.asarray(stats.dipole_standard), color="magenta", label="standard dipole"
        )
        ax.set_xlabel(r"$t\Omega$")
        ax.set_title(rf"$\nabla n$ {name} to $B_0$")
    axes[0].set_ylabel(r"$\langle C_\ell\rangle$")
    axes[0].legend(fontsize="small")
    return fig


def spectrum_shape(
    stats_by_orientation: Mapping,
    time_indices: Sequence[int] | None = None,
    bgk_p: Sequence[float] = (1 / 3, 1 / 2, 2 / 3),
):
    """Fig. 3 analogue: ``C^_l / C^_1`` versus ``l`` (``C^_l = <C_l> - N``) at three times with
    error bars over realisations and the noise level ``N / C^_1``, one panel per orientation,
    with the BGK closure's ``C_l / C_1`` (rel.-diffusion paper eq. 4.7) for each exponent in
    ``bgk_p`` as grey lines (the paper's p = 1/3, 1/2, 2/3; ``()`` draws none).

    ``time_indices``: indices into the saved times (default: three spread over the later half).
    """
    _check_stats(stats_by_orientation)
    if np.ndim(bgk_p) != 1:
        raise ValueError(f"bgk_p must be a sequence of exponents, e.g. (0.5,), got {bgk_p!r}")
    for p in bgk_p:
        _validate.open_interval("bgk_p", p, 0.0, 1.0)
    fig, axes = _figure(len(stats_by_orientation))
    for ax, (name, stats) in zip(axes, stats_by_orientation.items(), strict=True):
        t = np.asarray(stats.t_omega)
        cl_hat = np.asarray(stats.cl_hat)
        err = np.asarray(stats.cl_hat_err)
        indices = (
            np.unique(np.linspace(len(t) // 2, len(t) - 1, 3).astype(int))
            if time_indices is None
            else time_indices
        )
        ell = np.arange(1, cl_hat.shape[1])
        for i, color in zip(indices, ("tab:blue", "tab:orange", "tab:green"), strict=False):
            norm = cl_hat[i, 1]
            ax.errorbar(
                ell,
                cl_hat[i, 1:] / norm,
                yerr=err[i, 1:] / abs(norm),
                color=color,
                marker="o",
                ms=3,
                lw=1,
                capsize=2,
                label=rf"$t\Omega = {t[i]:.4g}$",
            )
            ax.axhline(np.asarray(stats.noise)[i] / norm, color=color, ls=":", lw=1)
        for p, dashes in zip(bgk_p, itertools.cycle(("--", "-", "-.", ":")), strict=False):
            shape = np.asarray(bgk.cl_shape(p, ell))
            ax.plot(ell, shape / shape[0], color="0.45", ls=dashes, lw=1,
                    label=rf"BGK $p = {p:.2g}$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\ell$")
        ax.set_title(rf"$\nabla n$ {name} to $B_0$ (dotted: noise)")
    axes[0].set_ylabel(r"$\hat C_\ell / \hat C_1$")
    axes[0].legend(fontsize="small")
    return fig


