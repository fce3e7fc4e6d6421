"""NUTS posterior sampling, convergence diagnostics and the files a run writes.

:func:`run_nuts` samples a NumPyro model with several chains (in parallel across devices when
there are enough of them, else sequentially) and returns ArviZ ``InferenceData``.
:func:`summarize` gives per scalar parameter the median, 68 % and 95 % equal-tailed intervals,
r̂ and bulk/tail ESS (ArviZ, rank-normalised, Vehtari et al. 2021); :func:`check_diagnostics`
lists what fails the thresholds of :class:`Thresholds`; :func:`write_outputs` saves
``posterior.nc`` (NetCDF), ``summary.json``, ``trace.png`` and ``corner.png``.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

from crsky import _validate
from crsky.io import to_builtin


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings: chains, warm-up and kept draws per chain, seed, target acceptance."""

    chains: int = 4
    warmup: int = 1000
    samples: int = 1000
    seed: int = 0
    target_accept: float = 0.8
    max_tree_depth: int = 10

    def __post_init__(self):
        for name in ("chains", "warmup", "samples", "max_tree_depth"):
            _validate.positive_int(name, getattr(self, name))
        _validate.non_negative_int("seed", self.seed)
        _validate.open_interval("target_accept", self.target_accept, 0.0, 1.0)


@dataclass(frozen=True)
class Thresholds:
    """Failure thresholds of a run (defaults after Vehtari et al. 2021, Bayesian Analysis 16, 667).

    ``r_hat_max``: largest acceptable rank-normalised split-r̂ (1.01);
    ``ess_min_per_chain``: smallest acceptable bulk and tail ESS per chain (100, so 400 for
    4 chains); ``max_divergences``: largest acceptable number of divergent transitions (0: any
    divergence means the sampler missed part of the posterior).
    """

    r_hat_max: float = 1.01
    ess_min_per_chain: float = 100.0
    max_divergences: int = 0

    def __post_init__(self):
        _validate.open_interval("r_hat_max", self.r_hat_max, 1.0, math.inf)
        _validate.positive("ess_min_per_chain", self.ess_min_per_chain)
        n = self.max_divergences
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"max_divergences must be an integer >= 0, got {n!r}")


def run_nuts(model, model_kwargs: dict, config: SamplerConfig = SamplerConfig()):
    """Sample ``model(**model_kwargs)`` with NUTS; returns ``arviz.InferenceData``.

    Chains run in parallel when ``jax.local_device_count() >= config.chains`` (on CPU the caller
    sets ``numpyro.set_host_device_count`` before JAX starts), else sequentially. The
    ``sample_stats`` group holds ``diverging``.
    """
    import arviz as az

    parallel = jax.local_device_count() >= config.chains
    mcmc = MCMC(
        NUTS(model, target_accept_prob=config.target_accept, max_tree_depth=config.max_tree_depth),
        num_warmup=config.warmup,
        num_samples=config.samples,
        num_chains=config.chains,
        chain_method="parallel" if parallel else "sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(config.seed), **model_kwargs)
    return az.from_numpyro(mcmc)


def interval_summary(samples: np.ndarray) -> dict:
    """Median and equal-tailed 68 % / 95 % intervals of a 1-d sample."""
    q = np.quantile(np.asarray(samples).ravel(), [0.025, 0.16, 0.5, 0.84, 0.975])
    q = [float(v) for v in q]
    return {"median": q[2], "q68": [q[1], q[3]], "q95": [q[0], q[4]]}


def scalar_variables(idata) -> list[str]:
    """Names of the scalar variables of the posterior group (sampled and deterministic)."""
    post = idata.posterior
    return [name for name in post.data_vars if post[name].ndim == 2]


def summarize(idata, var_names=None) -> dict:
    """Per scalar posterior variable: ``median, q68, q95, r_hat, ess_bulk, ess_tail``."""
    import arviz as az

    names = var_names or scalar_variables(idata)
    r_hat = az.rhat(idata, var_names=names)
    ess_bulk = az.ess(idata, var_names=names, method="bulk")
    ess_tail = az.ess(idata, var_names=names, method="tail")
    return {
        name: interval_summary(idata.posterior[name].values)
        | {
            "r_hat": float(r_hat[name]),
            "ess_bulk": float(ess_bulk[name]),
            "ess_tail": float(ess_tail[name]),
        }
        for name in names
    }


def divergences(idata) -> int:
    """Number of divergent transitions after warm-up, all chains."""
    return int(np.asarray(idata.sample_stats["diverging"]).sum())


def check_diagnostics(idata, summary: dict, thresholds: Thresholds = Thresholds()) -> list[str]:
    """Failure messages (empty list: the run passes). ``summary`` from :func:`summarize`.

    Checks r̂, bulk and tail ESS of every summarised variable and the divergence count.
    A non-finite r̂/ESS (e.g. a constant chain) counts as a failure.
    """
    chains = idata.posterior.sizes["chain"]
    ess_min = thresholds.ess_min_per_chain * chains
    failures = []
    for name, row in summary.items():
        if not row["r_hat"] <= thresholds.r_hat_max:
            failures.append(f"{name}: r_hat = {row['r_hat']:.4f} > {thresholds.r_hat_max}")
        for kind in ("ess_bulk", "ess_tail"):
            if not row[kind] >= ess_min:
                failures.append(f"{name}: {kind} = {row[kind]:.0f} < {ess_min:.0f}")
    n_div = divergences(idata)
    if n_div > thresholds.max_divergences:
        failures.append(f"{n_div} divergent transitions > {thresholds.max_divergences}")
    return failures


def plot_trace(idata, names, path) -> None:
    """Trace (left) and marginal histogram per chain (right) of ``names``, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.2 * len(names)), squeeze=False)
    for row, name in zip(axes, names, strict=True):
        values = idata.posterior[name].values
        for chain in values:
            row[0].plot(chain, lw=0.5)
            row[1].hist(chain, bins=40, histtype="step", density=True)
        row[0].set_ylabel(name)
    axes[-1, 0].set_xlabel("draw")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    import matplotlib.pyplot as plt

    names = list(samples)
    n = len(names)
    fig, axes = plt.subplots(n, n, figsize=(2.2 * n + 1, 2.2 * n + 1), squeeze=False)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = corner_figure(samples, truths)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_outputs(idata, summary: dict, out_dir, sampled: list[str]) -> dict:
    """Write ``posterior.nc``, ``summary.json``, ``trace.png``, ``corner.png`` into ``out_dir``.

    ``out_dir`` must not exist yet (it is created); ``sampled``: variables for the plots.
    Returns name → path of the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    paths = {
        "posterior": out_dir / "posterior.nc",
        "summary": out_dir / "summary.json",
        "trace": out_dir / "trace.png",
        "corner": out_dir / "corner.png",
    }
    idata.to_netcdf(str(paths["posterior"]), engine="h5netcdf")
    paths["summary"].write_text(json.dumps(to_builtin(summary), indent=2, allow_nan=True) + "\n")
    plot_trace(idata, sampled, paths["trace"])
    plot_corner({k: idata.posterior[k].values.ravel() for k in sampled}, paths["corner"])
    return paths
