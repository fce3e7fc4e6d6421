"""``crsky mock``: a mock C_l table from the BGK closure at real sky fractions and noise levels."""

import shlex
from pathlib import Path

from crsky.cli._common import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mock",
        help="write a mock C_l table (labelled mock, truth and seed in its header)",
        description=(
            "Draw C_l = BGK closure (rel.-diffusion paper eq. 4.7) + partial-sky cosmic variance "
            "and noise for each experiment of an experiments file (f_sky, N, ell_max), and write "
            "a C_l table whose header records mock: true, the truth, the random seed and this "
            "command."
        ),
    )
    p.add_argument("--experiments", default="cl_experiments.toml",
                   help="TOML file of experiments (f_sky, noise, ell_max); a bare file name is "
                        "looked up among the built-in data tables first")
    p.add_argument("--only", nargs="+", help="use only these experiments")
    p.add_argument("--p", type=float, required=True, help="true exponent p of nu_r, 0 < p < 1")
    p.add_argument("--q1", type=float, required=True,
                   help="true BGK amplitude of the dI spectrum, q1 = (4 pi)^2 Q1/nu0")
    p.add_argument("--ell-min", type=int, default=1, help="smallest multipole")
    p.add_argument("--seed", type=int, required=True, help="seed of the Gaussian draws")
    p.add_argument("--out", required=True, help="C_l table to write (CSV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from crsky import resources
    from crsky.inference.data import mock_cl_table
    from crsky.io.tables import load_experiments, write_cl_table

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
    experiments = load_experiments(resources.resolve("data", args.experiments))
    names = args.only or list(experiments)
    for name in names:
        if name not in experiments:
            raise ValueError(f"--only: {name!r} is not in {args.experiments}")
    command = "crsky mock " + " ".join(
        shlex.quote(a) for a in (
            "--experiments", args.experiments, *(["--only", *args.only] if args.only else []),
            "--p", repr(args.p), "--q1", repr(args.q1), "--ell-min", str(args.ell_min),
            "--seed", str(args.seed), "--out", args.out, "--overwrite",
        )
    )
    meta = {
        "experiments": "; ".join(f"{n}: {experiments[n].source}" for n in names),
        "cl": "noise-subtracted C_l - N; Gaussian draw with sigma = sqrt(2/((2l+1) f_sky)) (C_l+N)",
        "command": command,
    }
    table = mock_cl_table(
        args.p, args.q1, [experiments[n] for n in names], args.seed, args.ell_min, meta
    )
    write_cl_table(out, table)
    if args.json:
        print_json({"out": str(out), "rows": int(table.ell.size), **table.meta})
    return 0
