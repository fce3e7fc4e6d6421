"""Step-size convergence of the ensemble statistics (κ∥, κ⊥ and Ĉ_ℓ/Ĉ_1) for the Boris push.

Runs the same ensemble (same seed, so the same fields) at several steps dt (units 1/Ω) and
prints, per dt, κ∥ and κ⊥ at the last time and Ĉ_ℓ/Ĉ_1 (∇n ∥ B0, jackknife errors), as JSON.
A step is sufficient when its statistics agree with the finest step within their errors.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_convergence.py --out /tmp/steps \
        [--config configs/reduced.toml] [--dts 0.04 0.02 0.01 0.005]
"""

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/reduced.toml")
    parser.add_argument("--dts", type=float, nargs="+", default=[0.04, 0.02, 0.01, 0.005])
    parser.add_argument("--ell-max", type=int, default=6)
    parser.add_argument("--out", required=True, help="folder for the run files")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    from crsky import runfile
    from crsky.emulator import spectrum_shape
    from crsky.ensemble import SimulationConfig, ensemble_diffusion, run_ensemble
    from crsky.io import load_toml

    base = SimulationConfig.from_dict(load_toml(args.config))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dt in args.dts:
        path = out / f"dt_{dt:g}.h5"
        start = time.perf_counter()
        run_ensemble(dataclasses.replace(base, dt=dt), path, resume=path.exists(),
                     progress=False)
        run = runfile.load(path)
        K = ensemble_diffusion(run)
        ratio, err = spectrum_shape(run)
        rows.append({
            "dt": dt,
            "kappa_parallel": [float(K.kappa_parallel[-1]), float(K.kappa_parallel_err[-1])],
            "kappa_perp": [float(K.kappa_perp[-1]), float(K.kappa_perp_err[-1])],
            "ratio": ratio[1 : args.ell_max + 1].tolist(),
            "ratio_err": err[1 : args.ell_max + 1].tolist(),
            "wall_s": time.perf_counter() - start,
        })
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
