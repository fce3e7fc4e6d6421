"""Plain-text tables read and written by crsky: C_l tables, beam observations, experiments and
emulator tables (formats in ``data/README.md``). Loaders raise ``ValueError`` naming the file,
line and column (or key) of the first problem."""

import math
from pathlib import Path

import numpy as np

from crsky import _validate
from crsky.inference.data import (
    BEAM_OBSERVABLES,
    CL_COLUMNS,
    CL_OPTIONAL_COLUMNS,
    SPECTRUM_KINDS,
    BeamObservations,
    ClTable,
    Experiment,
)
from crsky.inference.emulator import EMULATOR_COLUMNS, Emulator
from crsky.io.text import load_toml, read_table
from crsky.physics import observatory


def load_emulator(path: str | Path, degree: int | None = None) -> Emulator:
    """Read and validate an emulator table (format in the module docstring).

    ``degree``: ``None`` to interpolate in ``ln σ``, or the degree of the least-squares
    polynomial in ``ln σ`` (:class:`Emulator`).

    ``ValueError`` names the file, line and column: missing column, non-finite value,
    ``sigma``/``rl_over_lc`` <= 0, negative error, duplicate or missing grid points; or
    ``degree`` when it does not fit the table.
    """
    path = Path(path)
    meta, header, number, cells = read_table(path, "emulator table")
    if sorted(header) != sorted(EMULATOR_COLUMNS):
        raise ValueError(f"{path}, line {number}: columns must be {', '.join(EMULATOR_COLUMNS)}")
    rows = {}
    for number, line in cells:
        row = {}
        for column, cell in zip(header, line, strict=True):
            where = f"{path}, line {number}, column {column!r}"
            try:
                row[column] = float(cell)
            except ValueError:
                raise ValueError(f"{where}: {cell!r} is not a number") from None
            if not math.isfinite(row[column]):
                raise ValueError(f"{where}: value must be finite, got {cell!r}")
            if column in ("sigma", "rl_over_lc", "ell") and row[column] <= 0:
                raise ValueError(f"{where}: must be > 0, got {cell!r}")
            if column == "error" and row[column] < 0:
                raise ValueError(f"{where}: error must be >= 0, got {cell!r}")
        key = (row["sigma"], row["rl_over_lc"], int(row["ell"]))
        if key in rows:
            raise ValueError(f"{path}, line {number}: duplicate grid point {key}")
        rows[key] = (row["ratio"], row["error"])
    axes = [sorted({k[i] for k in rows}) for i in range(3)]
    grid = [(s, r, e) for s in axes[0] for r in axes[1] for e in axes[2]]
    absent = [g for g in grid if g not in rows]
    if absent:
        raise ValueError(f"{path}: the (sigma, rl_over_lc, ell) grid is incomplete: no {absent[0]}")
    if 1 not in axes[2]:
        raise ValueError(f"{path}: the table needs ell = 1 (the normalisation of Ĉ_l/Ĉ_1)")
    shape = tuple(len(a) for a in axes)
    values = np.asarray([rows[g] for g in grid], dtype=float).reshape(*shape, 2)
    return Emulator(
        sigma=np.asarray(axes[0], dtype=float),
        rl_over_lc=np.asarray(axes[1], dtype=float),
        ell=np.asarray(axes[2], dtype=int),
        ratio=values[..., 0],
        error=values[..., 1],
        meta=meta,
        degree=degree,
    )


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
        if key == "energy_tev":
            value = entry["value"]
            if not (isinstance(value, list) and len(value) == 2):
                raise ValueError(
                    f"{path}: energy_tev.value must be a list [low, high] of two numbers, got "
                    f"{value!r}"
                )
            _validate.positive(f"{path}: energy_tev.value", value)
        else:
            _validate.number(f"{path}: {key}.value", entry["value"])
            _validate.positive(f"{path}: {key}.value", entry["value"])
        values[key], sources[key] = entry["value"], str(entry["source"])
    low, high = (float(v) for v in values["energy_tev"])
    if not low < high:
        raise ValueError(f"{path}: energy_tev.value must be [low, high] with low < high")
    return BeamObservations(
        width_deg=float(values["width_deg"]),
        fractional_excess=float(values["fractional_excess"]),
        p_bmax_tev=float(values["p_bmax_tev"]),
        energy_tev=(low, high),
        sources=sources,
    )


EXPERIMENT_KEYS = ("site_latitude_deg", "declination_deg", "exposure", "median_energy_tev",
                   "events", "f_sky", "noise", "ell_max")
"""Quantities of an experiment in ``data/experiments.toml`` (each ``{value, source}``)."""


def load_experiments(path: str | Path) -> dict[str, Experiment]:
    """Read an experiments table (``data/experiments.toml``): one TOML table per experiment,
    each quantity of :data:`EXPERIMENT_KEYS` a table ``{value = .., source = ".."}``; a quantity
    without ``value`` is unknown (its ``source`` says "not found"). ``declination_deg`` needs a
    value.

    ``ValueError`` names the file, experiment and key: unknown or missing key, no source, a
    declination range outside [-90, 90] or not increasing, ``f_sky`` outside (0, 1],
    negative noise, non-positive events or energy, ``ell_max`` not an integer >= 1, an exposure
    other than ``"flat"``.
    """
    path = Path(path)
    out = {}
    for name, entry in load_toml(path).items():
        where = f"{path}: [{name}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table of quantities")
        unknown = sorted(set(entry) - set(EXPERIMENT_KEYS))
        missing = sorted(set(EXPERIMENT_KEYS) - set(entry))
        if unknown or missing:
            raise ValueError(f"{where}: unknown key(s) {unknown}, missing key(s) {missing}")
        values, sources = {}, {}
        for key in EXPERIMENT_KEYS:
            item = entry[key]
            if not isinstance(item, dict) or not isinstance(item.get("source"), str) or (
                set(item) - {"value", "source"}
            ):
                raise ValueError(f"{where} {key} must be {{value = .., source = \"..\"}}")
            sources[key] = item["source"]
            values[key] = item.get("value")
        dec = values["declination_deg"]
        if not (isinstance(dec, list) and len(dec) == 2):
            raise ValueError(f"{where} declination_deg.value must be [low, high] in degrees")
        try:
            observatory.check_declination_range(*(float(d) for d in dec))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where} declination_deg: {exc}") from None
        if values["exposure"] != "flat":
            raise ValueError(f"{where} exposure.value must be 'flat' (the only profile with a "
                             f"source), got {values['exposure']!r}")
        number = {}
        for key, check in (("site_latitude_deg", _validate.finite),
                           ("median_energy_tev", _validate.positive),
                           ("events", _validate.positive), ("f_sky", _validate.positive),
                           ("noise", _validate.non_negative)):
            value = values[key]
            if value is None:
                number[key] = math.nan
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where} {key}.value must be a number, got {value!r}")
            check(f"{where} {key}.value", value)
            number[key] = float(value)
        if number["f_sky"] > 1:
            raise ValueError(f"{where} f_sky.value must be <= 1, got {number['f_sky']!r}")
        if values["ell_max"] is not None:
            _validate.positive_int(f"{where} ell_max.value", values["ell_max"])
        out[name] = Experiment(
            name, number["f_sky"], number["noise"], values["ell_max"],
            "; ".join(f"{k}: {sources[k]}" for k in ("f_sky", "noise", "ell_max")),
            dec_min_deg=float(dec[0]), dec_max_deg=float(dec[1]),
            site_latitude_deg=number["site_latitude_deg"], exposure="flat",
            median_energy_tev=number["median_energy_tev"], events=number["events"],
            sources=sources,
        )
    return out


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
    if column == "transfer" and value <= 0:
        raise ValueError(f"{where}: transfer must be > 0, got {text!r}")
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
    unknown = [c for c in header if c not in CL_COLUMNS + CL_OPTIONAL_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise ValueError(
            f"{path}, line {number}: unknown or repeated column(s) {unknown or header}; "
            f"expected {', '.join(CL_COLUMNS)} (and optionally {', '.join(CL_OPTIONAL_COLUMNS)})"
        )
    if "transfer" in header and meta.get("spectrum", "full_sky") != "pseudo":
        raise ValueError(f"{path}, line {number}: column 'transfer' applies to pseudo-C_l tables "
                         "only (header 'spectrum: pseudo')")
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
    if meta.get("spectrum", "full_sky") not in SPECTRUM_KINDS:
        raise ValueError(f"{path}: header 'spectrum' must be one of {', '.join(SPECTRUM_KINDS)}, "
                         f"got {meta['spectrum']!r}")
    cols = {c: [r[c] for _, r in rows] for c in CL_COLUMNS}
    return ClTable(
        ell=np.asarray(cols["ell"], dtype=int),
        cl=np.asarray(cols["cl"], dtype=float),
        error=np.asarray(cols["error"], dtype=float),
        experiment=np.asarray(cols["experiment"], dtype=str),
        f_sky=np.asarray(cols["f_sky"], dtype=float),
        noise=np.asarray(cols["noise"], dtype=float),
        meta=meta,
        transfer=(np.asarray([r["transfer"] for _, r in rows], dtype=float)
                  if "transfer" in header else None),
    )


def write_cl_table(path: str | Path, table: ClTable) -> None:
    """Write ``table`` in the C_l table format, ``table.meta`` as ``# key: value`` header lines."""
    lines = [f"# {k}: {v}" for k, v in table.meta.items()]
    lines.append(",".join(CL_COLUMNS + (() if table.transfer is None else ("transfer",))))
    for i in range(table.ell.size):
        noise = "" if math.isnan(table.noise[i]) else repr(float(table.noise[i]))
        transfer = "" if table.transfer is None else f",{float(table.transfer[i])!r}"
        lines.append(
            f"{int(table.ell[i])},{float(table.cl[i])!r},{float(table.error[i])!r},"
            f"{table.experiment[i]},{float(table.f_sky[i])!r},{noise}{transfer}"
        )
    Path(path).write_text("\n".join(lines) + "\n")
