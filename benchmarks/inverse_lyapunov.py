"""How chaotic are the inverse problem's mock fields? Their Lyapunov exponent, for comparison of
the inversion's horizon with the pathwise-gradient horizon in units of Lyapunov times.

The horizon problems of benchmarks/inverse_horizon.py (seeds 0..problems-1: N waves, k r_L
log-spaced in [0.5, 2], coefficients from the prior of rms δB = sigma B0, r_L = 0.1 Lc, Boris
dt = 0.1/Ω): for each true field, the mean log phase-space separation of neighbouring
trajectories from the HEALPix pixel centres (arrival directions 1e-9 rad apart) against tΩ, and
its slope for tΩ ≥ 5 before saturation: the maximal Lyapunov exponent λ, the same definition
as benchmarks/gradient_horizon.py (whose functions compute it).

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inverse_lyapunov.py [--problems 20]
Prints a JSON summary (and writes it to --out if given).
"""

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from gradient_horizon import ln_separation, lyapunov_exponent  # noqa: E402
from inverse_horizon import mock  # noqa: E402

from crsky.physics import inverse as inv  # noqa: E402
from crsky.physics.tracing import healpix_directions  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--modes", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=0.5, help="rms dB/B0 of the prior")
    parser.add_argument("--nside", type=int, default=4)
    parser.add_argument("--r-larmor", type=float, default=0.1)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--t-omega-max", type=float, default=128.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.events = None  # noise-free mocks: only the true field is used
    tau = np.geomspace(1.0, args.t_omega_max, 22)
    directions = healpix_directions(args.nside)
    separation = jax.jit(lambda m: ln_separation(m, directions, tau, args.r_larmor, args.dt))
    start = time.perf_counter()
    curves = []
    for seed in range(args.problems):
        problem, truth, _, _ = mock(args, seed, [1.0])
        curves.append(np.asarray(separation(inv.field_modes(problem, truth.coefficients))))
    curves = np.asarray(curves)
    per_field = [lyapunov_exponent(tau, c) for c in curves]
    result = {
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "t_omega": tau.tolist(),
        "mean_ln_separation": curves.mean(0).tolist(),
        "lyapunov_exponent_of_mean_curve": lyapunov_exponent(tau, curves.mean(0)),
        "lyapunov_exponent_per_field": per_field,
        "lyapunov_exponent_median": float(np.median(per_field)),
        "lyapunov_exponent_range": [float(np.min(per_field)), float(np.max(per_field))],
        "wall_seconds": time.perf_counter() - start,
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(json.dumps({k: result[k] for k in ("lyapunov_exponent_of_mean_curve",
                                             "lyapunov_exponent_median",
                                             "lyapunov_exponent_range", "wall_seconds")}))


if __name__ == "__main__":
    main()
