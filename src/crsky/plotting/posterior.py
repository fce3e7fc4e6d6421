"""Posterior figures: traces per chain and corner plots titled by median and 68 % interval.

Labels carry the parameter's unit; parameters with a log-uniform (or log-normal) prior are drawn
on logarithmic axes (histograms in equal steps of ``ln x``); the truth of mock data, where known,
is drawn as red lines.
"""

import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from crsky.inference.sampling import interval_summary

_UNIT_TEXT = {"uG": r"$\mu$G", "C_l": r"$C_\ell$ units"}
_TRUTH_ALIASES = {"r_larmor": "rl_over_lc"}  # data headers name r_L/Lc by its config key


def axis_label(name: str, unit: str | None = None) -> str:
    """``name [unit]``; no bracket for a dimensionless (``"1"``) or unknown unit."""
    if not unit or unit == "1":
        return name
    return f"{name} [{_UNIT_TEXT.get(unit, unit)}]"


def truths_from_meta(meta: Mapping, names: Collection[str]) -> dict[str, float]:
    """The true parameter values recorded in a data file's header (mock data), for ``names``.

    Reads ``meta["truth"]``, a list like ``"p=0.5, q1=1e-06"`` or ``"sigma = 1, r_larmor =
    0.1"`` (``r_larmor`` is the parameter ``rl_over_lc``); entries that do not parse as
    ``name = number`` or name no parameter in ``names`` are skipped. Empty without a truth.
    """
    truths = {}
    for entry in str(meta.get("truth", "")).split(","):
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*([-+0-9.eE]+)\s*", entry)
        if not match:
            continue
        name = _TRUTH_ALIASES.get(match[1], match[1])
        try:
            value = float(match[2])
        except ValueError:
            continue
        if name in names and math.isfinite(value):
            truths[name] = value
    return truths


def log_uniform(priors: Mapping) -> set[str]:
    """Names of the parameters whose prior is log-uniform or log-normal (drawn on log axes);
    ``priors``: name → :class:`crsky.inference.models.Prior`."""
    return {name for name, prior in priors.items() if prior.dist in ("loguniform", "lognormal")}


def _bins(values: np.ndarray, log: bool, n: int) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if lo == hi:
        lo, hi = (lo * 0.99, hi * 1.01) if lo else (-1.0, 1.0)
    return np.geomspace(lo, hi, n + 1) if log and lo > 0 else np.linspace(lo, hi, n + 1)


def _log_ok(name: str, samples: Mapping, log_scale: Collection[str]) -> bool:
    return name in log_scale and bool(np.all(np.asarray(samples[name]) > 0))


def trace_figure(idata, names, units: Mapping | None = None,
                 log_scale: Collection[str] = (), truths: Mapping | None = None):
    """Trace (left, every chain in its own colour) and marginal histogram per chain (right,
    fraction of draws per bin; bins equal in ``ln x`` on log axes) of the posterior variables
    ``names``; returns the Figure."""
    units, truths = units or {}, truths or {}
    fig = Figure(figsize=(10, 2.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in zip(axes, names, strict=True):
        values = np.asarray(idata.posterior[name].values)
        log = name in log_scale and bool(np.all(values > 0))
        bins = _bins(values, log, 40)
        for c, chain in enumerate(values):
            row[0].plot(chain, lw=0.5, color=f"C{c}", label=f"chain {c}")
            row[1].hist(chain, bins=bins, histtype="step", color=f"C{c}",
                        weights=np.full(chain.size, 1.0 / chain.size))
        label = axis_label(name, units.get(name))
        row[0].set_ylabel(label)
        row[1].set_xlabel(label)
        row[1].set_ylabel("fraction of draws")
        if log:
            row[0].set_yscale("log")
            row[1].set_xscale("log")
        if name in truths:
            row[0].axhline(truths[name], color="tab:red", lw=1.0, label="truth")
            row[1].axvline(truths[name], color="tab:red", lw=1.0)
    axes[-1, 0].set_xlabel("draw (after warm-up)")
    axes[0, 0].legend(fontsize="x-small", ncols=4, loc="upper right")
    return fig


def plot_trace(idata, names, path, units: Mapping | None = None,
               log_scale: Collection[str] = (), truths: Mapping | None = None) -> None:
    """Write the :func:`trace_figure` as a PNG."""
    trace_figure(idata, names, units, log_scale, truths).savefig(path, dpi=100)


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


def corner_figure(samples: dict, truths: dict | None = None, units: Mapping | None = None,
                  log_scale: Collection[str] = ()):
    """Corner plot (1-d histograms on the diagonal, titled by :func:`_interval_title` with the
    unit; 2-d histograms below) as a matplotlib figure.

    ``samples``: name → 1-d array; ``truths``: optional name → value, drawn as red lines;
    ``units``: name → unit (labels ``name [unit]``); ``log_scale``: names drawn on log axes
    (those with log-uniform priors), used where all samples are positive.
    """
    names = list(samples)
    units = units or {}
    log = {name: _log_ok(name, samples, log_scale) for name in names}
    bins = {name: _bins(np.asarray(samples[name]), log[name], 40) for name in names}
    n = len(names)
    fig = Figure(figsize=(2.3 * n + 1, 2.3 * n + 1))
    axes = fig.subplots(n, n, squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(samples[xj], bins=bins[xj], histtype="step", color="k")
                title = _interval_title(xj, samples[xj])
                unit = axis_label("", units.get(xj)).strip()
                ax.set_title(f"{title} {unit}" if unit else title, fontsize=9)
                ax.set_yticks([])
            else:
                ax.hist2d(samples[xj], samples[yi], bins=(bins[xj], bins[yi]), cmap="Greys")
                if log[yi]:
                    ax.set_yscale("log")
            if log[xj]:
                ax.set_xscale("log")
            if truths and xj in truths:
                ax.axvline(truths[xj], color="tab:red", lw=1.0)
            if truths and i != j and yi in truths:
                ax.axhline(truths[yi], color="tab:red", lw=1.0)
            if i == n - 1:
                ax.set_xlabel(axis_label(xj, units.get(xj)))
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(axis_label(yi, units.get(yi)))
            elif i != j:
                ax.tick_params(labelleft=False)
            ax.tick_params(labelsize=7, which="both")
            for label in ax.get_xticklabels(which="both"):
                label.set_rotation(45)
    if truths and any(name in truths for name in names):
        fig.text(0.98, 0.98, "red: truth of the mock data", ha="right", va="top",
                 color="tab:red", fontsize=9)
    fig.tight_layout()
    return fig


def plot_corner(samples: dict, path, truths: dict | None = None, units: Mapping | None = None,
                log_scale: Collection[str] = ()) -> None:
    """Write the :func:`corner_figure` of ``samples`` (and ``truths``) as a PNG."""
    corner_figure(samples, truths, units, log_scale).savefig(path, dpi=100)


def save_figures(idata, names: list[str], out_dir, *, units: Mapping | None = None,
                 log_scale: Collection[str] = (), truths: Mapping | None = None
                 ) -> dict[str, Path]:
    """Write ``trace.png`` and ``corner.png`` of the variables ``names`` into ``out_dir`` (an
    existing folder). ``units``, ``log_scale``, ``truths``: as :func:`corner_figure`. Returns
    ``{"trace": path, "corner": path}``."""
    out_dir = Path(out_dir)
    paths = {"trace": out_dir / "trace.png", "corner": out_dir / "corner.png"}
    plot_trace(idata, names, paths["trace"], units, log_scale, truths)
    plot_corner({k: idata.posterior[k].values.ravel() for k in names}, paths["corner"],
                truths, units, log_scale)
    return paths
