"""Benchmark of the analytic models: λ1 with its gradient, and C_ℓ(p) with d/dp.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_analytic.py [--repeats 50]``.
Times are for jitted calls after compilation (best and median of ``--repeats``); accuracy is
against a refined grid (degree 13, 10 layers) of the same solver.
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

from crsky.physics import bgk, pitch_angle  # noqa: E402

EPS, DELTA, U = 2.1e-3, 1e-4, 0.01


def _timed(fn, *args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        walls.append(time.perf_counter() - t0)
    walls.sort()
    return compile_s, walls[0], walls[len(walls) // 2]


def bench_lambda(profile, degree, layers, repeats):
    def lam1(e, d, u):
        return pitch_angle.solve(e, d, u, profile, 1, degree=degree, layers=layers).lambdas[0]

    fn = jax.jit(jax.value_and_grad(lam1, argnums=(0, 1, 2)))
    compile_s, best, median = _timed(fn, EPS, DELTA, U, repeats=repeats)
    ref = pitch_angle.solve(EPS, DELTA, U, profile, 1, degree=13, layers=10).lambdas[0]
    value = fn(EPS, DELTA, U)[0]
    n = int(pitch_angle.solve(EPS, DELTA, U, profile, 1, degree=degree, layers=layers).mu.size)
    return {
        "case": f"lambda1+grad {profile} degree={degree} layers={layers} (n={n})",
        "compile_s": round(compile_s, 2),
        "best_ms": round(best * 1e3, 3),
        "median_ms": round(median * 1e3, 3),
        "lambda1": float(value),
        "rel_error": float(abs(value / ref - 1)),
    }


def bench_bgk(lmax, repeats):
    ell = jnp.arange(1, lmax + 1)
    fn = jax.jit(jax.value_and_grad(lambda p: jnp.sum(bgk.cl_shape(p, ell) ** 2)))
    jac = jax.jit(jax.jacfwd(lambda p: bgk.cl_shape(p, ell)))
    out = []
    for name, f in (("sum C_l^2 + grad", fn), ("C_l + dC_l/dp (jacfwd)", jac)):
        compile_s, best, median = _timed(f, 0.5, repeats=repeats)
        out.append(
            {
                "case": f"BGK lmax={lmax}: {name}",
                "compile_s": round(compile_s, 2),
                "best_ms": round(best * 1e3, 4),
                "median_ms": round(median * 1e3, 4),
            }
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rows = [
        bench_lambda("flat", 5, 4, args.repeats),
        bench_lambda("flat", 9, 6, args.repeats),
        bench_lambda("matched", 7, 5, args.repeats),
        bench_lambda("matched", 9, 6, args.repeats),
        bench_lambda("gs", 9, 6, args.repeats),
        *bench_bgk(100, args.repeats),
        *bench_bgk(1000, args.repeats),
    ]
    print(json.dumps({"device": str(jax.devices()[0]), "load_1min": os.getloadavg()[0]}))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
