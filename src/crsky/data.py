"""Observed and mock data for inference: beam observables, C_l tables, experiments, mock spectra.

Everything read here is documented in ``data/README.md``; the observed numbers come from
``OBSERVATIONS.md`` with their source lines kept in the files.

C_l table (CSV, one row per experiment and multipole)::

    # key: value            optional header lines (mock, truth, seed, command, source, ...)
    ell,cl,error,experiment,f_sky,noise
    2,3.1e-08,4.2e-09,IceCube,0.3,2.5e-11

- ``ell``: integer multipole >= 0;
- ``cl``: noise-subtracted estimate ``C_l - N`` (rel.-diffusion paper eq. 3.1; may be negative);
- ``error``: published 1-sigma error (> 0), used only with ``error_model = "table"``;
- ``experiment``: name; ``f_sky`` in (0, 1] and ``noise`` >= 0 are the experiment's sky fraction
  and shot-noise level, the same on all its rows; an empty ``noise`` cell means "not known" and
  makes the noise a free parameter of the spectrum models.

Loaders raise ``ValueError`` naming the file, line and column of the first problem.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from crsky import _validate
from crsky.io import load_toml, read_table

CL_COLUMNS = ("ell", "cl", "error", "experiment", "f_sky", "noise")
BEAM_OBSERVABLES = ("width_deg", "fractional_excess", "p_bmax_tev")


def cosmic_variance_sigma(cl, ell, f_sky, noise):
    """Gaussian 1-sigma error of a noise-subtracted ``C_l`` on a partial sky.

    ``sigma = sqrt(2 / ((2 l + 1) f_sky)) (C_l + N)`` (rel.-diffusion paper, Fig. 1 caption;
    PHYSICS.md §B). Broadcasts over ``cl``, ``ell``, ``f_sky``, ``noise`` (same units as C_l).
    """
    # Rel.-diffusion paper, Fig. 1 caption: partial-sky cosmic variance plus noise.
    return jnp.sqrt(2.0 / ((2.0 * ell + 1.0) * f_sky)) * (cl + noise)


# --------------------------------------------------------------------------- beam observables


@dataclass(frozen=True)
class BeamObservations:
    """MILAGRO beam observables (values only; their uncertainties are assumptions of a run).

    ``width_deg``: beam angular width (deg); ``fractional_excess``: beam excess relative to the
    large-scale anisotropy; ``p_bmax_tev``: beam cut-off momentum (TeV/c);
    ``energy_tev``: (low, high) range of the beam median energy (TeV); ``sources``: source line
    per quantity.
    """

    width_deg: float
    fractional_excess: float
    p_bmax_tev: float
    energy_tev: tuple[float, float]
    sources: dict = field(default_factory=dict)


def load_beam_observations(path: str | Path) -> BeamObservations:
    """Read a beam observation file (TOML, see ``data/milagro_beam.toml``)."""
    path = Path(path)
    table = load_toml(path)
    expected = (*BEAM_OBSERVABLES, "energy_tev")
    for key in table:
        if key not in expected:
            raise ValueError(f"{path}: unknown quantity {key!r}; expected {', '.join(expected)}")
    values, sources = {}, {}
    for key in expected:
        entry = table.get(key)
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise ValueError(f"{path}: [{key}] needs 'value' and 'source'")
        _validate.positive(f"{path}: {key}.value", entry["value"])
        values[key], sources[key] = entry["value"], str(entry["source"])
    low, high = (float(v) for v in np.atleast_1d(values["energy_tev"]))
    if not low < high:
        raise ValueError(f"{path}: energy_tev.value must be [low, high] with low < high")
    return BeamObservations(
        width_deg=float(values["width_deg"]),
        fractional_excess=float(values["fractional_excess"]),
        p_bmax_tev=float(values["p_bmax_tev"]),
        energy_tev=(low, high),
        sources=sources,
    )


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Experiment:
    """An anisotropy experiment: sky fraction, noise level ``N`` and the largest usable ``l``."""

    name: str
    f_sky: float
    noise: float
    ell_max: int
    source: str


def load_experiments(path: str | Path) -> dict[str, Experiment]:
    """Read ``data/cl_experiments.toml``: one table per experiment (f_sky, noise, ell_max)."""
    path = Path(path)
    out = {}
    for name, entry in load_toml(path).items():
        missing = {"f_sky", "noise", "ell_max", "source"} - set(entry)
        if missing:
            raise ValueError(f"{path}: [{name}] is missing {', '.join(sorted(missing))}")
        _validate.positive(f"{path}: {name}.f_sky", entry["f_sky"])
        if entry["f_sky"] > 1:
            raise ValueError(f"{path}: {name}.f_sky must be <= 1, got {entry['f_sky']!r}")
        _validate.non_negative(f"{path}: {name}.noise", entry["noise"])
        _validate.positive_int(f"{path}: {name}.ell_max", entry["ell_max"])
        out[name] = Experiment(
            name, float(entry["f_sky"]), float(entry["noise"]), entry["ell_max"], entry["source"]
        )
    return out


# --------------------------------------------------------------------------- C_l tables


@dataclass(frozen=True)
class ClTable:
    """A validated C_l table: 1-d numpy arrays of equal length, one entry per row.

    ``noise`` is NaN where the file left it empty (unknown). ``meta`` holds the header lines.
    """

    ell: np.ndarray
    cl: np.ndarray
    error: np.ndarray
    experiment: np.ndarray
    f_sky: np.ndarray
    noise: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def experiments(self) -> tuple[str, ...]:
        """Experiment names in order of first appearance."""
        return tuple(dict.fromkeys(self.experiment.tolist()))


def _parse_cell(path, line, column, text):
    where = f"{path}, line {line}, column {column!r}"
    if column == "experiment":
        if not text:
            raise ValueError(f"{where}: empty experiment name")
        return text
    if column == "noise" and text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: value must be finite, got {text!r}")
    if column == "ell" and (value != int(value) or value < 0):
        raise ValueError(f"{where}: ell must be an integer >= 0, got {text!r}")
    if column == "error" and value <= 0:
        raise ValueError(f"{where}: error must be > 0, got {text!r}")
    if column == "f_sky" and not 0 < value <= 1:
        raise ValueError(f"{where}: f_sky must lie in (0, 1], got {text!r}")
    if column == "noise" and value < 0:
        raise ValueError(f"{where}: noise must be >= 0, got {text!r}")
    return int(value) if column == "ell" else value


def load_cl_table(path: str | Path) -> ClTable:
    """Read and validate a C_l table (format in the module docstring and ``data/README.md``).

    Errors name the file, line and column: missing or unknown column, wrong number of cells,
    non-numeric or non-finite value, ``error <= 0``, duplicate (experiment, ell), an experiment
    whose ``f_sky`` or ``noise`` changes between rows.
    """
    path = Path(path)
    meta, header, number, cells = read_table(path, "C_l table")
    missing = [c for c in CL_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}, line {number}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in CL_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise ValueError(
            f"{path}, line {number}: unknown or repeated column(s) {unknown or header}; "
            f"expected {', '.join(CL_COLUMNS)}"
        )
    rows = [
        (n, {c: _parse_cell(path, n, c, t) for c, t in zip(header, row, strict=True)})
        for n, row in cells
    ]
    seen, per_experiment = {}, {}
    for number, row in rows:
        key = (row["experiment"], row["ell"])
        if key in seen:
            raise ValueError(
                f"{path}, line {number}, column 'ell': duplicate ell={row['ell']} for experiment "
                f"{row['experiment']!r} (first on line {seen[key]})"
            )
        seen[key] = number
        first = per_experiment.setdefault(row["experiment"], (number, row))
        for column in ("f_sky", "noise"):
            a, b = first[1][column], row[column]
            if not (a == b or (math.isnan(a) and math.isnan(b))):
                raise ValueError(
                    f"{path}, line {number}, column {column!r}: {b!r} differs from {a!r} on line "
                    f"{first[0]} for experiment {row['experiment']!r}"
                )
    cols = {c: [r[c] for _, r in rows] for c in CL_COLUMNS}
    return ClTable(
        ell=np.asarray(cols["ell"], dtype=int),
        cl=np.asarray(cols["cl"], dtype=float),
        error=np.asarray(cols["error"], dtype=float),
        experiment=np.asarray(cols["experiment"], dtype=str),
        f_sky=np.asarray(cols["f_sky"], dtype=float),
        noise=np.asarray(cols["noise"], dtype=float),
        meta=meta,
    )


def write_cl_table(path: str | Path, table: ClTable) -> None:
    """Write ``table`` in the C_l table format, ``table.meta`` as ``# key: value`` header lines."""
    lines = [f"# {k}: {v}" for k, v in table.meta.items()]
    lines.append(",".join(CL_COLUMNS))
    for i in range(table.ell.size):
        noise = "" if math.isnan(table.noise[i]) else repr(float(table.noise[i]))
        lines.append(
            f"{int(table.ell[i])},{float(table.cl[i])!r},{float(table.error[i])!r},"
            f"{table.experiment[i]},{float(table.f_sky[i])!r},{noise}"
        )
    Path(path).write_text("\n".join(lines) + "\n")


def mock_cl_table(
    p: float, q1: float, experiments: list[Experiment], seed: int, ell_min: int = 1, meta=None
) -> ClTable:
    """A mock C_l table drawn from the BGK closure at the experiments' sky fractions and noise.

    For each experiment, ``l = ell_min .. ell_max``: the truth ``C_l = crsky.bgk.cl(p, l, q1)``
    (rel.-diffusion paper eq. 4.7) plus a Gaussian draw with the partial-sky cosmic-variance +
    noise error of :func:`cosmic_variance_sigma` at the truth, which is also written as ``error``.
    Gaussian draws match the likelihood of :func:`crsky.models.spectrum_p_model`.
    The header records ``mock: true``, the truth and the seed (plus ``meta``).
    """
    from crsky import bgk

    _validate.open_interval("p", p, 0.0, 1.0)
    _validate.positive("q1", q1)
    _validate.positive_int("ell_min", ell_min)
    rng = np.random.default_rng(seed)
    cols = {c: [] for c in CL_COLUMNS}
    for exp in experiments:
        if exp.ell_max < ell_min:
            raise ValueError(f"experiment {exp.name}: ell_max={exp.ell_max} < ell_min={ell_min}")
        ell = np.arange(ell_min, exp.ell_max + 1)
        truth = np.asarray(bgk.cl(p, jnp.asarray(ell), q1))
        sigma = np.asarray(cosmic_variance_sigma(truth, ell, exp.f_sky, exp.noise))
        cols["ell"].append(ell)
        cols["cl"].append(truth + sigma * rng.standard_normal(ell.size))
        cols["error"].append(sigma)
        cols["experiment"].append(np.full(ell.size, exp.name))
        cols["f_sky"].append(np.full(ell.size, exp.f_sky))
        cols["noise"].append(np.full(ell.size, exp.noise))
    header = {"mock": "true", "truth": f"p={p!r}, q1={q1!r}", "seed": str(seed)}
    return ClTable(**{c: np.concatenate(v) for c, v in cols.items()}, meta=header | (meta or {}))


def cl_table_from_run(run: dict, orientation: str = "parallel", ell_max: int | None = None,
                      experiment: str = "simulation", command: str = "",
                      t_omega: float | None = None) -> ClTable:
    """The simulated ``Ĉ_l = ⟨C_l⟩ − N`` (rel.-diffusion paper eq. 3.1) of a back-tracking run
    at one saved time, as a C_l table: ``error`` is the standard error over realisations,
    ``f_sky = 1``, ``noise`` the shot noise ``N`` already subtracted (eq. 3.1). Use it with
    ``error_model = "table"`` (the ensemble error, not single-sky cosmic variance).

    Args:
        run: :func:`crsky.runfile.load` output (≥ 2 realisations).
        orientation: unit gradient ``"parallel"`` or ``"perpendicular"`` to B0 (|∇n|/n = 1/Lc).
        ell_max: largest multipole (default: all stored).
        t_omega: the saved time ``tΩ`` to export (to 1e-6 relative; default the last). The
            noise grows as T while the spectrum levels off, so an earlier time in the
            asymptotic regime can carry more multipoles above the noise.
    """
    from crsky import sky
    from crsky.ensemble import anisotropy

    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    if len(run["indices"]) < 2:
        raise ValueError("the run needs at least 2 realisations for an error over realisations")
    times = np.asarray(run["t_omega"], dtype=float)
    at = times.size - 1
    if t_omega is not None:
        _validate.positive("t_omega", t_omega)
        matches = np.flatnonzero(np.abs(times - t_omega) <= 1e-6 * t_omega)
        if not matches.size:
            raise ValueError(f"t_omega must be one of the run's saved times "
                             f"{', '.join(f'{t:.6g}' for t in times)}; got {t_omega!r}")
        at = int(matches[0])
    stats = anisotropy(run, orientations=(orientation,))[orientation]
    cl_hat, err = np.asarray(stats["cl_hat"][at]), np.asarray(stats["cl_hat_err"][at])
    top = cl_hat.size - 1 if ell_max is None else ell_max
    _validate.positive_int("ell_max", top)
    if top > cl_hat.size - 1:
        raise ValueError(f"ell_max must be <= {cl_hat.size - 1} (the run's spectra), got {top}")
    ell = np.arange(1, top + 1)
    config = run["config"]
    meta = {
        "mock": "false (simulated, not observed)",
        "source": f"crsky back-tracking run, gradient {orientation} to B0, "
                  f"t_omega = {times[at]:.6g}",
        "truth": f"sigma = {config['sigma2'] ** 0.5:g}, r_larmor = {config['r_larmor']:g}",
        "seed": str(config["seed"]),
        "realisations": f"{len(run['indices'])} (of {config['realisations']} configured)",
        "config": json.dumps(config, sort_keys=True),
        "command": command,
    }
    n = ell.size
    return ClTable(ell=ell, cl=cl_hat[ell], error=err[ell],
                   experiment=np.array([experiment] * n), f_sky=np.ones(n),
                   noise=np.full(n, float(stats["noise"][at])), meta=meta)
