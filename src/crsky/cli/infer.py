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
from pathlib import Path

from crsky.cli._common import load_toml, print_json, toml_key_lines

MODELS = ("beam", "spectrum_p", "spectrum_sigma")
TOP_KEYS = {"model", "forward", "error_model", "data", "priors", "sampler", "diagnostics"}
DATA_KEYS = {
    "beam": {"observations", "log_sigma"},
    "spectrum_p": {"cl_table", "ell_min", "ell_max", "experiments"},
    "spectrum_sigma": {"cl_table", "ell_min", "ell_max", "experiments", "emulator",
                       "emulator_degree"},
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "infer",
        help="sample a model's posterior (NUTS) and fit it (MAP + Laplace)",
        description=(
            "Run one inference described by a TOML run file: beam -> l, C_l -> p, C_l -> sigma. "
            "Writes posterior.nc (ArviZ NetCDF), summary.json, trace.png and corner.png."
        ),
    )
    p.add_argument("run_file", help="TOML run file (see inference/)")
    p.add_argument("--out", required=True, help="output folder (must not exist)")
    p.add_argument("--json", action="store_true",
                   help="print per parameter median, 68%%/95%% intervals, r_hat and ESS")
    p.add_argument("--no-laplace", action="store_true", help="skip the MAP + Laplace fit")
    p.set_defaults(func=run)


def _check_keys(where: str, table: dict, allowed: set, lines: dict) -> None:
    for key in table:
        if key not in allowed:
            line = f" (line {lines[key]})" if key in lines else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{line}; allowed: {', '.join(sorted(allowed))}"
            )


def build(run_file: str | Path) -> dict:
    """Validate a run file and build its model; raises ``ValueError`` before any sampling.

    Returns ``model`` (function), ``kwargs`` (its arguments), ``sampler``
    (:class:`~crsky.sampling.SamplerConfig`), ``thresholds``, ``sampled`` (parameter names),
    ``data_meta`` (header of the data file, e.g. the truth of mock data).
    """
    from crsky import data, models
    from crsky._validate import one_of
    from crsky.emulator import fit_quality, load_emulator
    from crsky.sampling import SamplerConfig, Thresholds

    run_file = Path(run_file)
    config = load_toml(run_file)
    lines = toml_key_lines(run_file)
    _check_keys(str(run_file), config, TOP_KEYS, lines)
    name = config.get("model")
    if name not in MODELS:
        raise ValueError(f"{run_file}: model must be one of {', '.join(MODELS)}, got {name!r}")
    if name != "beam" and "forward" in config:
        raise ValueError(f"{run_file}: 'forward' applies to the beam model only")
    if name == "beam" and "error_model" in config:
        raise ValueError(f"{run_file}: 'error_model' applies to the spectrum models only")
    table = config.get("data", {})
    _check_keys(f"{run_file} [data]", table, DATA_KEYS[name], {})

    def path(key):
        if key not in table:
            raise ValueError(f"{run_file} [data]: missing {key!r}")
        return run_file.parent / table[key]

    if name == "beam":
        forward = config.get("forward", "eigen")
        one_of(f"{run_file}: forward", forward, models.BEAM_FORWARDS)
        beam_data = models.beam_data(
            data.load_beam_observations(path("observations")), table.get("log_sigma", {})
        )
        parameters = models.beam_parameters(beam_data)
        kwargs = {"data": beam_data, "forward": forward}
        model, meta = models.beam_model, {"observations": str(path("observations"))}
    else:
        error_model = config.get("error_model", "cosmic_variance")
        one_of(f"{run_file}: error_model", error_model, models.ERROR_MODELS)
        cl_table = data.load_cl_table(path("cl_table"))
        spectrum = models.spectrum_data(
            cl_table, table.get("ell_min", 1), table.get("ell_max", int(cl_table.ell.max())),
            table.get("experiments"),
        )
        kwargs = {"data": spectrum, "error_model": error_model}
        meta = {"cl_table": str(path("cl_table"))} | cl_table.meta
        if name == "spectrum_p":
            parameters = models.spectrum_p_parameters(spectrum, error_model)
            model = models.spectrum_p_model
        else:
            emulator = load_emulator(path("emulator"))
            if "emulator_degree" in table:
                try:
                    emulator = replace(emulator, degree=table["emulator_degree"])
                except ValueError as exc:  # only the degree is new here
                    raise ValueError(f"{run_file} [data] emulator_{exc}") from None
            parameters = models.spectrum_sigma_parameters(spectrum, emulator, error_model)
            kwargs["emulator"] = emulator
            model = models.spectrum_sigma_model
            meta["emulator"] = {"path": str(path("emulator")), "degree": emulator.degree}
            if emulator.degree is not None:
                meta["emulator"] |= fit_quality(emulator, spectrum.ell)
    try:
        sampler = SamplerConfig(**config.get("sampler", {}))
        thresholds = Thresholds(**config.get("diagnostics", {}))
    except TypeError as exc:
        raise ValueError(f"{run_file}: [sampler] or [diagnostics]: {exc}") from None
    kwargs["priors"] = models.resolve_priors(parameters, config.get("priors"))
    return {
        "name": name, "model": model, "kwargs": kwargs, "sampler": sampler,
        "thresholds": thresholds, "sampled": list(parameters), "data_meta": meta,
        "priors": kwargs["priors"],
    }


def run(args) -> int:
    out = Path(args.out)
    if out.exists():
        raise ValueError(f"--out {str(out)!r} already exists; choose a new folder")
    setup = build(args.run_file)

    import numpyro

    # One CPU device per chain, even beyond the core count: parallel chains then share the
    # cores (4 chains on 2 cores take about half the sequential time).
    numpyro.set_host_device_count(setup["sampler"].chains)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from crsky import sampling

    summary = {"model": setup["name"], "run_file": str(args.run_file), "data": setup["data_meta"],
               "priors": {k: asdict(v) for k, v in setup["priors"].items()},
               "sampler": asdict(setup["sampler"]), "thresholds": asdict(setup["thresholds"])}
    if not args.no_laplace:
        from crsky.fitting import fit_laplace

        start = time.perf_counter()
        fit = fit_laplace(setup["model"], setup["kwargs"], seed=setup["sampler"].seed)
        summary["laplace"] = fit.summary() | {"wall_s": time.perf_counter() - start}
    start = time.perf_counter()
    idata = sampling.run_nuts(setup["model"], setup["kwargs"], setup["sampler"])
    wall = time.perf_counter() - start
    parameters = sampling.summarize(idata)
    failures = sampling.check_diagnostics(idata, parameters, setup["thresholds"])
    summary |= {
        "parameters": parameters,
        "diagnostics": {"divergences": sampling.divergences(idata), "failures": failures,
                        "passed": not failures},
        "nuts_wall_s": wall,
    }
    paths = sampling.write_outputs(idata, summary, out, setup["sampled"])
    if args.json:
        print_json({"parameters": parameters, "diagnostics": summary["diagnostics"],
                    "files": {k: str(v) for k, v in paths.items()}})
    if failures:
        print("crsky infer: warning: diagnostics failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0
