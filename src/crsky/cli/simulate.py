"""``crsky simulate``: back-track an ensemble of field realisations into a run file."""

import argparse
import sys

from crsky import resources
from crsky.cli._common import (
    check_output,
    interrupted_run,
    load_toml,
    print_json,
    toml_key_lines,
)

# flag -> (SimulationConfig field, type, help, default as help shows it). Flags override the
# TOML config; the defaults are SimulationConfig's (tests/test_cli_help.py compares them).
FLAGS = {
    "nside": ("nside", int, "HEALPix nside of the arrival directions (power of two)", "8"),
    "realisations": ("realisations", int, "number of field realisations", "4"),
    "modes": ("modes", int, "plane waves per realisation", "128"),
    "sigma2": ("sigma2", float, "turbulence level sigma^2 = <dB^2>/B0^2", "1.0"),
    "r-larmor": ("r_larmor", float, "Larmor radius r_L in units of Lc", "0.1"),
    "lambda-min": ("lambda_min", float, "shortest turbulent wavelength, Lc", "0.01"),
    "lambda-max": ("lambda_max", float, "longest turbulent wavelength, Lc", "100.0"),
    "lc": ("lc", float, "bend-over scale of the spectrum, Lc", "1.0"),
    "t-omega-min": ("t_omega_min", float, "first saved back-tracking time t*Omega", "1.0"),
    "t-omega-max": ("t_omega_max", float, "last saved back-tracking time t*Omega", "100.0"),
    "n-times": ("n_times", int, "number of saved times, log-spaced", "12"),
    "solver": ("solver", str, "boris (fixed step, symplectic-like) or tsit5 (adaptive, "
               "rtol/atol)", "boris"),
    "dtype": ("dtype", str, "float32 (fast) or float64 (precise)", "float32"),
    "seed": ("seed", int, "PRNG seed of the ensemble", "0"),
    "dt": ("dt", float, "Boris step (Tsit5 initial step) in 1/Omega",
           "min(0.1, 0.2 lambda_min / r_L)"),
    "rtol": ("rtol", float, "Tsit5 relative tolerance",
             "1e-08 for float64, 1e-06 for float32 (TSIT5_TOLERANCES)"),
    "atol": ("atol", float, "Tsit5 absolute tolerance (r in Lc, p dimensionless)",
             "1e-10 for float64, 1e-08 for float32"),
    "chunk": ("chunk", int, "trajectories per device integrated in one call", "3072"),
    "realisations-per-call": (
        "realisations_per_call", int, "field realisations back-tracked together (GPU: several)",
        "1",
    ),
}
# crsky.physics.tracing.SOLVERS and crsky.pipelines.ensemble.DTYPES (not imported: --help
# needs no JAX; a test compares)
CHOICES = {"solver": ("boris", "tsit5"), "dtype": ("float32", "float64")}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="back-track CRs through synthetic turbulence into a run file",
        description=(
            "Back-track CRs from HEALPix arrival directions through B0 z + synthetic Kolmogorov "
            "turbulence (relative-diffusion paper, section 3) and store each realisation in an "
            "HDF5 run file as soon as its call finishes. Lengths in Lc, times as t*Omega."
        ),
    )
    p.add_argument("--config", metavar="NAME|TOML",
                   help="a built-in configuration (reduced, paper, emulator) or a TOML file of "
                        "SimulationConfig keys; flags override it")
    for flag, (_, kind, text, default) in FLAGS.items():
        p.add_argument(f"--{flag}", type=kind, choices=CHOICES.get(flag),
                       help=f"{text} (default: {default}, or the --config value)")
    p.add_argument("--save-trajectories", action="store_true", default=None,
                   help="also store r(-T) and p(-T) of every trajectory")
    p.add_argument("--out", required=True, help="run file to write (HDF5)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run file")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run, interrupted=lambda args: interrupted_run(args.out, args.argv))


def config_from_args(args: argparse.Namespace):
    """SimulationConfig from ``--config`` and flags (flags win)."""
    from crsky.pipelines.ensemble import SimulationConfig

    values, lines = {}, {}
    if args.config:
        path = resources.resolve("config", args.config)
        values, lines = load_toml(path), toml_key_lines(path)
    for flag, (field, *_) in FLAGS.items():
        value = getattr(args, flag.replace("-", "_"))
        if value is not None:
            values[field] = value
    if args.save_trajectories is not None:
        values["save_trajectories"] = True
    return SimulationConfig.from_dict(values, lines)


UNITS = {
    "t_omega": "1/Omega", "t_omega_max": "1/Omega", "kappa": "Lc c",
    "cl": "1 (dI for |grad n|/n = 1/Lc)", "field_rms_over_b0": "B0",
    "wall_seconds": "s", "mode_evaluations_per_second": "1/s", "peak_device_bytes": "bytes",
}


def json_summary(summary: dict) -> dict:
    """The run summary of :func:`crsky.pipelines.ensemble.run_ensemble` for output: κ∥ and κ⊥
    named as what they are, the running coefficients at the last saved time
    (``kappa_parallel_at_t_max`` with ``t_omega_max``), and the units of the numbers."""
    out = dict(summary)
    if "kappa_parallel" in out:
        for name in ("kappa_parallel", "kappa_perp"):
            out[f"{name}_at_t_max"] = out.pop(name)
            out[f"{name}_at_t_max_err"] = out.pop(f"{name}_err")
        out["t_omega_max"] = float(out["t_omega"][-1])
    out["units"] = UNITS
    return out


def run(args: argparse.Namespace) -> int:
    from crsky.io import runfile
    from crsky.pipelines.ensemble import run_ensemble

    runfile.check_free(args.out)
    check_output("--out", args.out, overwrite=args.overwrite, exist_ok=args.resume)
    config = config_from_args(args)
    summary = json_summary(run_ensemble(
        config, args.out, resume=args.resume, overwrite=args.overwrite,
        progress=not args.no_progress,
    ))
    summary["out"] = args.out
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['realisations']} realisations, {summary['n_trajectories']} trajectories "
            f"-> {args.out}\n"
            f"running kappa_parallel = {summary['kappa_parallel_at_t_max']:.4g} +- "
            f"{summary['kappa_parallel_at_t_max_err']:.2g} Lc c, kappa_perp = "
            f"{summary['kappa_perp_at_t_max']:.4g} +- {summary['kappa_perp_at_t_max_err']:.2g}"
            f" Lc c at tOmega = {summary['t_omega_max']:g}\n"
            f"max |p| drift {summary['momentum_drift_max']:.2e}, field rms/B0 "
            f"{summary['field_rms_over_b0']:.3f}, "
            f"{summary['mode_evaluations_per_second']:.3g} mode evaluations/s",
            file=sys.stdout,
        )
    return 0
