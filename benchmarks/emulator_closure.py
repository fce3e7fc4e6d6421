"""Closure of the (σ, r_L/Lc) emulator: back-tracking ensembles at parameter points that are
not emulator nodes, split into independent mock data sets, inferred back with NUTS.

For each ``--points σ,r_L/Lc``: one ensemble of ``--sets × --per-set`` realisations with the
emulator's configuration (table header) but its own seed (fields independent of the table's),
at the finest step accepted by the step tests of the four surrounding nodes. Realisations
``i·per_set … (i+1)·per_set − 1`` form data set ``i``: its ``Ĉ_l`` (``l = 1 … --ell-max``) with the
standard error over its realisations (``crsky.pipelines.tabulate.cl_table_from_run``) is
fitted by ``spectrum_sigma_model`` (error model ``table``, priors the emulator's grid for σ and
r_L/Lc, log-uniform over ``--c1-range`` for the normalisation ``c1``, by default the shipped
run file's 0.01-1000; the nodes' ``Ĉ_1`` span 0.25-1700, so widen it for points near
``σ = 0.3, r_L/Lc = 0.3``). Reported per point and
parameter: 68 % and 95 % coverage of the truth by the central intervals, the mean and spread of
ln(median/truth), and the mean 68 % half-width in ln. ::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emulator_closure.py --runs closure-runs \\
        --table data/emulator.csv --points 0.7,0.07 1.3,0.13 [--sets 20] [--per-set 8] \\
        [--degree 2] [--c1-range 0.01 1000] [--out closure.json]

Interrupted ensembles resume from ``--runs``.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpyro

numpyro.set_host_device_count(2)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

from crsky.inference import models  # noqa: E402
from crsky.io import runfile, tables  # noqa: E402
from crsky.io.run import SimulationConfig  # noqa: E402
from crsky.pipelines.ensemble import run_ensemble  # noqa: E402
from crsky.pipelines.tabulate import cl_table_from_run  # noqa: E402

PARAMETERS = ("sigma", "rl_over_lc")


def step_for(table, sigma: float, rl: float) -> float:
    """The finest accepted step of the (up to four) nodes around ``(σ, r_L/Lc)``."""
    steps = json.loads(table.meta["steps"])

    def around(grid, x):
        k = int(np.clip(np.searchsorted(grid, x), 1, grid.size - 1))
        return grid[k - 1 : k + 1]

    return min(steps[f"{s:.6g},{r:.6g}"]["dt"] for s in around(table.sigma, sigma)
               for r in around(table.rl_over_lc, rl))


def ensemble(table, sigma, rl, seed, realisations, runs: Path):
    settings = json.loads(table.meta["config"])
    config = SimulationConfig.from_dict(settings | {
        "sigma2": sigma**2, "r_larmor": rl, "seed": seed, "realisations": realisations,
        "dt": step_for(table, sigma, rl)})
    path = runs / f"closure_sigma_{sigma:g}_rl_{rl:g}_seed_{seed}.h5"
    run_ensemble(config, path, resume=path.exists(), progress=False)
    return runfile.load(path)


def closure_parser(description: str, ell_max: int) -> argparse.ArgumentParser:
    """The command-line options shared by the emulator closures (``--ell-max`` default given)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--table", required=True)
    parser.add_argument("--points", nargs="+", required=True, help="sigma,rl_over_lc pairs")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--per-set", type=int, default=8)
    parser.add_argument("--degree", type=int, default=2)
    parser.add_argument("--ell-max", type=int, default=ell_max)
    parser.add_argument("--c1-range", type=float, nargs=2, default=[0.01, 1000.0],
                        metavar=("LOW", "HIGH"), help="log-uniform prior of c1")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--out", help="JSON file for the results")
    return parser


def main() -> None:
    args = closure_parser(__doc__.splitlines()[0], ell_max=12).parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    emu = tables.load_emulator(args.table, degree=args.degree)
    report = {"degree": args.degree, "sets": args.sets, "per_set": args.per_set,
              "ell_max": args.ell_max, "points": {}}
    mcmc = None
    for k, point in enumerate(args.points):
        sigma, rl = (float(x) for x in point.split(","))
        start = time.perf_counter()
        run = ensemble(emu, sigma, rl, args.seed + k, args.sets * args.per_set, args.runs)
        simulate_s = time.perf_counter() - start
        rows = []
        for i in range(args.sets):
            chosen = (run.indices >= i * args.per_set) & (run.indices < (i + 1) * args.per_set)
            spectrum = models.spectrum_data(cl_table_from_run(run.select(chosen),
                                                              ell_max=args.ell_max),
                                            1, args.ell_max)
            if mcmc is None:
                base = spectrum
                low, high = args.c1_range
                priors = models.resolve_priors(
                    models.spectrum_sigma_parameters(base, emu, "table"),
                    {"c1": {"dist": "loguniform", "low": low, "high": high}})

                def model(cl, error, base=base, priors=priors):
                    models.spectrum_sigma_model(dataclasses.replace(base, cl=cl, error=error),
                                                emu, priors, "table")

                mcmc = MCMC(NUTS(model), num_warmup=args.warmup, num_samples=args.draws,
                            num_chains=2, chain_method="parallel", progress_bar=False,
                            jit_model_args=True)
            mcmc.run(jax.random.PRNGKey(args.seed + 100 * k + i), jnp.asarray(spectrum.cl),
                     jnp.asarray(spectrum.error))
            samples = mcmc.get_samples()
            rows.append({name: np.asarray(samples[name]) for name in PARAMETERS}
                        | {"divergences": int(mcmc.get_extra_fields()["diverging"].sum())})
        truth = {"sigma": sigma, "rl_over_lc": rl}
        result = {"simulate_s": round(simulate_s, 1),
                  "fit_s": round(time.perf_counter() - start - simulate_s, 1),
                  "divergences": sum(r["divergences"] for r in rows)}
        for name in PARAMETERS:
            draws = [np.log(r[name]) for r in rows]
            t = np.log(truth[name])
            q = np.array([np.quantile(d, [0.025, 0.16, 0.5, 0.84, 0.975]) for d in draws])
            bias = q[:, 2] - t
            result[name] = {
                "coverage68": float(np.mean((q[:, 1] <= t) & (t <= q[:, 3]))),
                "coverage95": float(np.mean((q[:, 0] <= t) & (t <= q[:, 4]))),
                "ln_bias_mean": float(bias.mean()),
                "ln_bias_std": float(bias.std(ddof=1)),
                "ln_halfwidth68": float(np.mean(q[:, 3] - q[:, 1]) / 2),
            }
        report["points"][point] = result
        print(json.dumps({point: result}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
