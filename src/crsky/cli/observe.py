"""``crsky observe RUNFILE --experiment NAME --out CSV``: an experiment's pseudo-C_l of a
simulated ensemble (field of view, data-driven reference map, Poisson counts), as a C_l table
with ``spectrum: pseudo`` that ``crsky infer`` reads (``[data] experiment = NAME``)."""

import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "observe",
        help="an experiment's pseudo-C_l of a simulated ensemble (C_l table, spectrum: pseudo)",
        description=(
            "Form dI of every realisation from the basis maps at the last saved time, rotate it "
            "onto the equatorial sky (B0 direction and sign), observe it as an experiment "
            "(declination band, per-ring right-ascension mean removed, Poisson counts) and "
            "write the mean pseudo-C_l with its standard error, every setting in the header."
        ),
    )
    p.add_argument("runfile", help="run file written by 'crsky simulate'")
    p.add_argument("--experiment", required=True,
                   help="experiment name of data/experiments.toml (case-insensitive)")
    p.add_argument("--experiments", default="experiments.toml",
                   help="experiments table (default: the built-in %(default)s)")
    p.add_argument("--events", type=float, default=None,
                   help="event count (default: no shot noise)")
    p.add_argument("--t-omega", type=float, default=None,
                   help="back-tracking time; only the last saved time is available (maps_last)")
    p.add_argument("--b0-ra", type=float, default=229.2, help="RA of B0, deg (default 229.2)")
    p.add_argument("--b0-dec", type=float, default=11.4, help="Dec of B0, deg (default 11.4)")
    p.add_argument("--field-sign", type=int, default=1, choices=(1, -1),
                   help="which end of the axis B0 points to")
    p.add_argument("--gradient", type=float, nargs=2, default=(0.0, 0.0),
                   metavar=("ANGLE", "AZIMUTH"),
                   help="gradient direction from B0 in the simulation frame, deg (default 0 0)")
    p.add_argument("--strength", type=float, default=1e-4,
                   help="|grad n|/n in 1/Lc (default 1e-4; must keep |dI| < 1)")
    p.add_argument("--ell-max", type=int, default=None,
                   help="largest multipole (default: the experiment's ell_max)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson counts")
    p.add_argument("--out", required=True, help="C_l table to write (must not exist)")
    p.set_defaults(func=run)


def run(args) -> int:
    from crsky import resources
    from crsky.inference.data import find_experiment
    from crsky.io import runfile
    from crsky.io.tables import load_experiments, write_cl_table
    from crsky.pipelines.tabulate import observed_cl_table

    if Path(args.out).exists():
        raise ValueError(f"--out {args.out!r} exists; remove it first")
    experiment = find_experiment(
        load_experiments(resources.resolve("data", args.experiments)), args.experiment
    )
    if args.events is not None and not args.events > 0:
        raise ValueError(f"--events must be > 0, got {args.events!r}")
    if not (-90 <= args.b0_dec <= 90 and abs(args.b0_ra) < float("inf")):
        raise ValueError(f"--b0-dec must lie in [-90, 90] and --b0-ra be finite, got "
                         f"{args.b0_ra!r}, {args.b0_dec!r}")
    if not args.strength > 0:
        raise ValueError(f"--strength must be > 0, got {args.strength!r}")
    run_data = runfile.load(args.runfile)
    if args.t_omega is not None and abs(args.t_omega - run_data["t_omega"][-1]) > 1e-6 * abs(
        run_data["t_omega"][-1]
    ):
        raise ValueError(f"--t-omega: only the last saved time {run_data['t_omega'][-1]!r} has "
                         "maps (maps_last)")
    command = "crsky " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    table = observed_cl_table(
        run_data, experiment, events=args.events, b0_ra_deg=args.b0_ra, b0_dec_deg=args.b0_dec,
        field_sign=args.field_sign, gradient_angle_deg=args.gradient[0],
        gradient_azimuth_deg=args.gradient[1], strength=args.strength, seed=args.seed,
        ell_max=args.ell_max, meta={"command": command},
    )
    write_cl_table(args.out, table)
    print(args.out)
    return 0
