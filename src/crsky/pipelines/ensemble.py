"""Ensembles of field realisations, in memory or streamed to a resumable run file.

One realisation = one draw of the turbulent field (:func:`crsky.physics.turbulence.sample_modes`
of ``config.spectrum``) and the back-tracking of ``12 nside²`` CRs arriving from the HEALPix pixel
centres (relative-diffusion paper, section 3: nside = 32 and 120 realisations). Realisation ``i``
uses the PRNG key ``fold_in(PRNGKey(seed), i)``, so the same seed gives identical output whatever
the order, chunking or interruptions.

One loop computes the realisations; :func:`simulate` keeps them in an
:class:`~crsky.io.run.Ensemble`, :func:`run_ensemble` writes each to a run file as it finishes
(read back by :func:`crsky.io.runfile.load`, the same ``Ensemble``).
"""

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from crsky.io import runfile
from crsky.io.run import DTYPES, Ensemble, SimulationConfig
from crsky.physics import sky, spectra
from crsky.physics.diffusion import position_moments
from crsky.physics.tracing import (
    FIELD_EVALUATIONS_PER_STEP,
    backtrack,
    healpix_directions,
)
from crsky.physics.turbulence import sample_modes, stack_modes, turbulent_field
from crsky.pipelines.sharding import shard_trajectories

__all__ = ["Ensemble", "SimulationConfig", "run_ensemble", "simulate", "summarise"]


def _modes(config: SimulationConfig, index: int):
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), index)
    modes = sample_modes(key, config.spectrum, dtype=DTYPES[config.dtype])
    return key, modes


def _trace_batch(config: SimulationConfig, indices: Sequence[int], trace,
                 directions: np.ndarray):
    """Back-track realisations ``indices`` together (one compiled call per chunk of
    trajectories, the realisations stacked along a leading axis).

    Returns (keys, modes, r, p, steps, wall): per-realisation lists, r and p of shape
    (n_times, n_pix, 3), steps the trajectory-steps of each, wall the seconds of the batch.
    """
    dtype = DTYPES[config.dtype]
    keys, modes = zip(*(_modes(config, index) for index in indices), strict=True)
    batch = stack_modes(modes)
    n_pix, chunk = directions.shape[0], _chunk(config)
    padded = -(-n_pix // chunk) * chunk
    dirs = np.concatenate([directions, np.tile([[0.0, 0.0, 1.0]], (padded - n_pix, 1))])
    start = time.perf_counter()
    r, p, steps = [], [], np.zeros(len(indices), dtype=np.int64)
    for lo in range(0, padded, chunk):
        traj = trace(batch, jnp.asarray(dirs[lo : lo + chunk], dtype))
        r.append(np.asarray(traj.r))
        p.append(np.asarray(traj.p))
        steps += np.sum(np.asarray(traj.n_steps)[:, : max(0, min(chunk, n_pix - lo))], axis=1)
    r = np.concatenate(r, axis=2)[:, :, :n_pix]
    p = np.concatenate(p, axis=2)[:, :, :n_pix]
    wall = time.perf_counter() - start
    return keys, modes, list(r), list(p), [int(s) for s in steps], wall


def _realisation(config: SimulationConfig, key, modes, r: np.ndarray, p: np.ndarray,
                 plan: spectra.SHTPlan | None) -> tuple[dict, dict]:
    """The run-file arrays and attributes of one back-tracked realisation (moments, spectra,
    field check)."""
    dtype = DTYPES[config.dtype]
    moments = position_moments(jnp.asarray(r))
    # ⟨δB²⟩^{1/2}/B0 measured at random points in a cube of side λmax
    points = jax.random.uniform(
        jax.random.fold_in(key, 1), (4096, 3), dtype=dtype, maxval=config.lambda_max
    )
    field_rms = float(jnp.sqrt(jnp.mean(jnp.sum(turbulent_field(modes, points) ** 2, -1))))
    arrays = {
        "modes/k": modes.k,
        "modes/amplitude": modes.amplitude,
        "modes/phase": modes.phase,
        "r_mean": moments.r_mean,
        "rr_mean": moments.rr_mean,
        "rr_var": moments.rr_var,
    }
    # Per-realisation spectra of the six Liouville basis maps (r, p̂), in float64 when enabled
    basis_dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    summary = sky.realisation_summary(
        jnp.asarray(r, basis_dtype), jnp.asarray(p, basis_dtype), plan,
        lmax=config.lmax_spectra, method=config.spectra_method,
    )
    arrays |= {f"spectra/{name}": value for name, value in summary.items()}
    arrays["maps_last"] = np.concatenate([r[-1], p[-1]], axis=-1)
    if config.save_trajectories:
        arrays |= {"r": r, "p": p}
    attrs = {
        "momentum_drift_max": float(np.max(np.abs(np.linalg.norm(p, axis=-1) - 1.0))),
        "field_rms_over_b0": field_rms,
    }
    return arrays, attrs


def _chunk(config: SimulationConfig) -> int:
    """Trajectories per call: ``chunk`` on each local device, at most all of them."""
    return min(config.chunk * jax.local_device_count(), 12 * config.nside**2)


def _tracer(config: SimulationConfig, batch: int):
    """The chunk integrator for ``batch`` realisations at once, split over all local devices
    and compiled ahead of time. Returns (compiled function, compile seconds), so throughput
    excludes compilation.
    """
    t_omega, step = config.t_omega, config.step
    chunk = _chunk(config)

    def one_device(modes, directions):
        return backtrack(
            modes, directions, t_omega, config.r_larmor, solver=config.solver, dt=step,
            rtol=config.rtol, atol=config.atol,
        )

    def trace(modes, directions):  # modes stacked: one Boris loop for all the batch
        return shard_trajectories(one_device, modes, directions, stacked=True)

    start = time.perf_counter()
    one = jax.eval_shape(lambda: _modes(config, 0)[1])
    modes = jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch, *a.shape), a.dtype), one)
    dirs = jax.ShapeDtypeStruct((chunk, 3), DTYPES[config.dtype])
    compiled = jax.jit(trace).lower(modes, dirs).compile()
    return compiled, time.perf_counter() - start


def _compute(
    config: SimulationConfig, todo: Iterable[int], n_todo: int, *, progress: bool, timing: dict
) -> Iterator[tuple[int, dict, dict]]:
    """The one loop over realisations: yields ``(index, arrays, attrs)`` of each of the
    ``n_todo`` realisations of ``todo`` as soon as its call ends
    (``config.realisations_per_call`` per call). ``todo`` is consumed lazily, so a run of any
    length needs memory for one call only.

    ``timing`` receives ``compile_seconds``, ``tracing_seconds`` (back-tracking alone) and
    ``steps`` (trajectory-steps) of the realisations yielded so far.
    """
    config.check_dtype()
    timing |= {"compile_seconds": 0.0, "tracing_seconds": 0.0, "steps": 0}
    if not n_todo:
        return
    directions = np.asarray(healpix_directions(config.nside))
    per_call, todo = config.realisations_per_call, iter(todo)
    batches = iter(lambda: list(itertools.islice(todo, per_call)), [])
    trace, timing["compile_seconds"] = _tracer(config, per_call)
    # the JAX transform's kernels are built once per run (healpy needs none)
    plan = (spectra.make_plan(config.nside, config.lmax_spectra)
            if config.spectra_method == "jax" else None)
    with tqdm(total=n_todo, desc="realisations", unit="real", disable=not progress) as bar:
        for batch in batches:
            # every call has per_call realisations (a short last batch repeats its last one,
            # discarded), so realisation i gets the same program, hence the same rounding,
            # whatever the batch it falls in, the interruptions or the hosts
            padded = batch + batch[-1:] * (per_call - len(batch))
            keys, modes, r, p, n_steps, wall = _trace_batch(config, padded, trace, directions)
            timing["steps"] += sum(n_steps[: len(batch)])
            timing["tracing_seconds"] += wall
            for index, *record in zip(batch, keys, modes, r, p, n_steps, strict=False):
                arrays, attrs = _realisation(config, *record[:4], plan)
                # a realisation's share of its call's back-tracking seconds
                attrs |= {"wall_seconds": wall / len(batch), "n_steps": record[4]}
                yield index, arrays, attrs
                bar.update()


def simulate(config: SimulationConfig, *, progress: bool = True) -> Ensemble:
    """Simulate the ``config.realisations`` realisations of ``config`` in memory.

    The same computation as :func:`run_ensemble` (bit for bit), without a file: use it for
    small ensembles inside an analysis; long runs belong in a run file (resumable).

    Args:
        config: the :class:`SimulationConfig` (e.g. ``SimulationConfig.load("reduced")``).
        progress: show a progress bar.

    Returns:
        the :class:`Ensemble`; ``.diffusion()`` gives K(T), κ∥, κ⊥ and
        ``.statistics("parallel")`` the anisotropy spectra.
    """
    if not isinstance(config, SimulationConfig):
        raise ValueError(f"config must be a SimulationConfig, got {type(config).__name__}")
    records = list(_compute(config, range(config.realisations), config.realisations,
                            progress=progress, timing={}))
    directions = np.asarray(healpix_directions(config.nside), np.float64)
    return Ensemble.from_records(config, config.t_omega, directions, records)


def run_ensemble(
    config: SimulationConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    indices: Sequence[int] | None = None,
) -> dict:
    """Simulate ``config.realisations`` realisations into the run file ``out``.

    Each realisation is written as soon as its call ends (``config.realisations_per_call``
    realisations per call; an interruption loses at most the call in flight).
    ``resume=True`` continues an interrupted run (the stored configuration must match, except
    that ``realisations`` may grow; the file then records the larger count);
    ``overwrite=True`` replaces an existing file; otherwise an existing ``out`` is an error.
    ``indices`` restricts the run to those realisations (multi-host runs give each host its
    share, :func:`crsky.pipelines.sharding.host_indices`, and merge the files with
    :func:`crsky.io.runfile.merge_runfiles`). Trajectories are split over all local devices.
    Read the file back with :func:`crsky.io.runfile.load` (an :class:`Ensemble`).

    Returns:
        a summary dict (see :func:`summarise`) plus, for the realisations computed in this call,
        ``wall_seconds`` (excluding the one-off ``compile_seconds``), ``tracing_seconds`` (the
        back-tracking alone) and ``mode_evaluations_per_second`` (trajectory-steps × modes ×
        field evaluations per step / tracing seconds), and ``peak_device_bytes`` (the most
        memory in use on one accelerator during the process so far; ``None`` on the CPU).

    The run file has one writer at a time: the whole call holds its lock
    (:func:`crsky.io.runfile.writer_lock`), and a second writer raises
    :class:`crsky.io.runfile.RunFileBusy` at once. The realisations to do are streamed, so a
    run of any length needs memory for one call only.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    with runfile.writer_lock(out):
        return _run_ensemble(config, out, resume=resume, overwrite=overwrite,
                             progress=progress, indices=indices)


def _run_ensemble(config: SimulationConfig, out: Path, *, resume: bool, overwrite: bool,
                  progress: bool, indices: Sequence[int] | None) -> dict:
    """:func:`run_ensemble` with the writer lock held."""
    if out.exists() and not (resume or overwrite):
        raise ValueError(
            f"out {str(out)!r} exists: pass --resume to continue it or --overwrite to replace it"
        )
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    config.check_dtype()
    if resume and out.exists():
        _check_resumable(config, runfile.read_config(out))
        runfile.discard_partial(out)
    if not (resume and out.exists()):
        if out.exists():
            out.unlink()
        directions = np.asarray(healpix_directions(config.nside))
        runfile.create(out, config.to_dict(), config.t_omega, directions)
    done = set(runfile.completed(out))
    if resume:  # the file records the count asked for now (never fewer than it holds)
        held = max(done, default=-1) + 1
        runfile.update_config(
            out, config.to_dict() | {"realisations": max(config.realisations, held)}
        )
    wanted = range(config.realisations) if indices is None else indices
    # streamed: a billion realisations need no list of a billion indices
    n_todo = len(wanted) - sum(1 for i in done if i in wanted)
    todo = (i for i in wanted if i not in done)
    timing = {}
    start = time.perf_counter()
    for index, arrays, attrs in _compute(config, todo, n_todo, progress=progress,
                                         timing=timing):
        runfile.write_realisation(out, index, arrays, attrs)
    wall = time.perf_counter() - start - timing["compile_seconds"]
    evals = timing["steps"] * config.modes * FIELD_EVALUATIONS_PER_STEP[config.solver]
    summary = summarise(runfile.load(out))
    summary["wall_seconds"] = wall
    summary["tracing_seconds"] = timing["tracing_seconds"]
    summary["compile_seconds"] = timing["compile_seconds"]
    # figure of merit of the back-tracking alone (spectra and I/O excluded)
    summary["mode_evaluations_per_second"] = (
        evals / timing["tracing_seconds"] if n_todo else float("nan")
    )
    summary["realisations_computed"] = n_todo
    # the allocator's high-water mark on accelerators (the CPU keeps no such statistics)
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in jax.local_devices()]
    summary["peak_device_bytes"] = max((b for b in peaks if b is not None), default=None)
    return summary


def _check_resumable(config: SimulationConfig, stored: dict) -> None:
    requested = config.to_dict()
    for key, value in stored.items():
        if key != "realisations" and requested.get(key) != value:
            raise ValueError(
                f"cannot resume: {key} is {requested.get(key)!r} but the run file has {value!r}"
            )


def summarise(ensemble: Ensemble) -> dict:
    """Headline numbers of an ensemble, JSON-ready: trajectories, |p| drift, field rms, κ∥ and
    κ⊥, and the spectra (``ell``, ``cl_mean``, ``cl_hat``, ``noise``, ``sum_rule_lhs``/``_rhs``
    (eq. 2.5) per gradient orientation, unit |∇n|/n = 1/Lc)."""
    n_real = len(ensemble)
    summary = {
        "realisations": n_real,
        "n_trajectories": n_real * ensemble.directions.shape[0],
        "t_omega": ensemble.t_omega,
    }
    if not n_real:
        return summary
    K = ensemble.diffusion()
    stats = {o: ensemble.statistics(o) for o in sky.ORIENTATIONS}
    per_orientation = {
        "cl_mean": {o: s.cl_mean for o, s in stats.items()},
        "cl_hat": {o: s.cl_hat for o, s in stats.items()},
        "noise": {o: s.noise for o, s in stats.items()},
        "sum_rule_lhs": {o: s.sum_rules.variance for o, s in stats.items()},
        "sum_rule_rhs": {o: s.sum_rules.variance_rhs for o, s in stats.items()},
    }
    attrs = ensemble.attrs
    return summary | per_orientation | {
        "ell": np.asarray(stats["parallel"].ell),
        "momentum_drift_max": float(np.max(attrs["momentum_drift_max"])),
        "field_rms_over_b0": float(np.sqrt(np.mean(attrs["field_rms_over_b0"] ** 2))),
        "kappa_parallel": float(K.kappa_parallel[-1]),
        "kappa_parallel_err": float(K.kappa_parallel_err[-1]),
        "kappa_perp": float(K.kappa_perp[-1]),
        "kappa_perp_err": float(K.kappa_perp_err[-1]),
        "kappa_parallel_vs_t": K.kappa_parallel,
        "kappa_perp_vs_t": K.kappa_perp,
    }
