"""Figures of the small-scale anisotropy (rel.-diffusion paper Figs. 2 and 3) and sky maps.

Functions take :class:`crsky.physics.anisotropy.SpectrumStatistics` (``ensemble.statistics(o)``,
one per gradient orientation, keyed ``"parallel"`` / ``"perpendicular"``; a mapping, or any
object with the same fields as attributes) and return matplotlib Figures; the caller saves them
(``fig.savefig("fig2.png")``). matplotlib is imported lazily, and the figures are built without
pyplot (Agg canvas), except the Mollweide map, which healpy draws through pyplot and which is
detached from pyplot before it is returned.

Spectra are those of ``δI`` for a unit gradient ``|∇n|/n = 1/Lc`` (they scale with its square);
times are back-tracking times ``tΩ``.
"""

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from crsky import _validate
from crsky.physics import bgk
from crsky.plotting.sky import sky_map

__all__ = ["spectrum_evolution", "spectrum_shape", "sky_map"]

_REQUIRED = ("t_omega", "cl_mean", "noise", "cl_hat")
T_LABEL = r"back-tracking time $t\Omega$"
CL_UNIT = r"for $|\nabla n|/n = 1/L_c$"


def _field(stats, name: str, default=None):
    """``stats[name]`` of a statistics mapping, or ``stats.name`` of a statistics object."""
    if isinstance(stats, Mapping):
        return stats.get(name, default)
    return getattr(stats, name, default)


def _figure(n_panels: int, width: float = 5.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels + 1.2, 4.6), layout="constrained")
    return fig, fig.subplots(1, n_panels, squeeze=False, sharey=True)[0]


def _check_stats(stats_by_orientation: Mapping) -> None:
    if not stats_by_orientation:
        raise ValueError("stats_by_orientation must hold at least one SpectrumStatistics")
    for name, stats in stats_by_orientation.items():
        missing = [k for k in _REQUIRED if _field(stats, k) is None]
        if missing:
            raise ValueError(f"stats_by_orientation[{name!r}] is missing {', '.join(missing)}")


def _log_ticks(ax, axis: str = "both") -> None:
    """Decade ticks labelled ``10^n`` with unlabelled minor ticks (readable at any range)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    for which in ("x", "y") if axis == "both" else (axis,):
        target = ax.xaxis if which == "x" else ax.yaxis
        target.set_major_locator(LogLocator(base=10, numticks=12))
        target.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
        target.set_minor_formatter(NullFormatter())


def _title(name: str) -> str:
    return rf"$\nabla n$ {name} to $B_0$"


def spectrum_evolution(stats_by_orientation: Mapping, lmax_shown: int = 9):
    """Fig. 2 analogue: ``<C_0>``, ``<C_1>``, ``<C_l>`` (2 <= l <= lmax_shown, one colour per
    ``l`` from a sequential colour map, with a colour bar), the shot noise (eq. (3.1)) and the
    standard dipole against ``tOmega`` (log-log), one panel per orientation.
    """
    import matplotlib as mpl

    _check_stats(stats_by_orientation)
    _validate.positive_int("lmax_shown", lmax_shown)
    fig, axes = _figure(len(stats_by_orientation))
    n_ell = min(lmax_shown, min(np.shape(_field(s, "cl_mean"))[1] - 1
                                for s in stats_by_orientation.values()))
    ells = list(range(2, n_ell + 1))
    cmap = mpl.colormaps["viridis"]
    norm = mpl.colors.BoundaryNorm(np.arange(1.5, n_ell + 1.5), cmap.N) if ells else None
    for ax, (name, stats) in zip(axes, stats_by_orientation.items(), strict=True):
        t = np.asarray(_field(stats, "t_omega"))
        cl = np.asarray(_field(stats, "cl_mean"))
        for ell in ells:
            ax.loglog(t, cl[:, ell], color=cmap(norm(ell)), lw=1.0,
                      label=rf"$\langle C_\ell\rangle$, $\ell = {ell}$")
        ax.loglog(t, cl[:, 0], color="tab:blue", lw=2.0, label=r"$\langle C_0\rangle$")
        ax.loglog(t, cl[:, 1], color="black", lw=2.0, label=r"$\langle C_1\rangle$")
        ax.loglog(t, np.asarray(_field(stats, "noise")), color="tab:red", ls="--", lw=1.5,
                  label=r"shot noise $N$ (eq. 3.1)")
        dipole = _field(stats, "dipole_standard")
        if dipole is not None:
            ax.loglog(t, np.asarray(dipole), color="magenta", ls="-.", lw=1.5,
                      label=r"standard dipole $C_1[\langle\delta I\rangle]$")
        ax.set_xlabel(T_LABEL)
        ax.set_title(_title(name))
        ax.set_xlim(t[0], t[-1])
        _log_ticks(ax)
        ax.grid(True, which="major", color="0.9", lw=0.6)
    axes[0].set_ylabel(rf"$\langle C_\ell\rangle$ {CL_UNIT}")
    handles = [h for h in axes[0].get_lines() if "ell =" not in h.get_label()]
    axes[0].legend(handles=handles, fontsize="small", loc="lower right")
    if ells:
        bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes),
                           ticks=ells, pad=0.01, aspect=30)
        bar.set_label(r"multipole $\ell$ of $\langle C_\ell\rangle$, $\ell \geq 2$")
    return fig


def _linear_threshold(ratios: np.ndarray) -> float:
    """The symlog axis is linear below the smallest positive noise ratio shown, rounded down to
    a power of ten (at least 1e-6): values below the noise are consistent with zero."""
    positive = ratios[np.isfinite(ratios) & (ratios > 0)]
    smallest = float(positive.min()) if positive.size else 1e-3
    return 10.0 ** max(math.floor(math.log10(smallest)), -6)


def spectrum_shape(
    stats_by_orientation: Mapping,
    time_indices: Sequence[int] | None = None,
    bgk_p: Sequence[float] = (1 / 3, 1 / 2, 2 / 3),
):
    """Fig. 3 analogue: ``C^_l / C^_1`` versus ``l`` (``C^_l = <C_l> - N``) at three times with
    error bars over realisations (``cl_hat_err``) and the noise level ``N / C^_1`` (dotted, in
    the colour of its time), one panel per orientation, with the BGK closure's ``C_l / C_1``
    (rel.-diffusion paper eq. 4.7) for each exponent in ``bgk_p`` as grey lines (the paper's
    p = 1/3, 1/2, 2/3; ``()`` draws none).

    The ratio axis is **symlog**: logarithmic above, linear below the smallest noise ratio shown
    (:func:`_linear_threshold`; shaded), so noise-subtracted ``C^_l`` that are zero or negative
    within their errors, and error bars reaching below zero, stay visible instead of vanishing
    off a log axis. The ``l`` axis is logarithmic with integer labels; the three times are
    shifted slightly in ``l`` so that their error bars do not overlap.

    ``time_indices``: indices into the saved times (default: three spread over the later half).
    """
    import matplotlib as mpl
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    _check_stats(stats_by_orientation)
    if np.ndim(bgk_p) != 1:
        raise ValueError(f"bgk_p must be a sequence of exponents, e.g. (0.5,), got {bgk_p!r}")
    for p in bgk_p:
        _validate.open_interval("bgk_p", p, 0.0, 1.0)
    fig, axes = _figure(len(stats_by_orientation))
    cmap = mpl.colormaps["plasma"]
    markers = itertools.cycle(("o", "s", "D", "^", "v"))
    thresholds = []
    for ax, (name, stats) in zip(axes, stats_by_orientation.items(), strict=True):
        t = np.asarray(_field(stats, "t_omega"))
        cl_hat = np.asarray(_field(stats, "cl_hat"))
        err = np.asarray(_field(stats, "cl_hat_err", np.zeros_like(cl_hat)))
        noise = np.asarray(_field(stats, "noise"))
        indices = (
            np.unique(np.linspace(len(t) // 2, len(t) - 1, 3).astype(int))
            if time_indices is None
            else np.asarray(time_indices)
        )
        ell = np.arange(1, cl_hat.shape[1])
        colours = [cmap(x) for x in np.linspace(0.1, 0.8, len(indices))]
        shifts = np.exp(0.035 * (np.arange(len(indices)) - (len(indices) - 1) / 2))
        for i, colour, shift, marker in zip(indices, colours, shifts, markers, strict=False):
            norm = cl_hat[i, 1]
            ax.errorbar(
                ell * shift, cl_hat[i, 1:] / norm, yerr=err[i, 1:] / abs(norm), color=colour,
                marker=marker, ms=3.5, lw=1, elinewidth=0.8, capsize=2,
                label=rf"$t\Omega = {t[i]:.4g}$",
            )
            ax.axhline(noise[i] / norm, color=colour, ls=":", lw=1.2)
            thresholds.append(noise[i] / abs(norm))
        for p, dashes in zip(bgk_p, itertools.cycle(("--", "-", "-.", ":")), strict=False):
            shape = np.asarray(bgk.cl_shape(p, ell))
            ax.plot(ell, shape / shape[0], color="0.45", ls=dashes, lw=1,
                    label=rf"BGK $p = {p:.2g}$")
        ax.set_xscale("log")
        ax.set_xlabel(r"multipole $\ell$")
        ax.set_title(_title(name))
        ticks = [v for v in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200) if v <= ell[-1] * 1.1]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(0.85, ell[-1] * 1.15)
    linthresh = _linear_threshold(np.asarray(thresholds))
    for ax in axes:
        ax.set_yscale("symlog", linthresh=linthresh, linscale=0.6)
        ax.axhspan(-linthresh, linthresh, color="0.93", zorder=0, lw=0)
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.grid(True, which="major", axis="y", color="0.9", lw=0.6)
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(min(low, -2 * linthresh), max(high, 2.0))
    for ax in axes:
        ax.text(0.01, 0.0, f" linear within ±{linthresh:.0e}", transform=ax.get_yaxis_transform(),
                ha="left", va="center", fontsize=7, color="0.4")
    axes[0].set_ylabel(r"$\hat C_\ell / \hat C_1$, $\hat C_\ell = \langle C_\ell\rangle - N$")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper",
               fontsize="small", title="dotted: noise $N/\\hat C_1$", title_fontsize="small")
    return fig
