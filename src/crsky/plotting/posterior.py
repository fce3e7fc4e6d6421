"""Posterior figures: traces per chain and corner plots titled by median and 68 % interval."""

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from crsky.inference.sampling import interval_summary


def plot_trace(idata, names, path) -> None:
    """Trace (left) and marginal histogram per chain (right) of ``names``, as a PNG."""
    fig = Figure(figsize=(10, 2.2 * len(names)))
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in zip(axes, names, strict=True):
        values = idata.posterior[name].values
        for chain in values:
            row[0].plot(chain, lw=0.5)
            row[1].hist(chain, bins=40, histtype="step", density=True)
        row[0].set_ylabel(name)
    axes[-1, 0].set_xlabel("draw")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _significant(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` significant digits, in plain (not scientific) notation."""
    rounded = float(f"{value:.{digits}g}")
    if not rounded or not math.isfinite(rounded):
        return f"{rounded:.{digits - 1}f}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    return f"{rounded:.{decimals}f}"


def _interval_title(name: str, samples: np.ndarray) -> str:
    """``name = median`` with its 68 % interval as ``_{-lower}^{+upper}`` (mathtext), as corner.py
    titles its diagonal panels: the median to 3 significant digits, the errors to 2, in plain
    notation; a |median| outside [0.001, 1000) as ``(...) \\times 10^{exponent}``."""
    row = interval_summary(samples)
    median, (lo, hi) = row["median"], row["q68"]
    rounded = float(f"{median:.3g}")  # 999.7 shows as 1.00 x 10^3
    exponent = math.floor(math.log10(abs(rounded))) if rounded and math.isfinite(rounded) else 0
    plain = -3 <= exponent <= 2
    scale = 1.0 if plain else 10.0**exponent
    m, lower, upper = median / scale, (median - lo) / scale, (hi - median) / scale
    value = (rf"{_significant(m, 3)}_{{-{_significant(lower, 2)}}}"
             rf"^{{+{_significant(upper, 2)}}}")
    return rf"{name} = ${value}$" if plain else rf"{name} = $({value}) \times 10^{{{exponent}}}$"


def corner_figure(samples: dict, truths: dict | None = None):
    """Corner plot (1-d histograms on the diagonal, titled by :func:`_interval_title`; 2-d
    histograms below) as a matplotlib figure.

    ``samples``: name → 1-d array; ``truths``: optional name → value, drawn as lines.
    """
    names = list(samples)
    n = len(names)
    fig = Figure(figsize=(2.2 * n + 1, 2.2 * n + 1))
    axes = fig.subplots(n, n, squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(samples[xj], bins=40, histtype="step", color="k")
                ax.set_title(_interval_title(xj, samples[xj]), fontsize=9)
            else:
                ax.hist2d(samples[xj], samples[yi], bins=30, cmap="Greys")
            if truths and xj in truths:
                ax.axvline(truths[xj], color="tab:red", lw=0.8)
            if truths and i != j and yi in truths:
                ax.axhline(truths[yi], color="tab:red", lw=0.8)
            if i == n - 1:
                ax.set_xlabel(xj)
            if j == 0 and i > 0:
                ax.set_ylabel(yi)
    fig.tight_layout()
    return fig


def plot_corner(samples: dict, path, truths: dict | None = None) -> None:
    """Write the :func:`corner_figure` of ``samples`` (and ``truths``) as a PNG."""
    fig = corner_figure(samples, truths)
    fig.savefig(path, dpi=80)


def save_figures(idata, names: list[str], out_dir) -> dict[str, Path]:
    """Write ``trace.png`` and ``corner.png`` of the variables ``names`` into ``out_dir`` (an
    existing folder). Returns ``{"trace": path, "corner": path}``."""
    out_dir = Path(out_dir)
    paths = {"trace": out_dir / "trace.png", "corner": out_dir / "corner.png"}
    plot_trace(idata, names, paths["trace"])
    plot_corner({k: idata.posterior[k].values.ravel() for k in names}, paths["corner"])
    return paths
