"""Parameter recovery (simulation-based-calibration style) of the beam and spectrum models.

For each model, ``--datasets`` (>= 20) mock data sets are drawn from known truths, each sampled
with NUTS; reported per parameter: the fraction of 95 % intervals that cover the truth (pass:
>= 90 %) and the mean of (median - truth) in units of its standard error over data sets
(pass: |z| < 3). Truths:

- beam: drawn from the model's prior (the defaults, truncated to ``ε < 0.02`` like the model;
  SBC: the beam data constrain only ``l`` and a combination of the nuisance parameters, so
  coverage is guaranteed only on average over the prior); mock observables
  ``ln(obs) = ln(predicted) + log_sigma * z`` with the run file's log_sigma; bias in ``ln``;
- spectrum_p: fixed truth p = 0.5 and Q1 of the shipped mock table, mock IceCube + HAWC tables at
  the real f_sky and N (``crsky.inference.data.mock_cl_table``), one seed per data set;
- spectrum_sigma: σ and r_L/Lc drawn from their priors (uniform and log-uniform over the
  emulator grid, σ 0.3-3, r_L/Lc 0.03-0.3); ``c1``, with
  ``--c1-truth prior`` (default), log-uniform within a factor 2 of the Ĉ_1 of
  ``data/simulated_cl_sigma1.csv``, the sampler using the same prior (a calibration check over
  the prior), or with ``--c1-truth fixed`` that Ĉ_1 under the run file's wide prior (the
  shipped run's setting; σ is weakly constrained and degenerate with ``c1``, so there the
  medians carry a bias along the degeneracy); the errors of that table (ℓ = 1-12), mock
  ``Ĉ_l = c1 (R(σ, r_L/Lc) + error_R z1) + error z2`` from the shipped simulated emulator table
  ``data/emulator.csv``, read with the ``emulator_degree`` of
  ``inference/simulated_sigma.toml`` (the model's own likelihood: a check of the inference, not
  of the emulator's accuracy).

One compiled sampler per model (data passed as JAX arguments); chains in parallel over one CPU
device per chain. Run::

    OMP_NUM_THREADS=1 python benchmarks/recovery.py [--datasets 20] [--forward asymptotic]

and copy the printed table into benchmarks/RESULTS.md.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpyro

numpyro.set_host_device_count(4)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

from crsky.inference import data, emulator, models  # noqa: E402
from crsky.io import tables  # noqa: E402
from crsky.io.text import load_toml  # noqa: E402
from crsky.physics.pitch_angle import EPS_MAX  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRUTH_P = 0.5


def sample(model, args, seed, chains, warmup, draws):
    """Posterior draws ``{name: (chains*draws,)}`` of ``model(*args)`` with one compiled NUTS."""
    mcmc = sample.cache.get(model)
    if mcmc is None:
        parallel = jax.local_device_count() >= chains
        mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method="parallel" if parallel else "sequential", progress_bar=False,
                    jit_model_args=True)
        sample.cache[model] = mcmc
    mcmc.run(jax.random.PRNGKey(seed), *args)
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}, \
        int(mcmc.get_extra_fields()["diverging"].sum())


sample.cache = {}


def score(rows, names, log_names=()):
    """Coverage of the 95 % interval and z of the mean bias of the median, per parameter."""
    out = {}
    for name in names:
        f = np.log if name in log_names else (lambda x: x)
        truth = np.array([f(r["truth"][name]) for r in rows])
        post = [f(r["samples"][name]) for r in rows]
        lo = np.array([np.quantile(s, 0.025) for s in post])
        hi = np.array([np.quantile(s, 0.975) for s in post])
        bias = np.array([np.median(s) for s in post]) - truth
        out[name] = {
            "coverage95": float(np.mean((lo <= truth) & (truth <= hi))),
            "bias_z": float(bias.mean() / (bias.std(ddof=1) / np.sqrt(bias.size))),
            "scale": "ln" if name in log_names else "linear",
        }
    return out


def beam_recovery(n, seed, chains, warmup, draws, forward):
    observations = tables.load_beam_observations(ROOT / "data" / "milagro_beam.toml")
    log_sigma = {"width_deg": 0.3, "fractional_excess": 0.7, "p_bmax_tev": 0.7}
    base = models.beam_data(observations, log_sigma)
    priors = models.resolve_priors(models.beam_parameters(base), None)
    names = list(priors)

    def model(log_obs):
        observed = {k: (jnp.exp(log_obs[i]), log_sigma[k]) for i, k in enumerate(log_sigma)}
        models.beam_model(dataclasses.replace(base, observed=observed), priors, forward)

    def draw_truth(key):
        while True:  # the model's prior is truncated to eps < EPS_MAX
            key, sub = jax.random.split(key)
            truth = {k: float(priors[k].distribution().sample(jax.random.fold_in(sub, j)))
                     for j, k in enumerate(names)}
            if float(models.beam_predictions(truth, "asymptotic")["eps"]) < EPS_MAX:
                return truth

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        truth = draw_truth(jax.random.PRNGKey(seed + i))
        predicted = models.beam_predictions(truth, forward)
        log_obs = jnp.array([float(np.log(predicted[k])) + s * rng.standard_normal()
                             for k, s in log_sigma.items()])
        samples, div = sample(model, (log_obs,), seed + i, chains, warmup, draws)
        rows.append({"truth": truth, "samples": samples, "divergences": div})
    return rows, score(rows, names, log_names=("l_pc", "b0_ugauss", "va_over_c", "alpha"))


def spectrum_recovery(n, seed, chains, warmup, draws):
    experiments = list(tables.load_experiments(ROOT / "data" / "experiments.toml").values())
    reference = tables.load_cl_table(ROOT / "data" / "mock_icecube_hawc_cl.csv")
    q1 = float(reference.meta["truth"].split("q1=")[1])
    truth = {"p": TRUTH_P, "q1": q1}
    first = data.mock_cl_table(TRUTH_P, q1, experiments, seed)
    base = models.spectrum_data(first, 1, int(first.ell.max()))
    priors = models.resolve_priors(models.spectrum_p_parameters(base), None)

    def model(cl):
        models.spectrum_p_model(dataclasses.replace(base, cl=cl), priors)

    rows = []
    for i in range(n):
        table = data.mock_cl_table(TRUTH_P, q1, experiments, seed + i)
        samples, div = sample(model, (jnp.asarray(table.cl),), seed + i, chains, warmup, draws)
        rows.append({"truth": truth, "samples": samples, "divergences": div})
    return rows, score(rows, ["p", "q1"], log_names=("q1",))


def sigma_recovery(n, seed, chains, warmup, draws, c1_truth):
    run_file = load_toml(ROOT / "inference" / "simulated_sigma.toml")
    emu = tables.load_emulator(ROOT / "data" / "emulator.csv",
                                 run_file["data"].get("emulator_degree"))
    sim = tables.load_cl_table(ROOT / "data" / "simulated_cl_sigma1.csv")
    base = models.spectrum_data(sim, 1, 12)
    params = models.spectrum_sigma_parameters(base, emu, "table")
    c1_lo, c1_hi = float(base.cl[0]) / 2, float(base.cl[0]) * 2
    c1_prior = ({"dist": "loguniform", "low": c1_lo, "high": c1_hi} if c1_truth == "prior"
                else run_file["priors"]["c1"])
    priors = models.resolve_priors(params, {"c1": c1_prior})
    index = emu.ell_index(base.ell)

    def model(cl):
        models.spectrum_sigma_model(dataclasses.replace(base, cl=cl), emu, priors, "table")

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        log_rl = np.log(emu.rl_over_lc[[0, -1]])
        truth = {"sigma": float(rng.uniform(float(emu.sigma[0]), float(emu.sigma[-1]))),
                 "rl_over_lc": float(np.exp(rng.uniform(*log_rl))),
                 "c1": float(np.exp(rng.uniform(np.log(c1_lo), np.log(c1_hi))))
                 if c1_truth == "prior" else float(base.cl[0])}
        ratio, error = (np.asarray(a)[index]
                        for a in emulator.evaluate(emu, truth["sigma"], truth["rl_over_lc"]))
        cl = truth["c1"] * (ratio + error * rng.standard_normal(ratio.size))
        cl = cl + base.error * rng.standard_normal(ratio.size)
        samples, div = sample(model, (jnp.asarray(cl),), seed + i, chains, warmup, draws)
        rows.append({"truth": truth, "samples": samples, "divergences": div})
    return rows, score(rows, ["sigma", "rl_over_lc", "c1"], log_names=("rl_over_lc", "c1"))


RECOVERIES = {"spectrum_p": spectrum_recovery, "spectrum_sigma": sigma_recovery,
              "beam": beam_recovery}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--forward", default="eigen", choices=models.BEAM_FORWARDS)
    parser.add_argument("--c1-truth", default="prior", choices=("prior", "fixed"),
                        help="spectrum_sigma: c1 drawn from a prior within x/÷ 2 of the table's "
                        "C^_1 that the sampler uses too (calibration), or fixed at that C^_1 "
                        "under the run file's prior")
    parser.add_argument("--models", nargs="+", default=list(RECOVERIES),
                        choices=list(RECOVERIES))
    args = parser.parse_args()
    report = {}
    for name in args.models:
        start = time.perf_counter()
        extra = {"beam": (args.forward,), "spectrum_sigma": (args.c1_truth,)}.get(name, ())
        rows, result = RECOVERIES[name](args.datasets, args.seed, args.chains, args.warmup,
                                        args.draws, *extra)
        report[name] = {
            "datasets": len(rows),
            "divergences": sum(r["divergences"] for r in rows),
            "wall_s": round(time.perf_counter() - start, 1),
            "parameters": result,
            "pass": all(r["coverage95"] >= 0.9 and abs(r["bias_z"]) < 3 for r in result.values()),
        }
        print(json.dumps({name: report[name]}, indent=1), flush=True)
    print(json.dumps({"settings": vars(args)}))


if __name__ == "__main__":
    main()
