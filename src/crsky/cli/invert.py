"""``crsky invert``: infer the local turbulent field from an arrival-direction map (mock data)."""

from pathlib import Path

PARAMETRISATIONS = ("fourier", "fourier+gradient")
METHODS = ("continuation", "shooting", "plain")
PATH_COUNT = 4
"""Back-tracked paths along which field_along_paths.png compares the true and recovered field."""
PATH_SAMPLES = 80
"""Samples per path, evenly spaced in tΩ up to the held-out time."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "invert",
        help="fit the local turbulent field to a (mock) relative-intensity map",
        description=(
            "Draw a mock relative-intensity map (rel.-diffusion paper eq. 2.1) from a field with "
            "fixed wave vectors and Gaussian Fourier coefficients (--seed), or from one "
            "realisation of a run file (--runfile), add shot noise of --events CRs, and fit the "
            "field's coefficients (MAP, many starts; continuation in the back-tracking time "
            "by default). "
            "Writes inversion.json (recovery numbers) and figures to --out."
        ),
    )
    p.add_argument("--out", required=True, help="folder for inversion.json and the figures")
    p.add_argument("--parametrisation", default="fourier",
                   help=f"one of {', '.join(PARAMETRISATIONS)} (default: %(default)s): "
                        "fixed k_n with free cos/sin coefficients, and the gradient known or free")
    p.add_argument("--seed", type=int, default=0, help="seed of the mock field and noise")
    p.add_argument("--runfile", help="take the true field from this run file instead")
    p.add_argument("--realisation", type=int, default=0,
                   help="realisation index in --runfile (default 0)")
    p.add_argument("--modes", type=int, default=3, help="wave vectors N (4N unknowns)")
    p.add_argument("--sigma", type=float, default=0.5,
                   help="rms δB/B0 of the mock field, sets the prior (default 0.5)")
    p.add_argument("--k-band", type=float, nargs=2, default=(5.0, 20.0),
                   metavar=("K_MIN", "K_MAX"),
                   help="wave numbers fitted, 1/Lc (run file: waves outside are held at their "
                        "true values; default 5 20, around 1/r_L)")
    p.add_argument("--r-larmor", type=float, default=0.1, help="Larmor radius, Lc")
    p.add_argument("--nside", type=int, default=4, help="HEALPix resolution of the map")
    p.add_argument("--t-omega", type=float, nargs="+", default=(1.0, 2.0, 4.0),
                   help="back-tracking times tΩ of the maps, increasing (default 1 2 4)")
    p.add_argument("--held-out-t-omega", type=float, default=None,
                   help="time of a held-out map to predict (default 2 x the last --t-omega)")
    p.add_argument("--events", type=float, default=1e6,
                   help="CR events in the map (shot noise); 0 for a noise-free mock, fitted by "
                        "maximum likelihood (no prior)")
    p.add_argument("--gradient", type=float, nargs=3, default=(0.7071, 0.0, 0.7071),
                   metavar=("GX", "GY", "GZ"), help="true grad n / n, 1/Lc")
    p.add_argument("--kappa", type=float, nargs=2, default=(0.025, 0.54),
                   metavar=("PERP", "PAR"), help="K = diag(perp, perp, par), Lc c")
    p.add_argument("--dt", type=float, default=0.1, help="Boris step, 1/Omega")
    p.add_argument("--starts", type=int, default=8, help="random starts of the fit")
    p.add_argument("--method", default="continuation",
                   help=f"one of {', '.join(METHODS)}: continuation in tΩ (shortest maps first), "
                        "multiple shooting "
                        "(Gauss–Newton on path segments, then the full fit) or plain "
                        "(all maps at once)")
    p.add_argument("--segment", type=float, default=2.0,
                   help="longest multiple-shooting segment, tΩ (with --method shooting)")
    p.add_argument("--experiment", default=None,
                   help="see the map as this experiment of data/experiments.toml does "
                        "(case-insensitive): equatorial pixels with B0 at its default "
                        "direction, the declination band, each ring's mean removed; default: "
                        "the whole sky in the simulation frame")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def _truth_from_runfile(args, dtype):
    """(basis, true coefficients, background modes, r_L, dt) of one run-file realisation: waves
    with |k| in the band are fitted, the others are held at their true values; r_L is the run's,
    and the Boris step resolves its shortest wave (tracing.default_step) unless --dt is smaller."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from crsky.io import runfile
    from crsky.physics import inverse as inv
    from crsky.physics.tracing import default_step
    from crsky.physics.turbulence import Modes

    data = runfile.load(Path(args.runfile), ("modes/k", "modes/amplitude", "modes/phase"))
    indices = [int(i) for i in data.indices]
    if args.realisation not in indices:
        raise ValueError(f"--realisation {args.realisation} is not in {args.runfile} "
                         f"(it holds {indices})")
    i = indices.index(args.realisation)
    modes = Modes(*(jnp.asarray(data.arrays[f"modes/{n}"][i], dtype)
                    for n in ("k", "amplitude", "phase")))
    k_abs = np.linalg.norm(np.asarray(modes.k), axis=-1)
    inside = (k_abs >= args.k_band[0]) & (k_abs <= args.k_band[1])
    if not inside.any():
        raise ValueError(f"--k-band {args.k_band} holds none of the run file's wave numbers "
                         f"({k_abs.min():.3g} ... {k_abs.max():.3g} 1/Lc)")
    fitted = jax.tree.map(lambda a: a[inside], modes)
    background = jax.tree.map(lambda a: a[~inside], modes) if (~inside).any() else None
    basis, coefficients = inv.basis_from_modes(fitted)
    r_larmor = float(data.config.r_larmor)
    dt = min(args.dt, default_step(r_larmor, 2 * np.pi / k_abs.max()))
    return basis, coefficients, background, r_larmor, dt


def run(args) -> int:
    import json

    import jax
    import jax.numpy as jnp
    import numpy as np

    from crsky import _validate, resources
    from crsky.cli._common import print_json
    from crsky.inference.data import find_experiment
    from crsky.io.tables import load_experiments
    from crsky.io.text import to_builtin
    from crsky.physics import inverse as inv
    from crsky.physics import observatory
    from crsky.plotting.inverse import (
        recovery_against_time,
        recovery_along_paths,
        recovery_maps,
    )

    _validate.one_of("--parametrisation", args.parametrisation, PARAMETRISATIONS)
    _validate.increasing("--t-omega", args.t_omega)
    _validate.positive("--r-larmor", args.r_larmor)
    _validate.power_of_two("--nside", args.nside)
    _validate.non_negative("--events", args.events)
    _validate.positive_int("--modes", args.modes)
    _validate.positive("--sigma", args.sigma)
    _validate.positive("--dt", args.dt)
    _validate.positive_int("--starts", args.starts)
    _validate.one_of("--method", args.method, METHODS)
    _validate.positive("--segment", args.segment)
    _validate.finite("--gradient", args.gradient)
    _validate.positive("--kappa", args.kappa)
    _validate.positive("--k-band", args.k_band)
    if args.k_band[0] > args.k_band[1]:
        raise ValueError(f"--k-band: K_MIN {args.k_band[0]} must be <= K_MAX {args.k_band[1]}")
    observed_as = {}
    if args.experiment is not None:
        experiment = find_experiment(
            load_experiments(resources.resolve("data", "experiments.toml")), args.experiment)
        observed_as = {"frame": observatory.simulation_frame(),
                       "field_of_view": experiment.field_of_view(args.nside)}
    held_out_t = args.held_out_t_omega or 2 * args.t_omega[-1]
    _validate.positive("--held-out-t-omega", held_out_t)
    free_gradient = args.parametrisation == "fourier+gradient"
    dtype = jnp.float64
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    key_field, key_basis, key_noise, key_starts = jax.random.split(jax.random.PRNGKey(args.seed), 4)
    if args.runfile:
        basis, true_coefficients, background, r_larmor, dt = _truth_from_runfile(args, dtype)
    else:
        basis = inv.make_basis(key_basis, args.modes, *args.k_band, dtype=dtype)
        scale = inv.prior_scale_for(args.modes, args.sigma)
        true_coefficients = jnp.asarray(scale)[:, None] * jax.random.normal(
            key_field, (args.modes, 4), dtype
        )
        background, r_larmor, dt = None, args.r_larmor, args.dt
    n_modes = basis.k.shape[0]
    prior_scale = inv.prior_scale_for(n_modes, args.sigma)
    K = jnp.diag(jnp.asarray([args.kappa[0], args.kappa[0], args.kappa[1]], dtype))
    gradient = jnp.asarray(args.gradient, dtype)
    problem = inv.make_problem(basis, args.nside, args.t_omega, r_larmor, K, dt, background,
                               **observed_as)
    truth = inv.FieldParams(true_coefficients, gradient)
    events = args.events or None
    fit_prior = prior_scale if events else None  # noise-free: maximum likelihood
    data, sigma = inv.mock_data(key_noise, problem, truth, events)
    # starts: the prior; with a free gradient, the gradient starts at the map's dipole direction
    start_gradient = gradient if not free_gradient else jnp.zeros(3, dtype).at[2].set(0.5)
    starts = inv.random_starts(key_starts, args.starts, n_modes, prior_scale, start_gradient)
    stages = ([(j, None) for j in range(1, len(args.t_omega))]  # continuation in T
              if args.method == "continuation" else None)
    shooting = inv.Shooting(args.segment) if args.method == "shooting" else None
    result = jax.jit(lambda s: inv.fit(problem, data, sigma, s, prior_scale=fit_prior,
                                       free_gradient=free_gradient, stages=stages,
                                       shooting=shooting))(starts)
    best = result.best_params()
    recovered = inv.predict(problem, best)
    clean = inv.predict(problem, truth)
    held = inv.with_times(problem, [held_out_t])
    held_true, held_rec = inv.predict(held, truth)[0], inv.predict(held, best)[0]
    cov = inv.laplace_covariance(problem, best, sigma, fit_prior, free_gradient)
    fisher = inv.fisher_matrix(problem, truth, sigma, free_gradient)
    err = inv.flatten(best, free_gradient) - inv.flatten(truth, free_gradient)
    z = err / jnp.sqrt(jnp.diag(cov))
    npix = problem.directions.shape[0]
    # the field along PATH_COUNT paths spread over the sky, back-tracked through the true field
    # out to the held-out time; the last fitted time splits seen from extrapolated
    view = observed_as.get("field_of_view")
    in_view = np.arange(npix) if view is None else np.flatnonzero(view)
    path_pixels = in_view[np.linspace(0, in_view.size - 1, PATH_COUNT).round().astype(int)]
    path_times = np.linspace(0.0, held_out_t, PATH_SAMPLES + 1)[1:]
    along = inv.field_along_paths(problem, truth, best, path_pixels, path_times)
    path_residual = np.linalg.norm(np.asarray(along.b_recovered - along.b_true), axis=-1)
    seen = path_times <= args.t_omega[-1]
    chi2 = float(jnp.sum(((recovered - data) / sigma) ** 2))

    # recovery against T: an independent fit to the single map at each time, same starts
    per_t = []
    for t in args.t_omega:
        single = inv.with_times(problem, [t])
        d_t, s_t = inv.mock_data(key_noise, single, truth, events)
        r_t = jax.jit(lambda s, single=single, d_t=d_t, s_t=s_t: inv.fit(
            single, d_t, s_t, s, prior_scale=fit_prior, free_gradient=free_gradient
        ))(starts).best_params()
        per_t.append({
            "t_omega": t,
            "coefficient_error": float(jnp.linalg.norm(r_t.coefficients - true_coefficients)
                                       / jnp.linalg.norm(true_coefficients)),
            "map_correlation_truth": float(inv.map_correlation(inv.predict(single, r_t),
                                                               inv.predict(single, truth))),
        })
    summary = {
        "mock": True,
        "parametrisation": args.parametrisation,
        "method": args.method,
        "segment": args.segment if args.method == "shooting" else None,
        "source": args.runfile or f"seed {args.seed}",
        "unknowns": int(err.size),
        "r_larmor": r_larmor,
        "dt": dt,
        "pixels": npix,
        "experiment": experiment.name if observed_as else None,
        "pixels_observed": inv.observed_pixels(problem),
        "t_omega": list(args.t_omega),
        "events": events,
        "pixel_sigma": float(sigma.ravel()[0]) if events else None,
        "map_rms": float(jnp.std(clean)),
        "chi2": chi2,
        "chi2_per_pixel": chi2 / data.size,
        "map_correlation_data": float(inv.map_correlation(recovered, data)),
        "map_correlation_truth": float(inv.map_correlation(recovered, clean)),
        "held_out_t_omega": held_out_t,
        "map_correlation_held_out": float(inv.map_correlation(held_rec, held_true)),
        "coefficient_error": float(jnp.linalg.norm(best.coefficients - true_coefficients)
                                   / jnp.linalg.norm(true_coefficients)),
        "laplace_z_within_1": float(jnp.mean(jnp.abs(z) < 1)),
        "laplace_z_within_2": float(jnp.mean(jnp.abs(z) < 2)),
        "fisher_eigenvalues": np.linalg.eigvalsh(np.asarray(fisher))[::-1],
        "prior_precision": float(1 / prior_scale[0] ** 2),
        "best_start": int(result.best),
        "loss_per_start": result.loss,
        "recovered_gradient": best.gradient,
        "recovery_against_t": per_t,
        "field_along_paths": {
            "pixels": path_pixels,
            "max_residual_to_last_t_omega": float(path_residual[seen].max()),
            "max_residual_to_held_out_t_omega": float(path_residual.max()),
        },
    }
    recovery_maps(clean[-1], recovered[-1], data[-1], field_of_view=view,
                  title=f"tΩ = {args.t_omega[-1]:g} (mock)").savefig(out / "maps.png", dpi=110)
    recovery_maps(held_true, held_rec, title=f"held out, tΩ = {held_out_t:g} (mock)",
                  field_of_view=view).savefig(
        out / "held_out.png", dpi=110)
    recovery_against_time(
        [p["t_omega"] for p in per_t],
        {"coefficient error |Δθ|/|θ|": [p["coefficient_error"] for p in per_t],
         "1 − map correlation": [1 - p["map_correlation_truth"] for p in per_t]},
        "recovery error (single-map fits)",
    ).savefig(out / "recovery_against_t.png", dpi=110)
    recovery_along_paths(
        path_times, along.b_true, along.b_recovered, t_data=args.t_omega[-1],
        labels=[f"pixel {i}" for i in path_pixels],
        title="field along paths back-tracked through the true field (mock)",
    ).savefig(out / "field_along_paths.png", dpi=110)
    (out / "inversion.json").write_text(json.dumps(to_builtin(summary), indent=1))
    if args.json:
        print_json(summary)
    else:
        for k in ("coefficient_error", "map_correlation_truth", "map_correlation_held_out",
                  "chi2_per_pixel"):
            print(f"{k:>28s}  {summary[k]:.6g}")
        print(f"wrote {out / 'inversion.json'} and figures")
    return 0
