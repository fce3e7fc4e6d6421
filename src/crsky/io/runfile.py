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
the file open just for that write (Ctrl-C is held back during it). An interrupted run (Ctrl-C,
kill -9) therefore leaves only whole realisations (a stray ``_partial`` group is discarded on
resume) and resumes by index, so none is lost or duplicated.

One writer at a time: :func:`writer_lock` holds the lock file ``<run file>.lock`` (the owner's
PID and host) for the whole run; a second writer is refused at once with :class:`RunFileBusy`.
Readers take no lock and never block the writer; one that meets the file in the middle of a
write retries until that write is done (a fraction of a second).
"""

import contextlib
import datetime
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import h5py
import numpy as np

from crsky import __version__
from crsky.io.run import Ensemble, SimulationConfig

FORMAT = "crsky-run"
FORMAT_VERSION = 1
_PARTIAL = "_partial"
T = TypeVar("T")

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


class RunFileBusy(OSError):
    """Another process holds the writer lock of a run file."""


def lock_path(path: str | Path) -> Path:
    """The lock file of the run file ``path``: ``<path>.lock`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _lock_owner(lock: Path) -> tuple[int, str] | None:
    """(PID, host) written in a lock file, or None while it is being written or unreadable."""
    try:
        pid, host = lock.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _stale(lock: Path, owner: tuple[int, str] | None) -> bool:
    """A lock left by a dead process on this host (or never finished, older than 10 s)."""
    if owner is None:
        try:
            return time.time() - lock.stat().st_mtime > 10.0
        except FileNotFoundError:
            return True
    pid, host = owner
    return host == socket.gethostname() and not _alive(pid)


def _take_over(lock: Path, owner) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile (then restore it)."""
    aside = lock.with_name(f"{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if _lock_owner(aside) != owner:  # we moved a fresh lock: put it back, it wins
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


def _busy(path: str | Path, lock: Path, owner) -> RunFileBusy:
    who = f"process {owner[0]} on {owner[1]}" if owner else "another process"
    return RunFileBusy(
        f"run file {str(path)!r} is being written by {who} (lock {str(lock)!r}); wait "
        "for it to finish, or remove the lock file if that process is gone"
    )


def check_free(path: str | Path) -> None:
    """Raise :class:`RunFileBusy` if a live process holds the writer lock of ``path`` (a check
    before any other, so a second writer learns at once why it is refused)."""
    lock = lock_path(path)
    if _being_written(path):
        raise _busy(path, lock, _lock_owner(lock))


def _being_written(path: str | Path) -> bool:
    """Whether a live process holds the writer lock of ``path``."""
    lock = lock_path(path)
    return lock.exists() and not _stale(lock, _lock_owner(lock))


@contextlib.contextmanager
def writer_lock(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive writer lock of the run file ``path`` for the ``with`` block.

    The lock is the file ``<path>.lock``, created atomically (``O_EXCL``) with this process's
    PID and host, and removed on exit (also on Ctrl-C and exceptions). A lock whose process is
    gone (same host, dead PID) is stale and taken over. Raises :class:`RunFileBusy` naming the
    owner when another live process holds it, ``FileNotFoundError``/``PermissionError`` when
    the folder is missing or not writable. Yields the lock file's path.
    """
    lock = lock_path(path)
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if _stale(lock, owner):
                _take_over(lock, owner)
                continue
            raise _busy(path, lock, owner) from None
        with os.fdopen(fd, "w") as f:
            f.write(me + "\n")
        break
    else:
        raise RunFileBusy(f"run file {str(path)!r}: could not take its lock {str(lock)!r}")
    try:
        yield lock
    finally:
        if _lock_owner(lock) == (os.getpid(), socket.gethostname()):
            lock.unlink(missing_ok=True)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) for the block; it is delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _read(path: str | Path, reader: Callable[[h5py.File], T], patience: float = 30.0) -> T:
    """``reader(f)`` on ``path`` opened for reading.

    Readers take no HDF5 lock, so inspecting a run file never blocks its writer. A reader can
    therefore meet the file in the middle of a write, which HDF5 reports as read errors; while a
    live writer holds the lock such a read is retried (for up to ``patience`` s). Otherwise a
    missing, unreadable, truncated or non-HDF5 file raises an error naming ``path``.
    """
    path = Path(path)
    deadline = time.monotonic() + patience
    while True:
        if not path.exists():
            raise FileNotFoundError(f"run file {str(path)!r} does not exist")
        if path.is_dir():
            raise IsADirectoryError(f"run file {str(path)!r} is a folder, not a file")
        try:
            with h5py.File(path, "r", locking=False) as f:
                return reader(f)
        except PermissionError:
            raise PermissionError(f"run file {str(path)!r} is not readable") from None
        except (OSError, RuntimeError) as exc:  # HDF5 errors of a torn or damaged file
            if _being_written(path) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise ValueError(
                f"run file {str(path)!r} is not a readable HDF5 file (truncated, damaged or "
                f"another format: {exc})"
            ) from None


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

    def reader(f: h5py.File) -> dict:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a crsky run file")
        try:
            return json.loads(f.attrs["config"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"run file {str(path)!r} has no readable 'config' attribute") from None

    return _read(path, reader)


def _group(f: h5py.File, name: str, path: Path):
    """``f[name]``, or a ``ValueError`` naming the file and the missing dataset or group."""
    try:
        return f[name]
    except KeyError:
        raise ValueError(
            f"run file {str(path)!r} has no {name!r} (damaged or incomplete)"
        ) from None


def update_config(path: Path, config: dict) -> None:
    """Replace the configuration stored in a run file (a resumed run that asks for more
    realisations records the new count)."""
    with _open_write(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a crsky run file")
        f.attrs["config"] = json.dumps(config, sort_keys=True)


def completed(path: Path) -> list[int]:
    """Indices of the realisations stored complete in ``path``."""
    return _read(path, lambda f: sorted(
        int(name[1:]) for name in _group(f, "realisations", path) if name.startswith("r")
    ))


def discard_partial(path: Path) -> None:
    """Delete what an interrupted write left behind (before resuming)."""
    with _open_write(path) as f:
        group = _group(f, "realisations", path)
        for name in [n for n in group if n.startswith(_PARTIAL)]:
            del group[name]


def write_realisation(path: Path, index: int, arrays: dict, attrs: dict) -> None:
    """Store realisation ``index`` atomically: write under a temporary name, then rename.

    ``arrays`` maps dataset paths (``"modes/k"``, ``"r_mean"``, ...) to arrays.
    """
    with _interrupts_held(), _open_write(path) as f:
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
    config = SimulationConfig.from_dict(read_config(path))
    return _read(path, lambda f: _load(f, path, config, names))


def _load(f: h5py.File, path: Path, config: SimulationConfig,
          names: tuple[str, ...] | None) -> Ensemble:
    group = _group(f, "realisations", path)
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
            arrays[name] = np.stack([_group(group[k], name, path)[()] for k in keys])
        attrs = {a: np.array([group[k].attrs[a] for k in keys]) for a in group[keys[0]].attrs}
    return Ensemble(
        config=config,
        t_omega=_group(f, "t_omega", path)[()],
        directions=_group(f, "directions", path)[()],
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
    t_omega, directions = _read(paths[0], lambda f: (f["t_omega"][()], f["directions"][()]))
    owner: dict[int, Path] = {}
    for path in paths:
        if read_config(path) != config:
            raise ValueError(f"{str(path)!r} has a different configuration from {str(paths[0])!r}")
        if not _read(path, lambda f: np.array_equal(f["t_omega"][()], t_omega)
                     and np.array_equal(f["directions"][()], directions)):
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
