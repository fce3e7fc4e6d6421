"""Benchmark: one evaluation of the emulator and its gradient in (σ, r_L/Lc), after jit.

Times ``jax.jit(jax.value_and_grad(f))`` of ``f(σ, r) = Σ_l R_l(σ, r)`` (all the table's
multipoles, the ratio and its error) for the shipped table read as its least-squares polynomial,
and the same for the Gaussian log-likelihood of the spectrum model's mean ``c1 R_l`` against a
simulated table (``l = 1 … 12``). Median over ``--repeats`` calls, each blocked until ready. Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_emulator.py [--degree 2] [--repeats 2000]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from crsky.inference.emulator import evaluate  # noqa: E402
from crsky.io import tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def median_call_seconds(f, args, repeats: int) -> float:
    jax.block_until_ready(f(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    emu = tables.load_emulator(ROOT / "data" / "emulator.csv", degree=args.degree)
    data = tables.load_cl_table(ROOT / "data" / "simulated_cl_sigma1.csv")
    keep = data.ell <= 12
    index = emu.ell_index(data.ell[keep])
    cl, error = jnp.asarray(data.cl[keep]), jnp.asarray(data.error[keep])

    def summed(sigma, rl):
        ratio, err = evaluate(emu, sigma, rl)
        return jnp.sum(ratio) + jnp.sum(err)

    def log_likelihood(sigma, rl, c1):
        ratio, err = evaluate(emu, sigma, rl)
        mean, var = c1 * ratio[index], error**2 + (c1 * err[index]) ** 2
        return -0.5 * jnp.sum((cl - mean) ** 2 / var + jnp.log(2 * jnp.pi * var))

    emulator_s = median_call_seconds(jax.jit(jax.value_and_grad(summed, argnums=(0, 1))),
                                     (1.0, 0.1), args.repeats)
    likelihood_s = median_call_seconds(
        jax.jit(jax.value_and_grad(log_likelihood, argnums=(0, 1, 2))),
        (1.0, 0.1, float(data.cl[0])), args.repeats)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load {os.getloadavg()[0]:.1f}")
    print(f"emulator value+grad (all {emu.ell.size} multipoles): {emulator_s * 1e6:.0f} µs")
    print(f"log-likelihood value+grad (l <= 12, sigma, r_L/Lc, c1): {likelihood_s * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
