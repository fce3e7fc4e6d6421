"""NUTS posterior sampling, convergence diagnostics and the files a run writes.

:func:`run_nuts` samples a NumPyro model with several chains (in parallel across devices when
there are enough of them, else sequentially) and returns ArviZ ``InferenceData``.
:func:`summarize` gives per scalar parameter the median, 68 % and 95 % equal-tailed intervals,
r̂ and bulk/tail ESS (ArviZ, rank-normalised, Vehtari et al. 2021); :func:`check_diagnostics`
lists what fails the thresholds of :class:`Thresholds`. The files of a run are written by
:func:`crsky.io.posterior.write_posterior` and :func:`crsky.plotting.posterior.save_figures`:
``posterior.nc`` (NetCDF), ``summary.json``, ``trace.png`` and ``corner.png``.
"""

import math
from dataclasses import dataclass

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

from crsky import _validate


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












