"""The device's measured arithmetic limits, and the tracer's ratio to them.

One mode evaluation of the turbulent field (rel.-diffusion paper, section 3) is a phase
u = k·x/2π (3 FMA in the dot) + β/2π (1 add), one cosine, and the accumulation
δB += cos·δB_n (3 FMA in the second dot): 7 FP32 operations and a cosine. Its limit on a
device is therefore set by the FP32 fused-multiply-add and the cosine throughputs, measured
here with elementwise kernels x ← op(x·a + b) (op = identity for the FMA rate):

- every element is an independent chain, so the rate measures throughput, not latency; on CPUs
  several chains per element are interleaved (``SHAPES``);
- ``depth`` steps run inside one fused loop per pass over the array, so that the arithmetic per
  byte moved is large; every kernel is also measured at twice the depth, and a rate that still
  grows with depth (``depth_check`` < 0.9) means the kernel was limited by memory, not by the
  arithmetic: then raise ``--depth-scale``;
- the cosine arguments are ~1e3 (radians for ``jnp.cos``, turns for
  :func:`crsky.physics.turbulence.cos_turns`), the size of the tracer's phases, since library
  cosines
  slow down for large arguments; the cosine rate has the step's one FMA removed.

The mode-evaluation roof is 1 / (7 / FMA-rate + 1 / cos-rate) with the faster cosine. With
``--tracer RATE`` (mode evaluations/s from ``bench_tracing.py``) the ratio is printed too.
Prints one JSON line.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roofline.py --tracer 3.6e9
"""

import argparse
import json
import os
import time

from crsky.cli import configure_cpu_backend

configure_cpu_backend()  # one XLA:CPU device per core (ignored by accelerators), as the CLI

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from machine import describe  # noqa: E402

from crsky.physics.turbulence import cos_turns  # noqa: E402

# (chains, depth) per operation and back-end; each is also run at twice the depth
SHAPES = {
    "cpu": {"fma": ((8, 16),), "cos": ((1, 1), (2, 1), (4, 1), (1, 4))},
    "accelerator": {"fma": ((1, 512),), "cos": ((1, 32), (1, 128))},
}
OPS_PER_MODE_EVALUATION = 7  # FP32 operations besides the cosine (see the docstring)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--elements", type=int, default=0,
                   help="array size, a multiple of the device count "
                        "(default 2^16 per CPU device, 2^26 on accelerators)")
    p.add_argument("--iters", type=int, default=0,
                   help="passes over the array (default 500 on CPUs, 50 on accelerators)")
    p.add_argument("--depth-scale", type=int, default=1, help="multiply every kernel's depth")
    p.add_argument("--repeats", type=int, default=5, help="timed calls; the best one counts")
    p.add_argument("--tracer", type=float, default=None,
                   help="measured tracer mode evaluations/s to compare with the roof")
    a = p.parse_args()
    for name in ("elements", "iters"):
        if getattr(a, name) < 0:
            p.error(f"--{name} must be >= 0")
    for name in ("depth_scale", "repeats"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.tracer is not None and not a.tracer > 0:
        p.error("--tracer must be > 0")
    return a


def _kernel(op, chains: int, depth: int, iters: int):
    """``chains`` independent x ← op(x·a + b) per element, ``depth`` fused steps per pass."""

    def one_pass(_, xs, a, b):
        for _ in range(depth):
            xs = tuple(op(x * a + b) for x in xs)
        return xs

    def kernel(x, a, b):
        xs = tuple(x + i / chains for i in range(chains))
        return sum(jax.lax.fori_loop(0, iters, lambda i, y: one_pass(i, y, a, b), xs))

    return kernel


def _best_seconds(fn, x, a, b, repeats: int) -> float:
    compiled = jax.jit(fn).lower(x, a, b).compile()
    jax.block_until_ready(compiled(x, a, b))
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(x, a, b))
        walls.append(time.perf_counter() - start)
    return float(np.min(walls))  # the best run: a peak, least disturbed by other load


def main() -> None:
    args = _parse()
    devices = jax.devices()
    on_cpu = jax.default_backend() == "cpu"
    n = args.elements or (2**16 * len(devices) if on_cpu else 2**26)
    if n % len(devices):
        raise SystemExit(f"--elements ({n}) must be a multiple of the devices ({len(devices)})")
    iters = args.iters or (500 if on_cpu else 50)
    shapes = SHAPES["cpu" if on_cpu else "accelerator"]
    sharding = NamedSharding(Mesh(np.array(devices), ("d",)), P("d"))
    x = jax.device_put(jnp.linspace(0.0, 0.2, n, dtype=jnp.float32), sharding)
    a = jnp.float32(0.999)  # |a| < 1 keeps the FMA chains finite (no overflow, no denormals)

    def rate(op, b, chains, depth) -> float:
        depth *= args.depth_scale
        fn = _kernel(op, chains, depth, iters)
        return n * chains * depth * iters / _best_seconds(fn, x, a, jnp.float32(b), args.repeats)

    def measure(op, b, name) -> dict:
        rates = {f"{c}x{d}": (rate(op, b, c, d), rate(op, b, c, 2 * d)) for c, d in shapes[name]}
        best = max(max(pair) for pair in rates.values())
        return {"rate": best, "depth_check": {k: r1 / r2 for k, (r1, r2) in rates.items()}}

    fma = measure(lambda y: y, 1e-3, "fma")
    cosines = {"jnp.cos": measure(jnp.cos, 1e3, "cos"), "cos_turns": measure(cos_turns, 1e3, "cos")}
    for entry in cosines.values():
        # each step is one FMA and one cosine: remove the FMA's time (None if under-resolved)
        per_cos = 1 / entry["rate"] - 1 / fma["rate"]
        entry["rate"] = 1 / per_cos if per_cos > 0 else None
    best_cos = max((e["rate"] for e in cosines.values() if e["rate"]), default=None)
    roof = (1 / (OPS_PER_MODE_EVALUATION / fma["rate"] + 1 / best_cos)) if best_cos else None
    out = {
        "machine": describe(), "backend": jax.default_backend(), "devices": len(devices),
        "jax": jax.__version__, "load_1min": os.getloadavg()[0], "elements": n, "iters": iters,
        "depth_scale": args.depth_scale, "shapes": shapes,
        "fp32_fma_per_second": fma["rate"], "fma_depth_check": fma["depth_check"],
        "cos_per_second": {k: e["rate"] for k, e in cosines.items()},
        "cos_depth_check": {k: e["depth_check"] for k, e in cosines.items()},
        "mode_evaluation_roof_per_second": roof,
    }
    if args.tracer is not None and roof:
        out["tracer_mode_evaluations_per_second"] = args.tracer
        out["tracer_fraction_of_roof"] = args.tracer / roof
    print(json.dumps(out))


if __name__ == "__main__":
    main()
