"""The device's measured arithmetic limits, and the tracer's ratio to them (issue 6).

One mode evaluation of the turbulent field (rel.-diffusion paper, section 3) is a phase
u = k·x/2π + β/2π (3 FMA), one cosine, and the accumulation δB += cos·δB_n (3 FMA). Its
physical limit on a device is therefore set by the FP32 fused-multiply-add throughput and
the cosine throughput, both measured here with kernels that keep their operands in registers:

- ``fma``: a chain of ``--depth`` x ← x·a + b per element on an array spread over all local
  devices (8 independent chains per element so that FMA latency is hidden on CPUs);
- ``cos``: ``jnp.cos`` (XLA's library cosine) and :func:`crsky.turbulence.cos_turns`
  (the engine's cosine in turns), ``--depth`` nested evaluations per element.

The mode-evaluation roof is 1 / (6 / FMA-rate + 1 / cos-rate) with the faster cosine. With
``--tracer RATE`` (mode evaluations/s from ``bench_tracing.py``) the ratio is printed too.
Prints one JSON line.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roofline.py --tracer 3.9e9
"""

import argparse
import json
import os
import time

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--elements", type=int, default=0,
                  help="array size (default 2^18 per CPU device, 2^26 on accelerators)")
ARGS.add_argument("--iters", type=int, default=0,
                  help="loop iterations (default 1000 on CPUs, 100 on accelerators)")
ARGS.add_argument("--repeats", type=int, default=5)
ARGS.add_argument("--tracer", type=float, default=None,
                  help="measured tracer mode evaluations/s to compare with the roof")
ARGS = ARGS.parse_args()
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # one XLA:CPU device per core (ignored by accelerators), as crsky's CLI does
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={os.cpu_count()}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from machine import describe  # noqa: E402

from crsky.turbulence import cos_turns  # noqa: E402


def _kernel(op, chains: int, depth: int):
    """``chains`` independent x ← op(x·a + b) per element, ``depth`` steps each per loop body.

    Elements (and chains) are independent, so the rate measures the throughput rather than
    the latency of ``op``; the array stays in cache on a CPU, so memory traffic does not
    limit it. Returns the kernel and its number of ``op`` applications per element.
    """

    def body(_, xs, a, b):
        for _ in range(depth):
            xs = tuple(op(x * a + b) for x in xs)
        return xs

    def kernel(x, a, b):
        xs = tuple(x + i / chains for i in range(chains))
        return sum(jax.lax.fori_loop(0, ARGS.iters, lambda i, y: body(i, y, a, b), xs))

    return kernel, chains * depth * ARGS.iters


# (chains, depth) shapes tried per operation; the fastest is the device's measured peak
SHAPES = {"fma": ((8, 16),), "cos": ((1, 1), (2, 1), (4, 1), (1, 4))}


def _time(fn, x, a, b) -> float:
    compiled = jax.jit(fn).lower(x, a, b).compile()
    jax.block_until_ready(compiled(x, a, b))
    walls = []
    for _ in range(ARGS.repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(x, a, b))
        walls.append(time.perf_counter() - start)
    return float(np.min(walls))  # the best run: a peak, least disturbed by other load


def main() -> None:
    devices = jax.devices()
    on_cpu = jax.default_backend() == "cpu"
    n = ARGS.elements or (2**18 * len(devices) if on_cpu else 2**26)
    ARGS.iters = ARGS.iters or (1000 if on_cpu else 100)
    sharding = NamedSharding(Mesh(np.array(devices), ("d",)), P("d"))
    x = jax.device_put(jnp.linspace(0.0, 0.2, n, dtype=jnp.float32), sharding)
    # |a| < 1 and small b keep the chains finite without denormals
    a, b = jnp.float32(0.999), jnp.float32(1e-3)

    def rate(op, shape) -> float:
        kernel, per_element = _kernel(op, *shape)
        return n * per_element / _time(kernel, x, a, b)

    fma_rate = max(rate(lambda y: y, shape) for shape in SHAPES["fma"])
    # each cosine step also costs one FMA (it keeps XLA from folding cos∘cos): removed here
    cos_rate = {
        name: max(1 / (1 / rate(op, shape) - 1 / fma_rate) for shape in SHAPES["cos"])
        for name, op in (("jnp.cos", jnp.cos), ("cos_turns", cos_turns))
    }
    best_cos = max(cos_rate.values())
    roof = 1 / (6 / fma_rate + 1 / best_cos)  # 6 FMA + 1 cosine per mode evaluation
    out = {
        "machine": describe(), "backend": jax.default_backend(), "devices": len(devices),
        "jax": jax.__version__, "elements": n, "iters": ARGS.iters, "kernel_shapes": SHAPES,
        "fp32_fma_per_second": fma_rate, "fp32_flops_per_second": 2 * fma_rate,
        "cos_per_second": cos_rate,
        "mode_evaluation_roof_per_second": roof,
    }
    if ARGS.tracer is not None:
        out["tracer_mode_evaluations_per_second"] = ARGS.tracer
        out["tracer_fraction_of_roof"] = ARGS.tracer / roof
    print(json.dumps(out))


if __name__ == "__main__":
    main()
