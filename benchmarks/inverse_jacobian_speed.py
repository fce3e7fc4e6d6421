"""Wall time of the map Jacobian J = ∂δI/∂θ: inverse.jacobian (reverse mode through one
trajectory per pixel, vmapped over the pixels) against jax.jacrev of inverse.predict (reverse
mode through the whole map, the former implementation of inverse.jacobian), same problem.

Problem: as benchmarks/inverse_horizon.py (seed 0): 2 waves (8 unknowns), k r_L = 0.5 and 2,
prior rms δB = 0.5 B0, r_L = 0.1 Lc, K = diag(0.025, 0.025, 0.54) Lc c, Boris dt = 0.1/Ω, maps
at tΩ = 2, 4, 8, 16, float64; nside 2 and 4. Both functions are jitted; the first call
(compilation) and the median of ``--repeats`` later calls are reported, and the two Jacobians
are compared (maximum difference over the largest entry).

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inverse_jacobian_speed.py
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from crsky.physics import inverse as inv  # noqa: E402


def timed(function, *args, repeats):
    start = time.perf_counter()
    out = jax.block_until_ready(function(*args))
    first = time.perf_counter() - start
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        walls.append(time.perf_counter() - start)
    return np.asarray(out), first, float(np.median(walls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, nargs="+", default=(2, 4))
    parser.add_argument("--times", type=float, nargs="+", default=(2, 4, 8, 16))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    key_basis, key_field, _ = jax.random.split(jax.random.PRNGKey(0), 3)
    basis = inv.make_basis(key_basis, 2, 0.5 / 0.1, 2 / 0.1)
    scale = inv.prior_scale_for(2, 0.5)
    truth = inv.FieldParams(jnp.asarray(scale)[:, None] * jax.random.normal(key_field, (2, 4)),
                            jnp.array([1.0, 0.0, 1.0]) / np.sqrt(2))
    K = jnp.diag(jnp.array([0.025, 0.025, 0.54]))
    for nside in args.nside:
        problem = inv.make_problem(basis, nside, args.times, 0.1, K, 0.1)
        theta = inv.flatten(truth, False)
        whole_map = jax.jit(jax.jacrev(
            lambda t, p: inv.predict(p, inv.FieldParams(t.reshape(2, 4), truth.gradient)).ravel()))
        per_pixel = jax.jit(inv.jacobian)
        J_new, first_new, wall_new = timed(per_pixel, problem, truth, repeats=args.repeats)
        J_old, first_old, wall_old = timed(whole_map, theta, problem, repeats=args.repeats)
        diff = np.max(np.abs(J_new - J_old)) / np.max(np.abs(J_old))
        print(f"nside {nside} (Npix {12 * nside**2}), J {J_new.shape}: whole map "
              f"{wall_old:.3g} s (first call {first_old:.3g} s), per pixel {wall_new:.3g} s "
              f"(first call {first_new:.3g} s), speed-up {wall_old / wall_new:.1f}x, "
              f"max |ΔJ|/max|J| = {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
