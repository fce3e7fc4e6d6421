"""Parameter recovery of spectrum -> p (simulation-based-calibration style, reduced).

Reference: the truth itself. 20 mock IceCube + HAWC tables (crsky.inference.data.mock_cl_table at
the real
f_sky and N, truth p = 0.5, Q1 = 1e-6) are each sampled with short NUTS chains; the 95 %
interval must cover p in >= 90 % of them (binomial: P(<= 17 of 20 | 0.95) = 7.5 %, so a
calibrated posterior fails this rarely; the random seeds are fixed, so the test is
deterministic), and
the mean of (median - truth) must be within 3 standard errors of zero. The full run, all
models, is ``benchmarks/recovery.py`` (results in benchmarks/RESULTS.md).
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import MCMC, NUTS

from crsky.inference import data, models
from crsky.io import tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_spectrum_p_recovery_coverage_and_bias():
    experiments = list(tables.load_experiments(ROOT / "data" / "experiments.toml").values())
    first = data.mock_cl_table(0.5, 1e-6, experiments, seed=0)
    base = models.spectrum_data(first, 1, int(first.ell.max()))
    priors = models.resolve_priors(models.spectrum_p_parameters(base), None)

    def model(cl):
        models.spectrum_p_model(dataclasses.replace(base, cl=cl), priors)

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=300, num_chains=1, progress_bar=False,
                jit_model_args=True)
    covered, bias = [], []
    for seed in range(20):
        table = data.mock_cl_table(0.5, 1e-6, experiments, seed=seed)
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(table.cl))
        p = np.asarray(mcmc.get_samples()["p"])
        lo, hi = np.quantile(p, [0.025, 0.975])
        covered.append(lo <= 0.5 <= hi)
        bias.append(np.median(p) - 0.5)
    assert np.mean(covered) >= 0.9
    bias = np.asarray(bias)
    assert abs(bias.mean()) < 3 * bias.std(ddof=1) / np.sqrt(bias.size)
