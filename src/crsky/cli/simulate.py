"""``crsky simulate``: back-track an ensemble of field realisations into a run file."""

import argparse
import sys

from crsky import resources
from crsky.cli._common import load_toml, print_json, toml_key_lines

# flag -> SimulationConfig field (flags override the TOML config)
FLAGS = {
    "nside": ("nside", int, "HEALPix nside of the arrival directions (power of two)"),
    "realisations": ("realisations", int, "number of field realisations"),
    "modes": ("modes", int, "plane waves per realisation"),
    "sigma2": ("sigma2", float, "turbulence level sigma^2 = <dB^2>/B0^2"),
    "r-larmor": ("r_larmor", float, "Larmor radius r_L in units of Lc"),
    "lmin": ("lambda_min", float, "shortest turbulent wavelength, Lc"),
    "lmax": ("lambda_max", float, "longest turbulent wavelength, Lc"),
    "lc": ("lc", float, "bend-over scale of the spectrum, Lc"),
    "t-omega-min": ("t_omega_min", float, "first saved back-tracking time t*Omega"),
    "t-omega-max": ("t_omega_max", float, "last saved back-tracking time t*Omega"),
    "n-times": ("n_times", int, "number of saved times, log-spaced"),
    "solver": ("solver", str, "boris (fixed step) or tsit5 (adaptive)"),
    "dtype": ("dtype", str, "float32 (fast) or float64 (precise)"),
    "seed": ("seed", int, "PRNG seed of the ensemble"),
    "dt": ("dt", float, "Boris step (Tsit5 initial step) in 1/Omega"),
    "chunk": ("chunk", int, "trajectories per device integrated in one call"),
    "realisations-per-call": (
        "realisations_per_call", int, "field realisations back-tracked together (GPU: several)"
    ),
}


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
    for flag, (_, kind, text) in FLAGS.items():
        p.add_argument(f"--{flag}", type=kind, help=text)
    p.add_argument("--save-trajectories", action="store_true", default=None,
                   help="also store r(-T) and p(-T) of every trajectory")
    p.add_argument("--out", required=True, help="run file to write (HDF5)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run file")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """SimulationConfig from ``--config`` and flags (flags win)."""
    from crsky.pipelines.ensemble import SimulationConfig

    values, lines = {}, {}
    if args.config:
        path = resources.resolve("config", args.config)
        values, lines = load_toml(path), toml_key_lines(path)
    for flag, (field, _, _) in FLAGS.items():
        value = getattr(args, flag.replace("-", "_"))
        if value is not None:
            values[field] = value
    if args.save_trajectories is not None:
        values["save_trajectories"] = True
    return SimulationConfig.from_dict(values, lines)


def run(args: argparse.Namespace) -> int:
    from crsky.pipelines.ensemble import run_ensemble

    config = config_from_args(args)
    summary = run_ensemble(
        config, args.out, resume=args.resume, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    summary["out"] = args.out
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['realisations']} realisations, {summary['n_trajectories']} trajectories "
            f"-> {args.out}\n"
            f"kappa_parallel = {summary['kappa_parallel']:.4g} +- "
            f"{summary['kappa_parallel_err']:.2g} Lc c, kappa_perp = {summary['kappa_perp']:.4g}"
            f" +- {summary['kappa_perp_err']:.2g} Lc c at tOmega = {summary['t_omega'][-1]:g}\n"
            f"max |p| drift {summary['momentum_drift_max']:.2e}, field rms/B0 "
            f"{summary['field_rms_over_b0']:.3f}, "
            f"{summary['mode_evaluations_per_second']:.3g} mode evaluations/s",
            file=sys.stdout,
        )
    return 0
