"""``crsky beam``: the beam paper's observables for a turbulence scale ``l``.

For ``--l-pc L`` (or ``--knee-pev E``, which sets ``l = r_g(E, B0)``) it prints ``ε = r_g/l``,
the beam width, the fractional excess (eigen solver) and the cut-off ``p_Bmax`` at one energy;
with ``--energies`` (or ``--energy-range``) the width and excess over energy with their local
power-law indices (``--figure PNG`` draws them); with ``--source-anisotropy A`` the distance
along the flux tube over which the large-scale anisotropy decays from ``A`` to the observed
``--observed-anisotropy`` (default 1e-3).
"""

def register(subparsers) -> None:
    p = subparsers.add_parser(
        "beam",
        help="beam width, excess, cut-off (and source distance) for a turbulence scale l",
        description=(
            "The beam paper's three observables (width, fractional excess, cut-off p_Bmax) for "
            "a turbulence scale l, at one energy or over energy, and optionally the distance "
            "to a source along the flux tube. Energies in TeV, B0 in microgauss, lengths in pc."
        ),
    )
    scale = p.add_mutually_exclusive_group(required=True)
    scale.add_argument("--l-pc", type=float, help="turbulence scale l (pc)")
    scale.add_argument("--knee-pev", type=float,
                       help="set l = r_g(E_knee, B0), the gyro-radius at this energy (PeV)")
    p.add_argument("--b0-ugauss", type=float, default=3.0,
                   help="regular field B0 in microgauss (default 3; the paper says 'a few')")
    p.add_argument("--energy-tev", type=float, default=1.5,
                   help="proton energy (TeV) of the single-energy output (default 1.5)")
    p.add_argument("--va-over-c", type=float, default=1e-4, help="delta = V_A/c (default 1e-4)")
    p.add_argument("--alpha", type=float, default=1e-3,
                   help="alpha = F0/F_C of the cut-off, beam paper eq. 15 (default 1e-3)")
    p.add_argument("--q-c", type=float, default=4.6, help="background index q_c (default 4.6)")
    energies = p.add_mutually_exclusive_group()
    energies.add_argument("--energies", type=float, nargs="+", metavar="E",
                          help="energies (TeV, increasing) for the energy dependence")
    energies.add_argument("--energy-range", type=float, nargs=3, metavar=("LO", "HI", "N"),
                          help="N log-spaced energies from LO to HI (TeV)")
    p.add_argument("--figure", metavar="PNG",
                   help="draw the energy dependence (needs --energies or --energy-range)")
    p.add_argument("--source-anisotropy", type=float, metavar="A",
                   help="first-mode anisotropy at the source: print the source distance (pc)")
    p.add_argument("--observed-anisotropy", type=float, default=1e-3,
                   help="anisotropy at the Earth (default 1e-3)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=run)


def _energies(args):
    if args.energy_range is None:
        return args.energies
    lo, hi, n = args.energy_range
    if n != int(n) or n < 2:
        raise ValueError(f"--energy-range N must be an integer >= 2, got {n!r}")
    if not 0 < lo < hi:
        raise ValueError(f"--energy-range needs 0 < LO < HI, got {lo!r}, {hi!r}")
    import numpy as np

    return np.geomspace(lo, hi, int(n)).tolist()


def run(args) -> int:
    from crsky.cli._common import print_json
    from crsky.physics import beam

    energies = _energies(args)
    if args.figure and energies is None:
        raise ValueError("--figure needs --energies or --energy-range")
    if args.knee_pev is not None:
        l_pc = float(beam.knee_scale_pc(args.b0_ugauss, args.knee_pev))
    else:
        l_pc = args.l_pc
    point = beam.predict(l_pc, args.b0_ugauss, args.energy_tev, args.va_over_c, args.alpha,
                         args.q_c)
    summary = {
        "l_pc": l_pc,
        "knee_pev": args.knee_pev,
        "b0_ugauss": args.b0_ugauss,
        "energy_tev": args.energy_tev,
        "va_over_c": args.va_over_c,
        "alpha": args.alpha,
        "q_c": args.q_c,
        **point,
        "k": beam.k_parameter(l_pc, args.b0_ugauss),
    }
    if args.source_anisotropy is not None:
        dist = beam.source_distance(l_pc, point["eps"], args.va_over_c, args.source_anisotropy,
                                    args.observed_anisotropy)
        summary |= {
            "source_anisotropy": args.source_anisotropy,
            "observed_anisotropy": args.observed_anisotropy,
            "source_distance_pc": dist.distance_pc,
            "scattering_length_pc": dist.scattering_length_pc,
            "lambda1_z": dist.lambda1 * dist.z,
            "mode_separation": dist.mode_separation,
        }
    if energies is not None:
        table = beam.energy_dependence(l_pc, args.b0_ugauss, energies, args.va_over_c,
                                       args.alpha, args.q_c)
        summary["energy_dependence"] = table
        if args.figure:
            from crsky.plotting.beam import plot_energy_dependence

            plot_energy_dependence(table).savefig(args.figure, dpi=120)
            summary["figure"] = args.figure
    if args.json:
        print_json(summary)
        return 0
    for key, value in summary.items():
        if key == "energy_dependence":
            cols = ("energy_tev", "eps", "width_deg", "width_index", "fractional_excess",
                    "excess_index")
            print("  ".join(f"{c:>17s}" for c in cols))
            for row in zip(*(value[c] for c in cols), strict=True):
                print("  ".join(f"{float(v):17.6g}" for v in row))
        elif value is not None:
            print(f"{key:>22s}  {value}")
    return 0
