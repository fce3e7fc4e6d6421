"""Figures of the spectrum-shape emulator: simulated nodes against the fitted surface."""

import numpy as np

from crsky.inference.emulator import Emulator, evaluate


def emulator_shape(emulator: Emulator, ell=(2, 3, 4, 6), n_curve: int = 60):
    """``Ĉ_l/Ĉ_1`` against σ, one panel per multipole in ``ell``, one colour per ``r_L/Lc``:
    the table's nodes with their jackknife errors, and the emulator (its fitted mean with a
    1-σ band when it has a ``degree``, else the interpolant) between them. Returns the Figure.

    ``ValueError`` if a multipole is not in the table or ``n_curve < 2``.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    index = emulator.ell_index(ell)
    if n_curve < 2:
        raise ValueError(f"n_curve must be >= 2, got {n_curve}")
    sigma = np.geomspace(emulator.sigma[0], emulator.sigma[-1], n_curve)
    fig = Figure(figsize=(3.6 * len(index) + 1.0, 3.8), layout="constrained")
    axes = fig.subplots(1, len(index), squeeze=False)[0]
    colours = colormaps["viridis"](np.linspace(0.0, 0.9, emulator.rl_over_lc.size))
    for b, (rl, colour) in enumerate(zip(emulator.rl_over_lc, colours, strict=True)):
        curve = [evaluate(emulator, s, rl) for s in sigma]
        ratio = np.array([np.asarray(r) for r, _ in curve])
        error = np.array([np.asarray(e) for _, e in curve])
        for ax, k in zip(axes, index, strict=True):
            ax.errorbar(emulator.sigma, emulator.ratio[:, b, k], emulator.error[:, b, k],
                        fmt="o", ms=3.5, color=colour, capsize=2,
                        label=rf"$r_L/L_c = {rl:g}$")
            ax.plot(sigma, ratio[:, k], color=colour, lw=1.2)
            if emulator.degree is not None:
                ax.fill_between(sigma, ratio[:, k] - error[:, k], ratio[:, k] + error[:, k],
                                color=colour, alpha=0.2, lw=0)
    for ax, k in zip(axes, index, strict=True):
        ax.set_xscale("log")
        ax.set_xticks(emulator.sigma, [f"{x:g}" for x in emulator.sigma])  # the grid's σ
        ax.minorticks_off()
        ax.set_xlabel(r"turbulence level $\sigma = \langle\delta B^2\rangle^{1/2}/B_0$")
        ax.set_title(rf"$\ell = {emulator.ell[k]}$")
        ax.axhline(0.0, color="0.6", lw=0.6)
    axes[0].set_ylabel(r"$\hat C_\ell/\hat C_1$")
    axes[-1].legend(fontsize=7, loc="best")
    how = ("interpolated" if emulator.degree is None
           else f"least-squares polynomial of degree {emulator.degree}, 1-σ band")
    fig.suptitle(f"emulated spectrum shape: nodes (jackknife errors) and {how}", fontsize=10)
    return fig
