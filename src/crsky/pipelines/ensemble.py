"""Ensembles of field realisations: streamed, written as they finish, resumable.

One realisation = one draw of the turbulent field (:func:`crsky.physics.turbulence.sample_modes`)
and
the back-tracking of ``12 nside²`` CRs arriving from the HEALPix pixel centres
(relative-diffusion paper, section 3: nside = 32 and 120 realisations). Realisation ``i`` uses the
PRNG key ``fold_in(PRNGKey(seed), i)``, so the same seed gives identical output whatever the
order, chunking or interruptions.
"""

import dataclasses
import itertools
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from crsky import _validate
from crsky.io import runfile
from crsky.physics import sky, spectra
from crsky.physics.anisotropy import SUMMARY_KEYS, ensemble_statistics
from crsky.physics.diffusion import DiffusionTensor, diffusion_tensor, position_moments
from crsky.physics.tracing import (
    FIELD_EVALUATIONS_PER_STEP,
    SOLVERS,
    backtrack,
    default_step,
    healpix_directions,
    log_times,
)
from crsky.physics.turbulence import (
    KOLMOGOROV_GAMMA,
    sample_modes,
    stack_modes,
    turbulent_field,
    validate_scales,
)
from crsky.pipelines import budget
from crsky.pipelines.sharding import shard_trajectories

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
TSIT5_TOLERANCES = {"float64": (1e-8, 1e-10), "float32": (1e-6, 1e-8)}
"""Default Tsit5 ``(rtol, atol)`` by dtype: in float64 those of
:func:`crsky.physics.tracing.backtrack`; in float32 the tightest a step controller can meet
(rtol a few float32 ulps, ~1.2e-7 each)."""
_KIND = {
    int: "integer", int | None: "integer", float: "number", float | None: "number",
    str: "string", bool: "boolean",
}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Parameters of a back-tracking ensemble. Lengths in Lc, times as τ = tΩ.

    The defaults are a reduced configuration that runs on a laptop CPU in about a minute; the
    paper's reference run is ``nside=32, realisations=120, modes=256, t_omega_max=1000``
    (``configs/paper.toml``).

    Attributes:
        nside: HEALPix resolution of the arrival directions (power of two).
        realisations: number of field realisations.
        modes: number of plane waves N per realisation.
        sigma2: turbulence level σ² = ⟨δB²⟩/B0².
        r_larmor: Larmor radius r_L/Lc.
        lambda_min, lambda_max: shortest/longest wavelength, Lc.
        lc: bend-over scale of the spectrum, Lc.
        gamma: spectral index (11/3: Kolmogorov).
        t_omega_min, t_omega_max, n_times: saved times, log-spaced in τ.
        solver: ``"boris"`` or ``"tsit5"``.
        dtype: ``"float32"`` (fast) or ``"float64"`` (needs ``jax_enable_x64``).
        seed: PRNG seed of the ensemble.
        dt: Boris step (Tsit5 initial step) in 1/Ω; ``None`` = :func:`default_step`.
        rtol, atol: Tsit5 tolerances; ``None`` = :data:`TSIT5_TOLERANCES` of the dtype.
        ell_max: largest multipole of the stored spectra; ``None`` = 2 nside (the range where
            the JAX transform matches healpy to 1e-8).
        spectra_method: ``"jax"`` or ``"healpy"`` back-end of the per-realisation spectra.
        save_trajectories: store r(−T), p̂(−T) of every trajectory (large).
        chunk: trajectories per device integrated in one call (bounds memory).
        realisations_per_call: field realisations back-tracked together in one call (each
            written when its call ends; a short last call is padded, so best a divisor of
            ``realisations``). 1 suits a CPU; on a GPU several realisations per call fill the
            device and amortise the per-step cost of the loop (``benchmarks/RESULTS.md``). Part
            of the configuration: it changes the rounding, so the trajectories (not their
            statistics) differ between values after chaotic growth.
    """

    nside: int = 8
    realisations: int = 4
    modes: int = 128
    sigma2: float = 1.0
    r_larmor: float = 0.1
    lambda_min: float = 0.01
    lambda_max: float = 100.0
    lc: float = 1.0
    gamma: float = KOLMOGOROV_GAMMA
    t_omega_min: float = 1.0
    t_omega_max: float = 100.0
    n_times: int = 12
    solver: str = "boris"
    dtype: str = "float32"
    seed: int = 0
    dt: float | None = None
    rtol: float | None = None
    atol: float | None = None
    ell_max: int | None = None
    spectra_method: str = "jax"
    save_trajectories: bool = False
    chunk: int = 3072
    realisations_per_call: int = 1

    def __post_init__(self):
        _validate.power_of_two("nside", self.nside)
        _validate.positive_int("realisations", self.realisations)
        # under the configuration's names (validate_spectrum says n_modes and σ, not σ²)
        _validate.positive_int("modes", self.modes)
        _validate.non_negative("sigma2", self.sigma2)
        validate_scales(self.lambda_min, self.lambda_max, self.lc, self.gamma)
        _validate.positive("r_larmor", self.r_larmor)
        log_times(self.t_omega_max, self.n_times, self.t_omega_min)
        _validate.one_of("solver", self.solver, SOLVERS)
        _validate.one_of("dtype", self.dtype, DTYPES)
        for name, default in zip(("rtol", "atol"), TSIT5_TOLERANCES[self.dtype], strict=True):
            if getattr(self, name) is None:  # stored resolved: the run file holds the number
                object.__setattr__(self, name, default)
        _validate.non_negative_int("seed", self.seed)
        if self.dt is not None:
            _validate.positive("dt", self.dt)
        _validate.positive("rtol", self.rtol)
        _validate.positive("atol", self.atol)
        _validate.positive_int("chunk", self.chunk)
        _validate.positive_int("realisations_per_call", self.realisations_per_call)
        if self.realisations_per_call > self.realisations:
            raise ValueError(
                f"realisations_per_call ({self.realisations_per_call}) must be <= realisations "
                f"({self.realisations})"
            )
        _validate.positive_int("ell_max", self.lmax_spectra)
        if self.lmax_spectra > 3 * self.nside - 1:
            raise ValueError(
                f"ell_max must be <= 3 nside - 1 = {3 * self.nside - 1}, got {self.ell_max}"
            )
        _validate.one_of("spectra_method", self.spectra_method, ("jax", "healpy"))
        if self.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ValueError(
                "dtype float64 needs jax.config.update('jax_enable_x64', True) first"
            )
        budget.check_simulation(self)  # refuse what cannot fit in memory, naming the cause

    @property
    def sigma(self) -> float:
        return math.sqrt(self.sigma2)

    @property
    def lmax_spectra(self) -> int:
        """The largest multipole of the stored spectra."""
        return self.ell_max if self.ell_max is not None else 2 * self.nside

    @property
    def step(self) -> float:
        """The step in 1/Ω actually used."""
        return self.dt if self.dt is not None else default_step(self.r_larmor, self.lambda_min)

    @property
    def t_omega(self) -> np.ndarray:
        return log_times(self.t_omega_max, self.n_times, self.t_omega_min)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, lines: dict[str, int] | None = None) -> "SimulationConfig":
        """Build from a mapping (a TOML file); unknown keys and wrong types name the key/line."""
        lines = lines or {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for key, value in values.items():
            where = f" (line {lines[key]})" if key in lines else ""
            if key not in types:
                raise ValueError(f"unknown config key {key!r}{where}")
            expected = _KIND[types[key]]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            ok = {
                "integer": number and isinstance(value, int),
                "number": number,
                "string": isinstance(value, str),
                "boolean": isinstance(value, bool),
            }[expected]
            if not ok:
                raise ValueError(f"config key {key!r}{where} must be a {expected}, got {value!r}")
        converted = {k: float(v) if _KIND[types[k]] == "number" else v for k, v in values.items()}
        return cls(**converted)


def _modes(config: SimulationConfig, index: int):
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), index)
    modes = sample_modes(
        key, config.modes, config.sigma, config.lambda_min, config.lambda_max, config.lc,
        config.gamma, dtype=DTYPES[config.dtype],
    )
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
    if resume and out.exists():
        _check_resumable(config, runfile.read_config(out))
        runfile.discard_partial(out)
    directions = np.asarray(healpix_directions(config.nside))
    if not (resume and out.exists()):
        if out.exists():
            out.unlink()
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
    per_call = config.realisations_per_call
    batches = iter(lambda: list(itertools.islice(todo, per_call)), [])
    trace, compile_seconds = _tracer(config, per_call) if n_todo else (None, 0.0)
    # the JAX transform's kernels are built once per run (healpy needs none)
    plan = (spectra.make_plan(config.nside, config.lmax_spectra)
            if config.spectra_method == "jax" else None)
    start = time.perf_counter()
    steps, tracing = 0, 0.0
    with tqdm(total=n_todo, desc="realisations", unit="real", disable=not progress) as bar:
        for batch in batches:
            # every call has per_call realisations (a short last batch repeats its last one,
            # discarded), so realisation i gets the same program, hence the same rounding,
            # whatever the batch it falls in, the interruptions or the hosts
            padded = batch + batch[-1:] * (per_call - len(batch))
            keys, modes, r, p, n_steps, wall = _trace_batch(config, padded, trace, directions)
            for index, *record in zip(batch, keys, modes, r, p, n_steps, strict=False):
                arrays, attrs = _realisation(config, *record[:4], plan)
                # a realisation's share of its call's back-tracking seconds
                attrs |= {"wall_seconds": wall / len(batch), "n_steps": record[4]}
                runfile.write_realisation(out, index, arrays, attrs)
                bar.update()
            steps += sum(n_steps[: len(batch)])
            tracing += wall
    wall = time.perf_counter() - start
    evals = steps * config.modes * FIELD_EVALUATIONS_PER_STEP[config.solver]
    summary = summarise(runfile.load(out))
    summary["wall_seconds"] = wall
    summary["tracing_seconds"] = tracing
    summary["compile_seconds"] = compile_seconds
    # figure of merit of the back-tracking alone (spectra and I/O excluded)
    summary["mode_evaluations_per_second"] = evals / tracing if n_todo else float("nan")
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


def ensemble_diffusion(run: dict) -> DiffusionTensor:
    """K_ij(T) of a loaded run (:func:`crsky.io.runfile.load`)."""
    config = run["config"]
    t = run["t_omega"] * config["r_larmor"]  # T = τ r_L in Lc/c
    n_traj = run["directions"].shape[0]
    return diffusion_tensor(run["rr_mean"], t, run["rr_var"], n_traj)


def anisotropy(
    run: dict, K_liouville=None, strength: float = 1.0,
    orientations: Iterable[str] = sky.ORIENTATIONS,
) -> dict[str, dict]:
    """Ensemble anisotropy statistics of a loaded run for the reference gradients.

    Args:
        run: :func:`crsky.io.runfile.load` output.
        K_liouville: K (Lc·c, (3, 3)) in the Liouville map; default the ensemble K at the last
            time.
        strength: |∇n|/n in 1/Lc (spectra scale with its square).
        orientations: the gradients (``"parallel"``, ``"perpendicular"`` to B0) to compute, at
            least one; a collection of names, not a single string.

    Returns:
        ``{orientation: stats}`` (default ``"parallel"`` and ``"perpendicular"``) with the dicts
        of :func:`crsky.physics.anisotropy.ensemble_statistics`.
    """
    if isinstance(orientations, str):
        raise ValueError(
            f"orientations must be a collection of names, e.g. ({orientations!r},), "
            f"not the string {orientations!r}"
        )
    orientations = tuple(orientations)  # once: a generator would be used up by the checks
    if not orientations:
        raise ValueError("orientations must name at least one orientation, got none")
    for orientation in orientations:
        _validate.one_of("orientations", orientation, sky.ORIENTATIONS)
    return _anisotropy(run, ensemble_diffusion(run).K, K_liouville, strength, orientations)


def _anisotropy(
    run: dict, K, K_liouville=None, strength: float = 1.0,
    orientations: Iterable[str] = sky.ORIENTATIONS,
) -> dict[str, dict]:
    """:func:`anisotropy` with the ensemble ``K(T)`` (n_times, 3, 3) already computed."""
    config = run["config"]
    summaries = {name: run[f"spectra/{name}"] for name in SUMMARY_KEYS}
    return {
        orientation: ensemble_statistics(
            summaries, run["t_omega"], config["r_larmor"], K,
            sky.reference_gradient(orientation, strength), nside=config["nside"],
            K_liouville=K_liouville,
        )
        for orientation in orientations
    }


def summarise(run: dict) -> dict:
    """Headline numbers of a loaded run: trajectories, |p| drift, field rms, κ∥ and κ⊥, and
    the spectra (``ell``, ``cl_mean``, ``cl_hat``, ``noise``, ``sum_rule_lhs``/``_rhs`` (eq. 2.5)
    per gradient orientation, unit |∇n|/n = 1/Lc)."""
    n_real = len(run["indices"])
    summary = {
        "realisations": n_real,
        "n_trajectories": n_real * run["directions"].shape[0],
        "t_omega": run["t_omega"],
    }
    if not n_real:
        return summary
    K = ensemble_diffusion(run)
    stats = _anisotropy(run, K.K)
    per_orientation = {
        key: {o: s[field] for o, s in stats.items()}
        for key, field in (("cl_mean", "cl_mean"), ("cl_hat", "cl_hat"), ("noise", "noise"))
    }
    per_orientation["sum_rule_lhs"] = {o: s["sum_rules"]["variance"] for o, s in stats.items()}
    per_orientation["sum_rule_rhs"] = {
        o: s["sum_rules"]["variance_rhs"] for o, s in stats.items()
    }
    return summary | per_orientation | {
        "ell": np.arange(run["spectra/cross_spectra"].shape[2]),
        "momentum_drift_max": float(np.max(run["attrs"]["momentum_drift_max"])),
        "field_rms_over_b0": float(np.sqrt(np.mean(run["attrs"]["field_rms_over_b0"] ** 2))),
        "kappa_parallel": float(K.kappa_parallel[-1]),
        "kappa_parallel_err": float(K.kappa_parallel_err[-1]),
        "kappa_perp": float(K.kappa_perp[-1]),
        "kappa_perp_err": float(K.kappa_perp_err[-1]),
        "kappa_parallel_vs_t": K.kappa_parallel,
        "kappa_perp_vs_t": K.kappa_perp,
    }

