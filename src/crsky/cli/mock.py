"""``crsky mock``: a mock C_l table from the BGK closure at real sky fractions and noise levels."""

import shlex
from pathlib import Path

from crsky.cli._common import check_output, print_json


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
    p.add_argument("--experiments", default="experiments.toml",
                   help="TOML file of experiments (f_sky, noise, ell_max); a bare file name is "
                        "looked up among the built-in data tables first")
    p.add_argument("--only", nargs="+",
                   help="use only these experiments (default: all whose f_sky, noise and ell_max "
                        "are known)")
    p.add_argument("--experiment", nargs="+", metavar="NAME",
                   help="observe one Gaussian BGK sky as these experiments (field of view, "
                        "Poisson counts, data-driven reference map) and write their "
                        "pseudo-C_l (header spectrum: pseudo); names are case-insensitive")
    p.add_argument("--nside", type=int, default=64,
                   help="HEALPix resolution of the observed sky with --experiment (default 64)")
    p.add_argument("--events", type=float,
                   help="event count of every experiment with --experiment (default: each "
                        "experiment's published count)")
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
    from crsky.inference.data import find_experiment, mock_cl_table
    from crsky.io.tables import load_experiments, write_cl_table

    out = check_output("--out", args.out, overwrite=args.overwrite)
    experiments = load_experiments(resources.resolve("data", args.experiments))
    if args.experiment:
        return _observed(args, out, [find_experiment(experiments, n) for n in args.experiment])
    # by default every experiment a mock can use (f_sky, noise and ell_max known)
    names = args.only or [
        n for n, e in experiments.items()
        if e.ell_max is not None and e.f_sky == e.f_sky and e.noise == e.noise
    ]
    for name in names:
        if name not in experiments:
            raise ValueError(f"--only: {name!r} is not in {args.experiments}")
    command = "crsky mock " + " ".join(
        shlex.quote(a) for a in (
            "--experiments", args.experiments, "--only", *names,
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


def _observed(args, out: Path, chosen: list) -> int:
    """``crsky mock --experiment``: pseudo-C_l of one mock sky seen by the chosen experiments."""
    from crsky.inference.data import mock_pseudo_cl_table
    from crsky.io.tables import write_cl_table

    if args.only:
        raise ValueError("--only applies to full-sky mocks; name the experiments in --experiment")
    if args.events is not None and not args.events > 0:
        raise ValueError(f"--events must be > 0, got {args.events!r}")
    events = {e.name: args.events for e in chosen} if args.events is not None else None
    command = "crsky mock " + " ".join(shlex.quote(a) for a in (
        "--experiments", args.experiments, "--experiment", *(e.name for e in chosen),
        "--nside", str(args.nside), *(["--events", repr(args.events)] if args.events else []),
        "--p", repr(args.p), "--q1", repr(args.q1), "--ell-min", str(args.ell_min),
        "--seed", str(args.seed), "--out", args.out, "--overwrite",
    ))
    meta = {"experiments": "; ".join(f"{e.name}: declination {e.dec_min_deg}..{e.dec_max_deg} "
                                      f"({e.sources['declination_deg']})" for e in chosen),
            "cl": "pseudo-C_l (anafast of the masked, ring-filtered map, not divided by f_sky) "
                  "minus the Poisson noise level in column noise",
            "command": command}
    table = mock_pseudo_cl_table(args.p, args.q1, chosen, args.seed, nside=args.nside,
                                 ell_min=args.ell_min, events=events, meta=meta)
    write_cl_table(out, table)
    if args.json:
        print_json({"out": str(out), "rows": int(table.ell.size), **table.meta})
    return 0
