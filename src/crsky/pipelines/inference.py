"""Inference run files (TOML, ``inference/*.toml``): validated and assembled into a NumPyro
model with its data, priors, sampler settings and diagnostic thresholds, before any sampling.
The keys are documented in ``docs/inference.md``."""

from dataclasses import replace
from pathlib import Path

from crsky import resources
from crsky._validate import one_of
from crsky.inference import models
from crsky.inference.data import find_experiment, pseudo_cl_forward
from crsky.inference.emulator import fit_quality
from crsky.inference.fitting import iterate_fiducial
from crsky.inference.sampling import SamplerConfig, Thresholds
from crsky.io.tables import (
    load_beam_observations,
    load_cl_table,
    load_emulator,
    load_experiments,
)
from crsky.io.text import load_toml, toml_key_lines
from crsky.physics import beam

MODELS = ("beam", "spectrum_p", "spectrum_sigma")
FIDUCIALS = ("model", "iterate")
"""String values of a run file's ``fiducial`` (else a table of the model's parameters)."""

EXCESS_TABLE_EPS = (1e-6, 0.02)
"""ε range of the beam model's excess table (``forward = "table"``); below 1e-6 the eigen
solver itself loses accuracy when δ ≲ 1e-5, and the table is clamped (the ratio to the
asymptotic excess is flat there)."""
EXCESS_TABLE_DELTA = (1e-5, 1e-3)
"""δ = V_A/c range of the excess table; a ``table`` run's ``va_over_c`` prior must lie in it."""


TOP_KEYS = {"model", "forward", "error_model", "fiducial", "data", "priors", "sampler",
            "diagnostics"}


DATA_KEYS = {
    "beam": {"observations", "log_sigma"},
    "spectrum_p": {"cl_table", "ell_min", "ell_max", "experiments", "experiment",
                   "experiments_file"},
    "spectrum_sigma": {"cl_table", "ell_min", "ell_max", "experiments", "emulator",
                       "emulator_degree", "experiment", "experiments_file"},
}


def _check_keys(where: str, table: dict, allowed: set, lines: dict) -> None:
    for key in table:
        if key not in allowed:
            line = f" (line {lines[key]})" if key in lines else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{line}; allowed: {', '.join(sorted(allowed))}"
            )


def experiment_names(run_file, table: dict, cl_table) -> dict:
    """``[data] experiment`` (a name or a list, case-insensitive) resolved in the experiments
    file (``experiments_file``, default the built-in ``experiments.toml``): ``{name in the C_l
    table: Experiment}``. ``ValueError`` for an unknown experiment or one absent from the table.
    """
    requested = table["experiment"]
    requested = [requested] if isinstance(requested, str) else list(requested)
    if not requested:
        raise ValueError(f"{run_file} [data] experiment must name at least one experiment")
    catalogue = load_experiments(
        resources.resolve("data", table.get("experiments_file", "experiments.toml"))
    )
    out = {}
    for name in requested:
        exp = find_experiment(catalogue, name)
        row = next((e for e in cl_table.experiments if e.casefold() == exp.name.casefold()), None)
        if row is None:
            raise ValueError(f"{run_file} [data] experiment {name!r} has no rows in the C_l table "
                             f"(it has {', '.join(cl_table.experiments)})")
        out[row] = exp
    return out


def observation_operators(run_file, cl_table, spectrum, experiments: dict) -> dict:
    """The :class:`~crsky.inference.data.PseudoClForward` of each experiment of ``spectrum``
    at the C_l table's ``nside`` (header line, required) and ``lmax_sky`` (header, optional)."""
    if "nside" not in cl_table.meta:
        raise ValueError(f"{run_file}: the C_l table needs an 'nside' header line (the HEALPix "
                         "resolution of the maps behind its pseudo-C_l)")
    try:
        nside = int(cl_table.meta["nside"])
        lmax_sky = int(cl_table.meta["lmax_sky"]) if "lmax_sky" in cl_table.meta else None
    except ValueError:
        raise ValueError(f"{run_file}: the C_l table's nside / lmax_sky must be integers") from None
    lmax = int(spectrum.ell.max())
    return {name: pseudo_cl_forward(experiments[name], nside, lmax, lmax_sky)
            for name in spectrum.experiments}


def build(run_file: str | Path) -> dict:
    """Validate a run file and build its model; raises ``ValueError`` before any sampling.

    Returns ``model`` (function), ``kwargs`` (its arguments), ``sampler``
    (:class:`~crsky.inference.sampling.SamplerConfig`), ``thresholds``, ``sampled`` (parameter
    names), ``units`` (unit of each parameter, ``"1"`` dimensionless), ``data_meta`` (header of
    the data file, e.g. the truth of mock data), ``coords`` and
    ``dims`` (ArviZ labels of the observed sites: ℓ of each C_ℓ row of the spectrum models).
    ``run_file`` is a built-in name (``"milagro_beam"``, :func:`crsky.resources.names`) or a
    path.
    """
    run_file = resources.resolve("run_file", run_file)
    config = load_toml(run_file)
    lines = toml_key_lines(run_file)
    try:
        return _build(run_file, config, lines)
    except ValueError as exc:  # every message names the run file
        text = str(exc)
        raise ValueError(text if str(run_file) in text else f"{run_file}: {text}") from None


def _table(where: str, value, lines: dict, key: str) -> dict:
    """``value`` must be a TOML table (``[key]`` or ``key = {...}``)."""
    if not isinstance(value, dict):
        line = f" (line {lines[key]})" if key in lines else ""
        raise ValueError(f"{where}: {key!r}{line} must be a table [{key}], got {value!r}")
    return value


def _build(run_file: Path, config: dict, lines: dict) -> dict:
    _check_keys(str(run_file), config, TOP_KEYS, lines)
    for key in ("data", "priors", "sampler", "diagnostics"):
        _table(str(run_file), config.get(key, {}), lines, key)
    name = config.get("model")
    if name not in MODELS:
        raise ValueError(f"{run_file}: model must be one of {', '.join(MODELS)}, got {name!r}")
    if name != "beam" and "forward" in config:
        raise ValueError(f"{run_file}: 'forward' applies to the beam model only")
    for key in ("error_model", "fiducial"):
        if name == "beam" and key in config:
            raise ValueError(f"{run_file}: {key!r} applies to the spectrum models only")
    table = config.get("data", {})
    _check_keys(f"{run_file} [data]", table, DATA_KEYS[name], {})
    iterate, fiducial_names = False, ()

    def path(key):
        if key not in table:
            raise ValueError(f"{run_file} [data]: missing {key!r}")
        if not isinstance(table[key], str):
            raise ValueError(f"{run_file} [data]: {key} must be a file name (a string), got "
                             f"{table[key]!r}")
        return run_file.parent / table[key]

    for key in ("ell_min", "ell_max", "emulator_degree"):
        value = table.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{run_file} [data]: {key} must be an integer, got {value!r}")

    if name == "beam":
        forward = config.get("forward", "eigen")
        one_of(f"{run_file}: forward", forward, models.BEAM_FORWARDS)
        log_sigma = _table(f"{run_file} [data]", table.get("log_sigma", {}), {}, "log_sigma")
        beam_data = models.beam_data(load_beam_observations(path("observations")), log_sigma)
        parameters = models.beam_parameters(beam_data)
        kwargs = {"data": beam_data, "forward": forward}
        model, meta = models.beam_model, {"observations": str(path("observations"))}
        if forward == "table":
            meta["excess_table"] = {"eps": EXCESS_TABLE_EPS, "va_over_c": EXCESS_TABLE_DELTA}
        coords, dims = None, None
    else:
        error_model = config.get("error_model", "cosmic_variance")
        one_of(f"{run_file}: error_model", error_model, models.ERROR_MODELS)
        cl_table = load_cl_table(path("cl_table"))
        names = table.get("experiments")
        if "experiment" in table:
            observed = experiment_names(run_file, table, cl_table)
            names = names or list(observed)
        spectrum = models.spectrum_data(
            cl_table, table.get("ell_min", 1), table.get("ell_max", int(cl_table.ell.max())),
            names,
        )
        kwargs = {"data": spectrum, "error_model": error_model}
        coords, dims = {"ell": spectrum.ell}, {"cl_obs": ["ell"]}
        if "experiment" in table:
            kwargs["experiment"] = observation_operators(run_file, cl_table, spectrum, observed)
        models.check_observation(spectrum, kwargs.get("experiment"))
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
        fiducial_names = tuple(k for k in parameters if not k.startswith("noise_"))
        fiducial = _fiducial(str(run_file), config, lines, spectrum, error_model, fiducial_names)
        iterate = fiducial == "iterate"  # the fiducial is found in model_kwargs (fits)
        if isinstance(fiducial, dict):  # covariance held at the spectrum of these values
            kwargs["fiducial"] = fiducial
        meta["fiducial"] = fiducial
    try:
        sampler = SamplerConfig(**config.get("sampler", {}))
        thresholds = Thresholds(**config.get("diagnostics", {}))
    except TypeError as exc:
        raise ValueError(f"{run_file}: [sampler] or [diagnostics]: {exc}") from None
    kwargs["priors"] = models.resolve_priors(parameters, config.get("priors"))
    if name == "spectrum_sigma":
        _check_c1_prior(str(run_file), kwargs["priors"]["c1"], kwargs["data"])
    if name == "beam" and kwargs["forward"] == "table":
        prior = kwargs["priors"]["va_over_c"]
        lo, hi = EXCESS_TABLE_DELTA
        if prior.dist not in ("uniform", "loguniform") or prior.a < lo or prior.b > hi:
            raise ValueError(
                f"{run_file}: forward 'table' tabulates va_over_c over [{lo:g}, {hi:g}]; the "
                "va_over_c prior must be uniform or loguniform inside it (else use 'eigen')"
            )
    return {
        "name": name, "model": model, "kwargs": kwargs,
        "iterate_fiducial": fiducial_names if iterate else None,
        "sampler": sampler,
        "thresholds": thresholds, "sampled": list(parameters), "data_meta": meta,
        "priors": kwargs["priors"], "coords": coords, "dims": dims,
        "units": {k: par.unit for k, par in parameters.items()},
    }


def _fiducial(run_file: str, config: dict, lines: dict, spectrum, error_model: str,
              names: tuple[str, ...]):
    """The run file's ``fiducial``: ``"model"`` (covariance at the model), ``"iterate"`` (the
    self-consistent fiducial, :func:`crsky.inference.fitting.iterate_fiducial`) or a table of
    the model's parameters ``names`` (spectrum_p: ``{p, q1}``). Default ``"iterate"`` for
    pseudo-``C_l`` with ``error_model = "cosmic_variance"``, whose fit with the covariance at
    the model is biased; ``"model"`` otherwise."""
    default = "iterate" if spectrum.kind == "pseudo" and error_model == "cosmic_variance" \
        else "model"
    fiducial = config.get("fiducial", default)
    if fiducial != "model" and error_model != "cosmic_variance":
        raise ValueError(f"{run_file}: fiducial applies to error_model 'cosmic_variance' only")
    if isinstance(fiducial, str):
        one_of(f"{run_file}: fiducial", fiducial, FIDUCIALS)
        return fiducial
    fiducial = _table(run_file, fiducial, lines, "fiducial")
    _check_keys(f"{run_file} fiducial", fiducial, set(names), {})
    if set(fiducial) != set(names) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in fiducial.values()):
        raise ValueError(f"{run_file}: fiducial must give numbers {' and '.join(names)}, got "
                         f"{fiducial!r}")
    return {k: float(v) for k, v in fiducial.items()}


def _check_c1_prior(run_file: str, prior, spectrum) -> None:
    """Refuse a bounded ``c1`` prior that excludes the data's own ``Ĉ_1``.

    ``c1`` is the dipole of the emulated shape, so a full-sky table's ``Ĉ_1`` must lie inside
    a uniform or log-uniform prior; else the posterior sits at the prior's edge and says
    nothing (the default, sized for observed ``C_ℓ`` of order 1e-7, excludes simulated tables,
    whose ``Ĉ_1`` is of order 1-1000 for a gradient of 1/Lc).
    """
    if spectrum.kind != "full_sky" or prior.dist not in ("uniform", "loguniform"):
        return
    dipole = spectrum.cl[spectrum.ell == 1]
    outside = dipole[(dipole < prior.a) | (dipole > prior.b)]
    if outside.size:
        raise ValueError(
            f"{run_file}: the c1 prior [{prior.a:g}, {prior.b:g}] excludes the data's "
            f"C^_1 = {outside[0]:g} (c1 is the emulated dipole); set [priors] c1 to a range "
            "that holds it"
        )


def model_kwargs(setup: dict) -> dict:
    """The model's keyword arguments, with the work :func:`build` leaves out because it starts
    JAX: for the beam model with ``forward = "table"`` the Chebyshev table of the eigen excess
    (:func:`crsky.physics.beam.tabulate_excess` over :data:`EXCESS_TABLE_EPS` ×
    :data:`EXCESS_TABLE_DELTA`; 16 × 6 nodes, a few CPU seconds). Call it after choosing the
    devices (``numpyro.set_host_device_count``). Float64 required.

    With ``fiducial = "iterate"`` (the default for pseudo-``C_l``) it finds the self-consistent
    fiducial (:func:`crsky.inference.fitting.iterate_fiducial`; a few MAP fits, seconds) and
    records it, with the number of fits, in ``setup["data_meta"]["fiducial"]``."""
    kwargs = dict(setup["kwargs"])
    if setup["name"] == "beam" and kwargs["forward"] == "table":
        kwargs["excess_table"] = beam.tabulate_excess(EXCESS_TABLE_EPS, EXCESS_TABLE_DELTA,
                                                      n_eps=16, n_delta=6)
    if setup["iterate_fiducial"]:
        try:
            found = iterate_fiducial(setup["model"], kwargs, names=setup["iterate_fiducial"])
        except ValueError as exc:
            raise ValueError(f"fiducial = \"iterate\": {exc}; set fiducial to \"model\" or to a "
                             "table of values in the run file") from None
        kwargs["fiducial"] = found.fiducial
        setup["data_meta"]["fiducial"] = {"iterate": found.fiducial,
                                          "iterations": found.iterations}
    return kwargs
