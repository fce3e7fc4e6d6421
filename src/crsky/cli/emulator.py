"""``crsky emulator``: build the σ emulator table from back-tracking ensembles over a σ grid."""

import argparse
import shlex


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="build the emulator table (C^_l/C^_1 over sigma and r_L/Lc) from simulations",
        description=(
            "Run one back-tracking ensemble per node of the grid sigma x r_L/Lc (the --config "
            "run with sigma2 and r_larmor replaced; each node's Boris step chosen by a "
            "step-convergence test against half the step), and tabulate C^_l/C^_1 at the last "
            "saved time with its jackknife error over realisations, for "
            "crsky.inference.models.spectrum_sigma_model. Interrupted builds resume node by "
            "node from the run files in --runs."
        ),
    )
    p.add_argument("--config", required=True, metavar="NAME|TOML",
                   help="a built-in simulation configuration (e.g. emulator) or a TOML file")
    p.add_argument("--sigmas", type=float, nargs="+", required=True,
                   help="turbulence levels sigma = <dB^2>^(1/2)/B0, increasing")
    p.add_argument("--rl-over-lc", type=float, nargs="+", default=None, metavar="RL",
                   help="Larmor radii r_L/Lc, increasing (default: the configuration's r_larmor)")
    p.add_argument("--test-realisations", type=int, default=6, metavar="N",
                   help="fields per step-convergence test at each node (default 6)")
    p.add_argument("--runs", required=True, help="folder for the run files")
    p.add_argument("--orientation", default="parallel", choices=("parallel", "perpendicular"),
                   help="gradient of the density relative to B0")
    p.add_argument("--out", required=True, help="emulator table to write (CSV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """How many realisations the run files in ``--runs`` hold, and the command that continues."""
    from pathlib import Path

    from crsky.cli._common import command_line
    from crsky.io import runfile

    stored = 0
    for path in sorted(Path(args.runs).glob("sigma_*_rl_*_dt_*.h5")):
        try:
            stored += len(runfile.completed(path))
        except (OSError, ValueError):
            continue
    return (f"{stored} realisations are safely stored in {args.runs}; continue with: "
            f"{command_line(args.argv)}")


def run(args: argparse.Namespace) -> int:
    from crsky import resources
    from crsky.cli._common import check_output, load_toml, toml_key_lines
    from crsky.pipelines.ensemble import SimulationConfig
    from crsky.pipelines.tabulate import build_table

    check_output("--out", args.out, overwrite=args.overwrite)
    check_output("--runs", args.runs, folder=True)
    path = resources.resolve("config", args.config)
    base = SimulationConfig.from_dict(load_toml(path), toml_key_lines(path))
    command = "crsky " + " ".join(shlex.quote(a) for a in args.argv)
    rl_over_lcs = args.rl_over_lc or [base.r_larmor]
    print(build_table(base, args.sigmas, rl_over_lcs, args.runs, args.out,
                      orientation=args.orientation, test_realisations=args.test_realisations,
                      command=command, progress=not args.no_progress, overwrite=args.overwrite))
    return 0
