"""``crsky observe RUNFILE --experiment NAME --out CSV``: an experiment's pseudo-C_l of a
simulated ensemble (field of view, data-driven reference map, Poisson counts), as a C_l table
with ``spectrum: pseudo`` that ``crsky infer`` reads (``[data] experiment = NAME``);
``--sky-map PNG`` also draws the first realisation's observed map; ``--transfer`` adds the
forward-simulated transfer column."""

import math
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
    p.add_argument("--transfer", action="store_true",
                   help="also write the column 'transfer': the mean pseudo-C_l of these maps "
                        "(no shot noise) over the isotropic mixing matrix's prediction from "
                        "their whole-sky C_l, which the pseudo-C_l model then applies")
    p.add_argument("--out", required=True,
                   help="C_l table to write (must not exist unless --overwrite)")
    p.add_argument("--sky-map", default=None, metavar="PNG",
                   help="also draw the observed dI of the first realisation (equatorial "
                        "Mollweide, field of view outlined) to this PNG (default: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out table or --sky-map figure")
    p.set_defaults(func=run)


def run(args) -> int:
    from crsky import resources
    from crsky.cli._common import check_output
    from crsky.inference.data import find_experiment
    from crsky.io import runfile
    from crsky.io.tables import load_experiments, write_cl_table
    from crsky.pipelines.tabulate import observed_cl_table

    check_output("--out", args.out, overwrite=args.overwrite)
    if args.sky_map is not None:
        if Path(args.sky_map).suffix.lower() != ".png":
            raise ValueError(f"--sky-map must name a .png file, got {args.sky_map!r}")
        if Path(args.sky_map).resolve() == Path(args.out).resolve():
            raise ValueError("--sky-map must differ from --out")
        check_output("--sky-map", args.sky_map, overwrite=args.overwrite)
    if args.t_omega is not None and not math.isfinite(args.t_omega):
        raise ValueError(f"--t-omega must be finite, got {args.t_omega!r}")
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
    last = float(run_data.t_omega[-1])
    # the saved times are log-spaced floats: any spelling of the last one (20, 2e1, 20.0000001)
    if args.t_omega is not None and not math.isclose(args.t_omega, last, rel_tol=1e-6):
        raise ValueError(f"--t-omega: only the last saved time {last:g} has maps (maps_last), "
                         f"got {args.t_omega!r}")
    command = "crsky " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    settings = dict(
        events=args.events, b0_ra_deg=args.b0_ra, b0_dec_deg=args.b0_dec,
        field_sign=args.field_sign, gradient_angle_deg=args.gradient[0],
        gradient_azimuth_deg=args.gradient[1], strength=args.strength, seed=args.seed,
    )
    table = observed_cl_table(run_data, experiment, ell_max=args.ell_max,
                              meta={"command": command}, transfer=args.transfer, **settings)
    write_cl_table(args.out, table)
    print(args.out)
    if args.sky_map is not None:
        draw_sky_map(args.sky_map, run_data, experiment, settings)
        print(args.sky_map)
    return 0


def draw_sky_map(path, run, experiment, settings: dict) -> None:
    """Draw the first realisation's observed map (the table's first, same Poisson draws) to
    the PNG ``path``, the experiment and every setting in the title."""
    from crsky.pipelines.tabulate import observed_maps
    from crsky.plotting.sky import observed_sky_map

    observed = next(observed_maps(run, experiment, **settings))
    events = "no shot noise" if settings["events"] is None else f"{settings['events']:.3g} events"
    title = (
        f"{experiment.name}: realisation {int(run.indices[0])}, "
        rf"$t\Omega = {float(run.t_omega[-1]):g}$, nside {run.config.nside}" "\n"
        rf"$B_0$ at RA {settings['b0_ra_deg']:g}°, Dec {settings['b0_dec_deg']:g}° "
        f"(sign {settings['field_sign']:+d}), "
        rf"$\nabla n$ at {settings['gradient_angle_deg']:g}° from $B_0$ "
        f"(azimuth {settings['gradient_azimuth_deg']:g}°), "
        rf"$|\nabla n|/n = {settings['strength']:g}/L_c$, {events}, seed {settings['seed']}"
    )
    fig = observed_sky_map(observed, experiment.field_of_view(run.config.nside), title,
                           dec_range_deg=(experiment.dec_min_deg, experiment.dec_max_deg))
    fig.savefig(path, dpi=110, bbox_inches="tight")
