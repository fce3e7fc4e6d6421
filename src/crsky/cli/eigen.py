"""``crsky eigen``: first eigenvalues of beam paper eq. (8) and the beam observables."""

# crsky.physics.pitch_angle.PROFILES (not imported here: help needs no JAX; a test compares)
PROFILES = ("flat", "matched", "gs")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eigen",
        help="pitch-angle eigenvalues and beam observables (beam paper eq. 8)",
        description=(
            "Solve beam paper eq. (8) for the first positive eigenvalues with the chosen "
            "scattering profile, compare with D = 1 at the same bulk speed, and print the beam "
            "width, fractional excess and eigenvalue shift beside their matched-asymptotic "
            "formulas of the beam paper (docs/physics.md (B9)-(B11))."
        ),
    )
    p.add_argument("--eps", type=float, required=True,
                   help="eps = r_g / l, in [1e-10, 0.02] for every profile (EPS_MIN, EPS_MAX: "
                        "peak width b = j1^2 eps / 2 <= 0.15, and the mesh, graded towards the "
                        "peak edge also for flat, degenerates below 1e-10); eigenvalues "
                        "converged to 1e-7 relative for 1e-5 <= eps <= 0.02 at delta = 1e-4")
    p.add_argument("--delta", type=float, default=1e-4,
                   help="delta = V_A / c, in [0, 1) (gs: (0, 1))")
    p.add_argument("--u", type=float, default=0.0, help="bulk speed in units of c, |u| < 1")
    p.add_argument("--profile", default="matched", choices=PROFILES,
                   help="scattering profile D(mu): flat (D = 1), matched (the beam paper's inner "
                        "form), gs (Goldreich-Sridhar, beam paper eqs. 3-4)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    from crsky.cli._common import check_finite, print_json
    from crsky.physics import beam, pitch_angle

    sol = pitch_angle.solve(args.eps, args.delta, args.u, args.profile, n_eigen=3)
    obs = beam.observables(args.eps, args.delta, args.u, args.profile)
    grad = jax.grad(
        lambda e, d, u: pitch_angle.solve(e, d, u, args.profile, 1).lambdas[0], argnums=(0, 1, 2)
    )(args.eps, args.delta, args.u)
    summary = {
        "eps": args.eps,
        "delta": args.delta,
        "u": args.u,
        "profile": args.profile,
        "lambda1": sol.lambdas[0],
        "lambda2": sol.lambdas[1],
        "lambda3": sol.lambdas[2],
        **{k: v for k, v in obs.to_dict().items() if k != "lambda1"},
        "dlambda1_deps": grad[0],
        "dlambda1_ddelta": grad[1],
        "dlambda1_du": grad[2],
    }
    check_finite(summary, f"eps={args.eps!r}, delta={args.delta!r}, u={args.u!r}, "
                          f"profile={args.profile!r}")
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:>30s}  {value}")
    return 0
