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
