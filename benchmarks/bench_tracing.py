"""Back-tracking throughput: mode-evaluations per second.

Figure of merit: trajectory-steps × field evaluations per step × modes / wall seconds, for one
field realisation (or ``--realisations R`` stacked in one call) of N modes and the 12 nside²
HEALPix trajectories, compile time and a
warm-up call excluded. Prints one JSON line (machine, load, sizes, median and best of
``--repeats`` timings, peak memory, and XLA's buffer sizes of the compiled call).

Variants (``--variant``):

- ``engine``: :func:`crsky.physics.tracing.backtrack` as shipped (optionally sharded over
  ``--devices``
  host or accelerator devices with :func:`crsky.pipelines.sharding.shard_trajectories`);
- ``baseline``: a straightforward formulation, kept here only to measure the gap: ``jnp.cos``
  of radian phases and one vmapped ``diffeqsolve`` per trajectory;
- ``vmap``: the baseline's vmapped ``diffeqsolve`` with the engine's field (isolates the two
  remedies);
- ``fori``: the Boris push in a bare ``lax.fori_loop`` with the engine's field (no saving, no
  diffrax), a lower bound on the loop overhead;
- ``fused``: ``fori`` with the field written without matmuls (broadcast FMAs and reductions,
  which XLA may fuse into one kernel; the phases round differently, within float32's bound);
- ``recurrence``: cos/sin of every phase carried along the trajectory and advanced by the
  rotation through k·Δx each step (the trigonometric recurrence), timing only.

Examples::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tracing.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tracing.py --variant baseline
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tracing.py --devices 2 --chunk 12288
    .venv/bin/python benchmarks/bench_tracing.py --chunk 12288 --realisations 8   # a GPU
    .venv/bin/python benchmarks/bench_tracing.py --solver tsit5 --t-omega 0.5
"""

import argparse
import json
import os
import resource
import sys
import time


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="engine",
                   choices=("engine", "baseline", "vmap", "fori", "fused", "recurrence"))
    p.add_argument("--solver", default="boris", choices=("boris", "tsit5"))
    p.add_argument("--modes", type=int, default=256, help="plane waves N")
    p.add_argument("--nside", type=int, default=32, help="12 nside^2 trajectories")
    p.add_argument("--chunk", type=int, default=3072, help="trajectories per compiled call")
    p.add_argument("--t-omega", type=float, default=4.0, help="back-tracking time tOmega")
    p.add_argument("--dt", type=float, default=0.02, help="step in 1/Omega (default_step)")
    p.add_argument("--r-larmor", type=float, default=0.1, help="r_L / Lc")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--devices", type=int, default=1,
                   help="shard trajectories over this many devices (CPU: forced host devices)")
    p.add_argument("--realisations", type=int, default=1,
                   help="field realisations per call (engine only): R x chunk trajectories")
    p.add_argument("--xla-flags", default="", help="extra XLA_FLAGS, e.g. CPU codegen flags")
    return p.parse_args()


ARGS = _parse()
# Device count and XLA flags must be set before jax is imported.
_flags = [ARGS.xla_flags] if ARGS.xla_flags else []
if ARGS.devices > 1 and "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""
):
    _flags.append(f"--xla_force_host_platform_device_count={ARGS.devices}")
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *_flags]).strip()

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

if ARGS.dtype == "float64":
    jax.config.update("jax_enable_x64", True)

from machine import describe  # noqa: E402

from crsky.physics.tracing import (  # noqa: E402
    FIELD_EVALUATIONS_PER_STEP,
    Boris,
    LorentzTerm,
    backtrack,
    healpix_directions,
)
from crsky.physics.turbulence import (  # noqa: E402
    Modes,
    TurbulenceSpectrum,
    cos_turns,
    magnetic_field,
    sample_modes,
    stack_modes,
)
from crsky.pipelines.sharding import device_mesh, shard_trajectories  # noqa: E402


class _CosForce(LorentzTerm):
    """The pre-issue-6 field: jnp.cos of radian phases (``baseline`` only)."""

    def field(self, x):
        m = self.modes
        arg = jnp.matmul(x, m.k.T, precision=jax.lax.Precision.HIGHEST) + m.phase
        db = jnp.matmul(jnp.cos(arg), m.amplitude, precision=jax.lax.Precision.HIGHEST)
        return db.at[..., 2].add(1.0)


def _baseline(modes: Modes, directions, t_save, r_larmor, dt, force_cls=_CosForce):
    """One Boris diffeqsolve per trajectory under vmap, jnp.cos field (pre-issue-6 engine)."""
    dtype = modes.k.dtype
    term = force_cls(modes=modes, r_larmor=jnp.asarray(r_larmor, dtype))
    n = int(round(t_save[-1] / dt))
    grid = jnp.linspace(0.0, t_save[-1], n + 1, dtype=dtype)

    def one(n_hat):
        sol = diffrax.diffeqsolve(
            term, Boris(), 0.0, float(t_save[-1]), None,
            (jnp.zeros(3, dtype), -n_hat),
            saveat=diffrax.SaveAt(ts=jnp.asarray(t_save, dtype)),
            stepsize_controller=diffrax.StepTo(ts=grid), max_steps=n,
        )
        return sol.stats["num_steps"], sol.ys[0]

    return jax.vmap(one)(directions)


def _boris_rotate(p, b, h):
    # Boris rotation of p about −b by the angle ~h|b| (Boris 1970), as in
    # crsky.physics.tracing.Boris
    t = -b * (h / 2)
    s = 2 * t / (1 + jnp.sum(t * t, -1, keepdims=True))
    return p + jnp.cross(p + jnp.cross(p, t), s)


def _fused_field(modes: Modes, x):
    """B/B0 with no matmul: the phase as three broadcast FMAs and the sum over modes as
    reductions, a form XLA may fuse into one kernel (no chunk × N array in memory)."""
    kt = modes.k / (2 * np.pi)
    u = (x[..., 0:1] * kt[:, 0] + x[..., 1:2] * kt[:, 1] + x[..., 2:3] * kt[:, 2]
         + modes.phase / (2 * np.pi))
    c = cos_turns(u)
    db = jnp.stack([jnp.sum(c * modes.amplitude[:, i], -1) for i in range(3)], -1)
    return db.at[..., 2].add(1.0)


def _fori(modes: Modes, directions, t_save, r_larmor, dt, field=magnetic_field):
    """Boris push in a bare fori_loop with the engine's field: the loop-overhead floor."""
    n = int(round(t_save[-1] / dt))

    def body(_, state):
        x, p = state
        x_half = x - r_larmor * p * (dt / 2)
        p = _boris_rotate(p, field(modes, x_half), dt)
        return x_half - r_larmor * p * (dt / 2), p

    x, _ = jax.lax.fori_loop(0, n, body, (jnp.zeros_like(directions), -directions))
    return jnp.full(directions.shape[:1], n), x


def _recurrence(modes: Modes, directions, t_save, r_larmor, dt):
    """Trigonometric recurrence: carry c = cos 2πu, s = sin 2πu per (trajectory, mode).

    The Boris midpoints move by Δ = −r_L h p' per step, so u advances by (k/2π)·Δ and (c, s)
    rotate by that angle; no re-anchoring (timing only).
    """
    n = int(round(t_save[-1] / dt))
    kt = modes.k / (2 * np.pi)
    x_half = -r_larmor * -directions * (dt / 2)
    u = x_half @ kt.T + modes.phase / (2 * np.pi)
    b0 = jnp.zeros(3, directions.dtype).at[2].set(1.0)

    def body(_, state):
        x_half, p, c, s = state
        p = _boris_rotate(p, c @ modes.amplitude + b0, dt)
        delta = (-r_larmor * dt * p) @ kt.T
        cd, sd = cos_turns(delta), cos_turns(delta - 0.25)  # sin 2πδ = cos 2π(δ − 1/4)
        return x_half - r_larmor * dt * p, p, c * cd - s * sd, s * cd + c * sd

    state = (x_half, -directions, cos_turns(u), cos_turns(u - 0.25))
    x_half, *_ = jax.lax.fori_loop(0, n, body, state)
    return jnp.full(directions.shape[:1], n), x_half


def main() -> None:
    a = ARGS
    dtype = {"float32": jnp.float32, "float64": jnp.float64}[a.dtype]
    if a.realisations < 1:
        sys.exit("--realisations must be >= 1")
    spectrum = TurbulenceSpectrum(sigma=1.0, n_modes=a.modes)
    modes = sample_modes(jax.random.PRNGKey(0), spectrum, dtype=dtype)
    # a leading axis R, as crsky.pipelines.ensemble stacks realisations_per_call
    if a.realisations > 1:
        if a.variant != "engine":
            sys.exit("--realisations > 1 needs --variant engine")
        keys = [jax.random.fold_in(jax.random.PRNGKey(0), i) for i in range(a.realisations)]
        modes = stack_modes([sample_modes(k, spectrum, dtype=dtype) for k in keys])
    directions = healpix_directions(a.nside, dtype)
    n_traj = directions.shape[0]
    chunk = min(a.chunk, n_traj)
    t_save = np.array([a.t_omega / 2, a.t_omega])

    if a.variant == "engine":
        def trace(m, d):
            return backtrack(m, d, t_save, a.r_larmor, solver=a.solver, dt=a.dt,
                             rtol=1e-6, atol=1e-8)

        batched = a.devices > 1 or a.realisations > 1
        mesh = device_mesh(devices=jax.devices()[: a.devices]) if batched else None

        def fn(m, d):  # returns the trajectories too, so XLA cannot drop the integration
            out = shard_trajectories(trace, m, d, mesh, stacked=True) if mesh else trace(m, d)
            return out.n_steps, out.r
    else:
        if a.solver != "boris":
            sys.exit(f"--variant {a.variant} is Boris only")
        impl = {
            "baseline": _baseline,
            "vmap": lambda *args: _baseline(*args, force_cls=LorentzTerm),
            "fori": _fori,
            "fused": lambda *args: _fori(*args, field=_fused_field),
            "recurrence": _recurrence,
        }[a.variant]

        def fn(m, d):
            return impl(m, d, t_save, a.r_larmor, a.dt)

    start = time.perf_counter()
    compiled = jax.jit(fn).lower(modes, directions[:chunk]).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()  # XLA's buffer assignment of the compiled call
    blocks = [directions[lo : lo + chunk] for lo in range(0, n_traj - chunk + 1, chunk)]

    def run() -> int:
        outs = [compiled(modes, d) for d in blocks]
        return sum(int(jnp.sum(jax.block_until_ready(n_steps))) for n_steps, _ in outs)

    run()  # warm-up
    load_before = os.getloadavg()[0]
    walls, cpus = [], []
    for _ in range(a.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        steps = run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    evals = steps * FIELD_EVALUATIONS_PER_STEP[a.solver] * a.modes
    device = jax.devices()[0]
    stats = device.memory_stats() if jax.default_backend() != "cpu" else None
    median, best = float(np.median(walls)), float(np.min(walls))
    print(json.dumps({
        "variant": a.variant, "solver": a.solver, "dtype": a.dtype, "modes": a.modes,
        "trajectories": len(blocks) * chunk, "chunk": chunk, "devices": a.devices,
        "realisations": a.realisations, "trajectories_per_call": a.realisations * chunk,
        "t_omega": a.t_omega, "dt": a.dt, "trajectory_steps": steps,
        "machine": describe(), "backend": jax.default_backend(), "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_1min": [load_before, os.getloadavg()[0]],
        "compile_s": round(compile_s, 2), "walls_s": [round(w, 4) for w in walls],
        "mode_evaluations_per_second_median": evals / median,
        "mode_evaluations_per_second_best": evals / best,
        "trajectory_steps_per_second_median": steps / median,
        # CPU seconds of this process (all its threads): per-core throughput, robust to load
        "mode_evaluations_per_cpu_second_median": evals / float(np.median(cpus)),
        "peak_host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_device_bytes": stats.get("peak_bytes_in_use") if stats else None,
        # per device, independent of the number of steps (the steps are a while loop)
        "compiled_bytes": {
            "arguments": memory.argument_size_in_bytes, "outputs": memory.output_size_in_bytes,
            "temporaries": memory.temp_size_in_bytes,
        } if memory is not None else None,
    }))


if __name__ == "__main__":
    main()
