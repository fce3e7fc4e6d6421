"""Benchmark: healpy vs the JAX spherical-harmonic path for one realisation's cross-spectra.

The per-realisation workload of ``crsky.physics.sky.realisation_summary``: ``n_times x 6`` basis
maps at
nside 32, lmax = 3 nside - 1 = 95 (the largest HEALPix allows), healpy's default iter = 3.
Run with ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spectra.py [--times 30]``.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from crsky.physics import spectra  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, default=32)
    parser.add_argument("--times", type=int, default=30, help="saved times per realisation")
    parser.add_argument("--iter", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    nside, lmax = args.nside, 3 * args.nside - 1
    maps = np.random.default_rng(0).normal(size=(args.times, 6, 12 * nside**2))
    n_maps = args.times * 6
    print(
        f"nside {nside}, lmax {lmax}, iter {args.iter}, {args.times} x 6 = {n_maps} maps, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}"
    )

    start = time.perf_counter()
    plan = spectra.make_plan(nside, lmax)
    print(f"make_plan: {time.perf_counter() - start:.3f} s")

    def healpy_path():
        return spectra.cross_spectra(maps, lmax, method="healpy", iter=args.iter)

    jitted = jax.jit(lambda m, p: spectra.cross_spectra(m, plan=p, iter=args.iter))
    start = time.perf_counter()
    compiled = jitted.lower(maps, plan).compile()
    print(f"jax compile: {time.perf_counter() - start:.2f} s")

    def jax_path():
        return compiled(maps, plan).block_until_ready()

    t_healpy = best_of(healpy_path, args.repeat)
    t_jax = best_of(jax_path, args.repeat)
    ref, out = healpy_path(), np.asarray(jax_path())
    diag = np.arange(6)
    rel = np.max(np.abs(out[..., diag, diag] / ref[..., diag, diag] - 1))
    print(f"healpy : {t_healpy:.3f} s  ({1e3 * t_healpy / n_maps:.2f} ms/map)")
    print(f"jax    : {t_jax:.3f} s  ({1e3 * t_jax / n_maps:.2f} ms/map)")
    print(f"max relative difference of C_l (all l <= {lmax}): {rel:.1e}")


if __name__ == "__main__":
    main()
