"""Run files: the HDF5 layout of a back-tracking ensemble (one file per run).

Layout (``format_version`` 1)::

    /                       attrs: format="crsky-run", format_version, crsky_version, created,
                                   config (JSON of :class:`crsky.io.run.SimulationConfig`)
    /t_omega                (n_times,)        saved back-tracking times τ = tΩ [1/Ω]
    /directions             (Npix, 3)         arrival directions n̂ (HEALPix RING centres) [1]
    /realisations/rNNNNN    one group per finished realisation NNNNN (0-based), attrs:
                            wall_seconds, n_steps, momentum_drift_max, field_rms_over_b0
        modes/k             (N, 3)  wave vectors k_n [1/Lc]
        modes/amplitude     (N, 3)  δB_n [B0]
        modes/phase         (N,)    β_n [rad]
        r_mean              (n_times, 3)      ⟨r⟩ over trajectories [Lc]
        rr_mean             (n_times, 3, 3)   ⟨r_i r_j⟩ [Lc²]
        rr_var              (n_times, 3, 3)   variance of r_i r_j over trajectories [Lc⁴]
        r, p                (n_times, Npix, 3) positions [Lc] and p̂ (only with
                            ``save_trajectories``)
        spectra/...,maps_last per-realisation arrays of the spectra stage

Every dataset of a known name carries a ``unit`` attribute (:data:`UNITS`; ``"1"``:
dimensionless), as ``h5py`` users read it: ``f["t_omega"].attrs["unit"]``.

A realisation is written under a temporary name and renamed into place only when complete, with
the file open just for that write. An interrupted run (Ctrl-C, kill -9) therefore leaves only
whole realisations (a stray ``_partial`` group is discarded on resume) and resumes by index, so
none is lost or duplicated.
"""

import datetime
import json
import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from crsky import __version__
from crsky.io.run import Ensemble, SimulationConfig

FORMAT = "crsky-run"
FORMAT_VERSION = 1
_PARTIAL = "_partial"

_BASIS = "r rows/columns in Lc, p rows/columns 1 (basis maps r_x, r_y, r_z, p_x, p_y, p_z)"
UNITS = {
    "t_omega": "1/Omega (back-tracking time t*Omega)",
    "directions": "1 (unit vectors)",
    "modes/k": "1/Lc",
    "modes/amplitude": "B0",
    "modes/phase": "rad",
    "r_mean": "Lc",
    "rr_mean": "Lc^2",
    "rr_var": "Lc^4",
    "r": "Lc",
    "p": "1 (unit vectors)",
    "maps_last": "columns 0-2 (r) in Lc, columns 3-5 (p) 1",
    "spectra/cross_spectra": f"products of the basis maps' units: {_BASIS}",
    "spectra/alm_low": f"unit of each basis map: {_BASIS}",
    "spectra/mean": f"unit of each basis map: {_BASIS}",
    "spectra/second_moments": f"products of the basis maps' units: {_BASIS}",
}
"""The ``unit`` attribute of each run-file dataset (lengths in Lc, fields in B0)."""


def create(path: Path, config: dict, t_omega: np.ndarray, directions: np.ndarray) -> None:
    """Write a new run file with its header (fails if ``path`` exists)."""
    with h5py.File(path, "w-") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["crsky_version"] = __version__
        f.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat()
        f.attrs["config"] = json.dumps(config, sort_keys=True)
        for name, value in (("t_omega", t_omega), ("directions", directions)):
            f.create_dataset(name, data=np.asarray(value, np.float64)).attrs["unit"] = UNITS[name]
        f.create_group("realisations")


def _open_read(path: Path) -> h5py.File:
    # Readers take no HDF5 lock, so inspecting a run file never blocks a running writer.
    return h5py.File(path, "r", locking=False)


def _open_write(path: Path, patience: float = 60.0) -> h5py.File:
    """Open for appending, waiting up to ``patience`` s for another writer to let go."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return h5py.File(path, "a")
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def read_config(path: Path) -> dict:
    """The configuration stored in a run file."""
    with _open_read(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a crsky run file")
        return json.loads(f.attrs["config"])


def update_config(path: Path, config: dict) -> None:
    """Replace the configuration stored in a run file (a resumed run that asks for more
    realisations records the new count)."""
    with _open_write(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a crsky run file")
        f.attrs["config"] = json.dumps(config, sort_keys=True)


def completed(path: Path) -> list[int]:
    """Indices of the realisations stored complete in ``path``."""
    with _open_read(path) as f:
        return sorted(int(name[1:]) for name in f["realisations"] if name.startswith("r"))


def discard_partial(path: Path) -> None:
    """Delete what an interrupted write left behind (before resuming)."""
    with _open_write(path) as f:
        group = f["realisations"]
        for name in [n for n in group if n.startswith(_PARTIAL)]:
            del group[name]


def write_realisation(path: Path, index: int, arrays: dict, attrs: dict) -> None:
    """Store realisation ``index`` atomically: write under a temporary name, then rename.

    ``arrays`` maps dataset paths (``"modes/k"``, ``"r_mean"``, ...) to arrays.
    """
    with _open_write(path) as f:
        group = f["realisations"]
        tmp = f"{_PARTIAL}{index:05d}"
        if tmp in group:
            del group[tmp]
        g = group.create_group(tmp)
        for name, value in arrays.items():
            data = g.create_dataset(name, data=np.asarray(value), compression="gzip",
                                    compression_opts=1)
            if name in UNITS:
                data.attrs["unit"] = UNITS[name]
        for name, value in attrs.items():
            g.attrs[name] = value
        group.move(tmp, f"r{index:05d}")
        f.flush()


def load(path: str | Path, names: tuple[str, ...] | None = None) -> Ensemble:
    """Read a run file into an :class:`crsky.io.run.Ensemble` (per-realisation arrays stacked
    along a first axis, in realisation order).

    Args:
        path: the run file.
        names: per-realisation datasets to read (default: all except ``r`` and ``p``, which can
            be large; ask for them explicitly).

    Returns:
        the :class:`~crsky.io.run.Ensemble` of the realisations stored complete.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"run file {str(path)!r} does not exist")
    config = SimulationConfig.from_dict(read_config(path))
    with _open_read(path) as f:
        group = f["realisations"]
        keys = sorted(n for n in group if not n.startswith(_PARTIAL))
        arrays, attrs = {}, {}
        if keys:
            available = []
            group[keys[0]].visititems(
                lambda n, obj: available.append(n) if isinstance(obj, h5py.Dataset) else None
            )
            for name in names or tuple(n for n in available if n not in ("r", "p")):
                if name not in available:
                    raise ValueError(f"run file {str(path)!r} has no dataset {name!r}")
                arrays[name] = np.stack([group[k][name][()] for k in keys])
            attrs = {a: np.array([group[k].attrs[a] for k in keys]) for a in group[keys[0]].attrs}
        return Ensemble(
            config=config,
            t_omega=f["t_omega"][()],
            directions=f["directions"][()],
            indices=np.array([int(k[1:]) for k in keys], dtype=int),
            arrays=arrays,
            attrs=attrs,
        )


def merge_runfiles(paths: Sequence[str | Path], out: str | Path) -> list[int]:
    """Combine run files of one configuration (one per host) into the new run file ``out``.

    Every input must hold the same configuration, times and directions; the realisation sets
    must be disjoint. Realisations are copied whole (datasets and attributes, bit for bit).

    Returns:
        the sorted realisation indices of ``out``; the caller checks them against
        ``range(realisations)`` if the run should be complete.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("paths must name at least one run file")
    out = Path(out)
    if out.exists():
        raise ValueError(f"out {str(out)!r} exists")
    config = read_config(paths[0])
    with h5py.File(paths[0], "r", locking=False) as f:
        t_omega, directions = f["t_omega"][()], f["directions"][()]
    owner: dict[int, Path] = {}
    for path in paths:
        if read_config(path) != config:
            raise ValueError(f"{str(path)!r} has a different configuration from {str(paths[0])!r}")
        with h5py.File(path, "r", locking=False) as f:
            if not (
                np.array_equal(f["t_omega"][()], t_omega)
                and np.array_equal(f["directions"][()], directions)
            ):
                raise ValueError(f"{str(path)!r} has different times or directions")
        for index in completed(path):
            if index in owner:
                raise ValueError(f"realisation {index} is in both {owner[index]} and {path}")
            owner[index] = path
    create(out, config, t_omega, directions)
    with h5py.File(out, "a") as dst:
        for index in sorted(owner):
            with h5py.File(owner[index], "r", locking=False) as src:
                name = f"r{index:05d}"
                src.copy(src["realisations"][name], dst["realisations"], name=name)
    return sorted(owner)
