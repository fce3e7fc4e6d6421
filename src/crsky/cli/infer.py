"""``crsky infer RUN.toml --out DIR``: posterior sampling (NUTS) and a MAP + Laplace fit.

A run file names the model, its data, priors, sampler settings and diagnostic thresholds (see
``docs/inference.md`` and ``inference/*.toml``). Everything is validated, and the output folder
checked to be new, before any sampling. Exit code 1 when a diagnostic threshold fails (outputs
are still written), 2 for bad input.
"""

import os
import sys
import time
from dataclasses import asdict, replace

from crsky.cli._common import check_output, print_json
from crsky.pipelines.inference import build, model_kwargs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "infer",
        help="sample a model's posterior (NUTS) and fit it (MAP + Laplace)",
        description=(
            "Run one inference described by a TOML run file: beam -> l, C_l -> p, C_l -> sigma. "
            "Writes posterior.nc (ArviZ NetCDF), summary.json, trace.png and corner.png."
        ),
    )
    p.add_argument("run_file", metavar="NAME|TOML",
                   help="a built-in run file (milagro_beam, mock_icecube_hawc_p, simulated_p, "
                        "simulated_sigma) or a TOML run file")
    p.add_argument("--out", required=True, help="output folder (must not exist)")
    p.add_argument("--json", action="store_true",
                   help="print per parameter median, 68%%/95%% intervals, r_hat and ESS")
    p.add_argument("--no-laplace", action="store_true", help="skip the MAP + Laplace fit")
    for name, text in SAMPLER_FLAGS.items():
        p.add_argument(f"--{name}", type=int, help=text)
    p.add_argument("--no-progress", action="store_true",
                   help="hide the NUTS progress bar (shown by default when stderr is a terminal)")
    p.set_defaults(func=run, interrupted=lambda args: f"nothing was written to {args.out}")


# flags that override the run file's [sampler] table
SAMPLER_FLAGS = {
    "chains": "number of NUTS chains (default: the run file's, else 4)",
    "warmup": "warm-up iterations per chain (default: the run file's, else 1000)",
    "samples": "kept draws per chain (default: the run file's, else 1000)",
    "seed": "PRNG seed of the sampler (default: the run file's, else 0)",
}


def sampler_from_args(sampler, args):
    """The run file's :class:`~crsky.inference.sampling.SamplerConfig` with the command-line
    overrides (validated: ``ValueError`` naming the flag's field)."""
    overrides = {k: getattr(args, k) for k in SAMPLER_FLAGS if getattr(args, k) is not None}
    return replace(sampler, **overrides)


def run(args) -> int:
    out = check_output("--out", args.out, folder=True)
    if out.exists():
        raise FileExistsError(f"--out {str(out)!r} already exists; choose a new folder")
    setup = build(args.run_file)
    setup["sampler"] = sampler_from_args(setup["sampler"], args)
    progress = not args.no_progress and sys.stderr.isatty()

    import numpyro

    # One CPU device per chain, even beyond the core count: parallel chains then share the
    # cores (4 chains on 2 cores take about half the sequential time).
    numpyro.set_host_device_count(setup["sampler"].chains)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from crsky.inference import sampling
    from crsky.io.posterior import write_posterior
    from crsky.plotting.posterior import log_uniform, save_figures, truths_from_meta

    kwargs = model_kwargs(setup)

    summary = {"model": setup["name"], "run_file": str(args.run_file), "data": setup["data_meta"],
               "priors": {k: asdict(v) for k, v in setup["priors"].items()},
               "sampler": asdict(setup["sampler"]), "thresholds": asdict(setup["thresholds"])}
    if "excess_table" in kwargs:
        summary["data"]["excess_table"]["max_rel_error"] = kwargs["excess_table"].max_rel_error
    if not args.no_laplace:
        from crsky.inference.fitting import fit_laplace

        start = time.perf_counter()
        fit = fit_laplace(setup["model"], kwargs, seed=setup["sampler"].seed)
        summary["laplace"] = fit.summary() | {"wall_s": time.perf_counter() - start}
    start = time.perf_counter()
    idata = sampling.run_nuts(setup["model"], kwargs, setup["sampler"],
                              progress=progress, coords=setup["coords"], dims=setup["dims"])
    wall = time.perf_counter() - start
    parameters = sampling.summarize(idata)
    failures = sampling.check_diagnostics(idata, parameters, setup["thresholds"])
    summary |= {
        "parameters": parameters,
        "diagnostics": {"divergences": sampling.divergences(idata), "failures": failures,
                        "passed": not failures},
        "nuts_wall_s": wall,
    }
    paths = write_posterior(idata, summary, out)
    paths |= save_figures(idata, setup["sampled"], out, units=setup["units"],
                          log_scale=log_uniform(setup["priors"]),
                          truths=truths_from_meta(setup["data_meta"], setup["sampled"]))
    if args.json:
        print_json({"parameters": parameters, "diagnostics": summary["diagnostics"],
                    "files": {k: str(v) for k, v in paths.items()}})
    if failures:
        print("crsky infer: warning: diagnostics failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0
