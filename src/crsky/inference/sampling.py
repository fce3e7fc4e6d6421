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
from numpyro.primitives import Messenger

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
        # kept draws: every parameter and sampler statistic (~32 float64 per draw)
        _validate.fits_in_memory(f"chains={self.chains}, samples={self.samples}",
                                 256 * self.chains * self.samples, "the posterior draws")


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


EXTRA_FIELDS = ("energy", "num_steps", "accept_prob", "adapt_state.step_size", "diverging",
                "potential_energy")
"""Per-draw NUTS statistics kept; ArviZ names them ``energy``, ``n_steps`` (and
``tree_depth = log2(n_steps) + 1``), ``acceptance_rate``, ``step_size``, ``diverging``, ``lp``
(minus the potential energy: the log joint density of the unconstrained parameters)."""


def observed_sites(model, model_kwargs: dict) -> list[str]:
    """Names of the observed sample sites of ``model(**model_kwargs)`` (likelihood terms; the
    ``numpyro.factor`` sites, which have no distribution to draw from, are left out)."""
    from numpyro import handlers
    from numpyro.distributions import Unit

    trace = handlers.trace(handlers.seed(model, 0)).get_trace(**model_kwargs)
    return [name for name, site in trace.items() if site["type"] == "sample"
            and site["is_observed"] and not isinstance(site["fn"], Unit)]


class _Unobserved(Messenger):
    """Turns the observed sites ``sites`` into sampled ones with the data's shape (for
    predictive draws: numpyro's ``Predictive`` would otherwise return the data themselves, and a
    likelihood broadcast against the data would draw one value for all of them)."""

    def __init__(self, fn, sites):
        self.sites = frozenset(sites)
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.sites:
            fn, shape = msg["fn"], np.shape(msg["value"])
            batch = shape[: len(shape) - len(fn.event_shape)]
            if tuple(fn.batch_shape) != batch:
                msg["fn"] = fn.expand(batch)
            msg["value"], msg["is_observed"] = None, False


def run_nuts(model, model_kwargs: dict, config: SamplerConfig = SamplerConfig(), *,
             progress: bool = False, predictive: bool = True, coords: dict | None = None,
             dims: dict | None = None):
    """Sample ``model(**model_kwargs)`` with NUTS; returns ``arviz.InferenceData``.

    Chains run in parallel when ``jax.local_device_count() >= config.chains`` (on CPU the caller
    sets ``numpyro.set_host_device_count`` before JAX starts), else sequentially.

    Groups: ``posterior``; ``sample_stats`` with :data:`EXTRA_FIELDS` (so ``az.plot_energy``
    works); ``observed_data``; with ``predictive`` also ``prior`` and ``prior_predictive``
    (``config.samples`` draws from the prior, one chain) and ``posterior_predictive`` (the
    observed sites drawn at every posterior draw), from ``numpyro.infer.Predictive``.
    ``coords``/``dims``: ArviZ coordinates of array-valued sites (e.g. ``{"ell": [...]}`` and
    ``{"cl_obs": ["ell"]}``). ``progress``: numpyro's progress bar during warm-up and sampling.
    """
    import arviz as az
    from numpyro.infer import Predictive

    parallel = jax.local_device_count() >= config.chains
    mcmc = MCMC(
        NUTS(model, target_accept_prob=config.target_accept, max_tree_depth=config.max_tree_depth),
        num_warmup=config.warmup,
        num_samples=config.samples,
        num_chains=config.chains,
        chain_method="parallel" if parallel else "sequential",
        progress_bar=progress,
    )
    key_nuts, key_prior, key_post = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    mcmc.run(key_nuts, extra_fields=EXTRA_FIELDS, **model_kwargs)
    groups = {}
    if predictive:
        observed = observed_sites(model, model_kwargs)
        free = _Unobserved(model, observed)
        groups["prior"] = Predictive(free, num_samples=config.samples)(key_prior, **model_kwargs)
        by_chain = mcmc.get_samples(group_by_chain=True)
        # one chain at a time: the forward model is vmapped over the draws of one chain only
        draws = [
            Predictive(free, posterior_samples={k: v[c] for k, v in by_chain.items()},
                       return_sites=observed)(jax.random.fold_in(key_post, c), **model_kwargs)
            for c in range(config.chains)
        ]
        groups["posterior_predictive"] = {
            name: np.stack([np.asarray(d[name]) for d in draws]) for name in observed
        }
    idata = az.from_numpyro(mcmc, coords=coords, dims=dims, **groups)
    return idata


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












