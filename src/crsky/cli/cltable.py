"""``crsky cltable RUNFILE``: a run's simulated Ĉ_ℓ as a C_ℓ table (the data/README.md format)."""

import argparse
import shlex
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cltable",
        help="export the simulated C^_l of a run file as a C_l table (CSV)",
        description=(
            "Write C^_l = <C_l> - N (rel.-diffusion paper eq. 3.1) at one saved time of the run, "
            "with its standard error over realisations, f_sky = 1 and the subtracted noise N, "
            "in the documented C_l table format, for 'crsky infer' (error_model = \"table\")."
        ),
    )
    p.add_argument("runfile", help="run file written by 'crsky simulate'")
    p.add_argument("--orientation", default="parallel", choices=("parallel", "perpendicular"),
                   help="gradient of the density relative to B0")
    p.add_argument("--ell-max", type=int, default=None, help="largest multipole (default: all)")
    p.add_argument("--t-omega", type=float, default=None,
                   help="saved back-tracking time t*Omega to export (default: the last)")
    p.add_argument("--out", required=True, help="C_l table to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crsky.cli._common import check_output
    from crsky.io import runfile
    from crsky.io.tables import write_cl_table
    from crsky.pipelines.tabulate import cl_table_from_run

    check_output("--out", args.out, overwrite=args.overwrite)
    command = "crsky " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    table = cl_table_from_run(runfile.load(args.runfile), args.orientation, args.ell_max,
                              command=command, t_omega=args.t_omega)
    write_cl_table(args.out, table)
    print(args.out)
    return 0
