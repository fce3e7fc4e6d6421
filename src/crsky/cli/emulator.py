"""``crsky emulator``: build the σ emulator table from back-tracking ensembles over a σ grid."""

import argparse
import shlex


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="build the sigma emulator table (C^_l/C^_1 over a sigma grid) from simulations",
        description=(
            "Run one back-tracking ensemble per turbulence level sigma (the --config run with "
            "sigma2 replaced), and tabulate C^_l/C^_1 at the last saved time with its jackknife "
            "error over realisations, for crsky.inference.models.spectrum_sigma_model. "
            "Interrupted builds resume from the run files in --runs."
        ),
    )
    p.add_argument("--config", required=True, metavar="NAME|TOML",
                   help="a built-in simulation configuration (e.g. emulator) or a TOML file")
    p.add_argument("--sigmas", type=float, nargs="+", required=True,
                   help="turbulence levels sigma = <dB^2>^(1/2)/B0, increasing")
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
    for path in sorted(Path(args.runs).glob("sigma_*.h5")):
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
    print(build_table(base, args.sigmas, args.runs, args.out, orientation=args.orientation,
                      command=command, progress=not args.no_progress, overwrite=args.overwrite))
    return 0
