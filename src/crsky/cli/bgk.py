"""``crsky bgk``: steady-state C_l of the BGK-like closure (rel.-diffusion paper eq. 4.7)."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bgk",
        help="BGK steady-state angular power spectrum C_l(p) (rel.-diffusion paper eq. 4.7)",
        description=(
            "Closed-form C_l of eq. (4.7) for nu_r(x) = (1 - x)^p and unit amplitude Q1 = 1, the "
            "shape C_l / C_1 and its exact derivative in p, for l = 1 .. ell_max."
        ),
    )
    p.add_argument("--p", type=float, required=True, help="exponent of nu_r, in (0, 1)")
    p.add_argument("--ell-max", type=int, default=30, help="largest multipole ℓ, >= 1")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    import jax
    import jax.numpy as jnp

    from crsky import _validate
    from crsky.cli._common import check_finite, print_json
    from crsky.physics import bgk

    _validate.open_interval("p", args.p, 0.0, 1.0)
    _validate.positive_int("ell_max", args.ell_max)
    # per multipole: ~15 float64 temporaries (Gamma functions, the derivative) and the printed
    # table as Python floats (4 columns of 40 bytes) and text: about 400 bytes
    _validate.fits_in_memory(f"ell_max={args.ell_max}", 400 * args.ell_max,
                             "the table of multipoles")
    ell = jnp.arange(1, args.ell_max + 1)

    def shape(p):
        c = bgk.cl_shape(p, ell)
        return c / c[0]

    summary = {
        "p": args.p,
        "ell": ell,
        "cl": bgk.cl_shape(args.p, ell),
        "cl_over_c1": shape(args.p),
        "dcl_over_c1_dp": jax.jacfwd(shape)(args.p),
    }
    check_finite(summary, f"p={args.p!r}, ell_max={args.ell_max}")
    if args.json:
        print_json(summary)
    else:
        print(f"{'ell':>6s} {'cl':>14s} {'cl_over_c1':>14s} {'dcl_over_c1_dp':>15s}")
        columns = (summary[k].tolist() for k in ("ell", "cl", "cl_over_c1", "dcl_over_c1_dp"))
        for l, c, r, d in zip(*columns, strict=True):
            print(f"{l:6d} {c:14.6e} {r:14.6e} {d:15.6e}")
    return 0
