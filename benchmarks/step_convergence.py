"""Step-size convergence of the ensemble statistics (κ∥, κ⊥ and Ĉ_ℓ/Ĉ_1) for the Boris push.

Runs the same ensemble (same seed, so the same fields) at several steps dt (units 1/Ω) and
prints, per dt, κ∥ and κ⊥ at the last time and Ĉ_ℓ/Ĉ_1 (∇n ∥ B0, jackknife errors), as JSON.
A step is sufficient when its statistics agree with the finest step within their errors.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_convergence.py --out /tmp/steps \
        [--config reduced] [--dts 0.04 0.02 0.01 0.005] \
        [--realisations R] [--t-omega-max T] [--chunk C] [--realisations-per-call B]

``--realisations`` and ``--t-omega-max`` override the configuration (e.g. the paper's
resolution with fewer realisations and a shorter time, to fit a CPU run); ``--chunk`` and
``--realisations-per-call`` size the calls (a GPU: ``benchmarks/device_check.sh``). A run file
already in ``--out`` for a dt is resumed, so a finished one is reused. Per dt after the
first, ``paired_z`` compares each Ĉ_ℓ/Ĉ_1 with the first dt's through the spread of the
per-realisation differences (the same fields in both runs): |z| ≲ 2 means no detected change.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="reduced", help="built-in name or TOML file")
    parser.add_argument("--dts", type=float, nargs="+", default=[0.04, 0.02, 0.01, 0.005])
    parser.add_argument("--ell-max", type=int, default=6)
    parser.add_argument("--realisations", type=int, default=None)
    parser.add_argument("--t-omega-max", type=float, default=None)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--realisations-per-call", type=int, default=None)
    parser.add_argument("--out", required=True, help="folder for the run files")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    from crsky.io import runfile
    from crsky.pipelines.ensemble import SimulationConfig, run_ensemble
    from crsky.pipelines.tabulate import realisation_shapes, spectrum_shape

    overrides = {
        "realisations": args.realisations, "t_omega_max": args.t_omega_max, "chunk": args.chunk,
        "realisations_per_call": args.realisations_per_call,
    }
    base = SimulationConfig.load(args.config).replace(
        **{k: v for k, v in overrides.items() if v is not None}
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    for dt in args.dts:
        path = out / f"dt_{dt:g}.h5"
        start = time.perf_counter()
        run_ensemble(base.replace(dt=dt), path, resume=path.exists(), progress=False)
        run = runfile.load(path)
        K = run.diffusion()
        ratio, err = spectrum_shape(run)
        per_realisation = realisation_shapes(run)
        if first is None:
            first = per_realisation
        # paired: the same fields in both runs, so the per-realisation differences have a
        # small spread; z of their mean over realisations (0 for the first dt)
        diff = per_realisation - first
        spread = diff.std(0, ddof=1) / np.sqrt(diff.shape[0])
        paired_z = np.divide(diff.mean(0), spread, out=np.zeros(ratio.size), where=spread > 0)
        rows.append({
            "dt": dt,
            "kappa_parallel": [float(K.kappa_parallel[-1]), float(K.kappa_parallel_err[-1])],
            "kappa_perp": [float(K.kappa_perp[-1]), float(K.kappa_perp_err[-1])],
            "ratio": ratio[1 : args.ell_max + 1].tolist(),
            "ratio_err": err[1 : args.ell_max + 1].tolist(),
            "paired_z": paired_z[1 : args.ell_max + 1].tolist(),
            "wall_s": time.perf_counter() - start,
        })
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
