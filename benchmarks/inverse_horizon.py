"""How far in back-tracking time can one field realisation be recovered from its sky map?

Mock problems (crsky.physics.inverse): N waves with fixed random directions and |k| log-spaced in
a band around the gyro-resonance (k r_L from 0.5 to 2), Gaussian Fourier coefficients drawn from
the prior (rms δB = sigma B0), a known CR gradient, K = diag(0.025, 0.025, 0.54) Lc c, HEALPix
nside maps with the shot noise of `events` CRs. For each final time T of a ladder and each of
`problems` mock problems (seeds 0..problems-1) the data are the maps at the ladder's times <= T,
and three fits are compared, each from the same `starts` prior draws:

- plain: BFGS on the full likelihood directly;
- continuation: fit the maps at the shortest times first, then add one time per stage;
- smoothing: a first stage on maps smoothed by a Gaussian beam (FWHM `beam` degrees), then the
  full likelihood;
- shooting: multiple shooting (`segment` in tΩ, `shooting_iterations` Gauss–Newton iterations)
  on all the maps, then BFGS on the full likelihood.

Success of a problem: the truth is consistent with the fit's Laplace posterior, i.e. the
Mahalanobis distance d² = Δθᵀ (F + prior precision) Δθ at the fit is below the 99.9 % quantile of
χ² with P = 4N degrees of freedom (directions the data constrain must be right to within their
errors; the others may stay at the prior). The horizon of a method is the largest T at which at
least half of the problems succeed. Also recorded: the relative coefficient error |Δθ|/|θ| of
the best start, per problem the number of starts that end within 1 % of the truth, the smallest
error of any start and the best start's −ln posterior, the correlation of the recovered field's
prediction with the true (noise-free) map and with a held-out map at 2T, the Laplace coverage
(fraction of |z| < 1 and < 2 along the Fisher eigen-directions that the data constrain better
than the prior), the Fisher eigenvalues at the truth, and wall times.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inverse_horizon.py --out DIR
Writes DIR/inverse_horizon.json and DIR/inverse_horizon.png.
"""

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crsky.physics import inverse as inv  # noqa: E402

METHODS = ("plain", "continuation", "smoothing", "shooting")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--modes", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=0.5, help="rms dB/B0 of the prior")
    parser.add_argument("--nside", type=int, default=4)
    parser.add_argument("--r-larmor", type=float, default=0.1)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--events", type=float, default=1e6)
    parser.add_argument("--ladder", type=float, nargs="+", default=(1, 2, 4, 8, 16, 32))
    parser.add_argument("--finals", type=float, nargs="+", default=None,
                        help="final times T to evaluate (default: every time of the ladder); "
                             "separate runs can share the work and be merged")
    parser.add_argument("--beam", type=float, default=40.0, help="smoothing FWHM, degrees")
    parser.add_argument("--segment", type=float, default=2.0,
                        help="longest multiple-shooting segment, tOmega")
    parser.add_argument("--shooting-iterations", type=int, default=60)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS,
                        help="fit methods to compare (continuation needs plain)")
    parser.add_argument("--quantile", type=float, default=0.999,
                        help="chi^2 quantile of the success criterion")
    parser.add_argument("--max-steps", type=int, default=300)
    return parser.parse_args()


def mock(args, seed, times):
    """(problem, truth, data, sigma) of mock problem ``seed`` with maps at ``times``."""
    key_basis, key_field, key_noise = jax.random.split(jax.random.PRNGKey(seed), 3)
    basis = inv.make_basis(key_basis, args.modes, 0.5 / args.r_larmor, 2 / args.r_larmor)
    K = jnp.diag(jnp.array([0.025, 0.025, 0.54]))
    problem = inv.make_problem(basis, args.nside, times, args.r_larmor, K, args.dt)
    scale = inv.prior_scale_for(args.modes, args.sigma)
    coefficients = jnp.asarray(scale)[:, None] * jax.random.normal(key_field, (args.modes, 4))
    truth = inv.FieldParams(coefficients, jnp.array([1.0, 0.0, 1.0]) / np.sqrt(2))
    data, sigma = inv.mock_data(key_noise, problem, truth, args.events)
    return problem, truth, data, sigma


def metrics(problem, best, truth, data, t_held):
    """Correlations of the best fit's prediction with the true map, the held-out true map at
    ``t_held`` and the data."""
    pred, clean = inv.predict(problem, best), inv.predict(problem, truth)
    held = inv.with_times(problem, [t_held])
    return (inv.map_correlation(pred, clean),
            inv.map_correlation(inv.predict(held, best), inv.predict(held, truth)),
            inv.map_correlation(pred, data))


def loss_of_coefficients(coefficients, problem, data, sigma, scale):
    gradient = jnp.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    return inv.negative_log_posterior(
        problem, inv.FieldParams(coefficients, gradient), data, sigma, scale)


def mahalanobis_d2(best, truths, covs):
    """d² = Δθᵀ C⁻¹ Δθ per problem, Δθ the fitted minus the true coefficients and C the Laplace
    covariance at the fit (``covs``, shape (problems, P, P)); success is d² below a χ²_P
    quantile."""
    delta = np.asarray(best.coefficients - truths.coefficients).reshape(len(covs), -1)
    return np.einsum("ri,rij,rj->r", delta, np.linalg.inv(np.asarray(covs)), delta)


def per_problem(function, batched, n):
    """``function`` applied to each problem of the stacked arguments, results stacked (a loop:
    reverse-mode AD through diffrax is not batched over problems here)."""
    return jnp.stack([function(*jax.tree.map(lambda a, i=i: a[i], batched)) for i in range(n)])


def stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def main():
    args = parse_args()
    methods = [m for m in METHODS if m in args.methods]
    if "continuation" in methods and "plain" not in methods:
        raise SystemExit("--methods: continuation needs plain (they coincide for one time)")
    args.out.mkdir(parents=True, exist_ok=True)
    scale = inv.prior_scale_for(args.modes, args.sigma)
    beam = inv.beam_operator(args.nside, np.radians(args.beam))
    ladder = [float(t) for t in args.ladder]
    threshold = stats.chi2.ppf(args.quantile, 4 * args.modes)
    laplace = jax.jit(lambda p, b, s: inv.laplace_covariance(p, b, s, scale))
    fisher_at = jax.jit(inv.fisher_matrix)
    rows = []
    for j, t_final in enumerate(ladder):
        if args.finals is not None and t_final not in args.finals:
            continue
        times = ladder[: j + 1]
        mocks = [mock(args, s, times) for s in range(args.problems)]
        problems = stack([m[0] for m in mocks])
        truths = stack([m[1] for m in mocks])
        data, sigma = jnp.stack([m[2] for m in mocks]), jnp.stack([m[3] for m in mocks])
        starts = stack([
            inv.random_starts(jax.random.PRNGKey(10_000 + s), args.starts, args.modes, scale,
                              mocks[s][1].gradient) for s in range(args.problems)
        ])
        stages = {
            "plain": None,
            "continuation": [(i, None) for i in range(1, len(times))],
            "smoothing": [(len(times), beam)],
            "shooting": None,
        }
        row = {"t_omega": t_final, "times": times, "methods": {}}
        metrics_of = jax.jit(jax.vmap(lambda p, b, t, d, h=2 * t_final: metrics(p, b, t, d, h)))
        best_of, cov_of = {}, {}
        for method in methods:
            if method == "continuation" and len(times) == 1:
                row["methods"][method] = row["methods"]["plain"]
                best_of[method], cov_of[method] = best_of["plain"], cov_of["plain"]
                continue

            # one compiled fit (vmapped over starts) per time ladder and method, looped over the
            # problems: diffrax's checkpointed adjoint inside optimistix does not batch over
            # closed-over data, so the problems cannot be vmapped as well
            shooting = (inv.Shooting(args.segment, args.shooting_iterations)
                        if method == "shooting" else None)
            fitted = jax.jit(lambda p, d, s, st, stages=stages[method], shooting=shooting: inv.fit(
                p, d, s, st, prior_scale=scale, stages=stages, max_steps=args.max_steps,
                shooting=shooting))
            first = jax.tree.map(lambda a: a[0], (problems, data, sigma, starts))
            start = time.perf_counter()
            compiled = fitted.lower(*first).compile()
            compile_s = time.perf_counter() - start
            start = time.perf_counter()
            result = stack([
                jax.block_until_ready(compiled(*jax.tree.map(
                    lambda a, i=i: a[i], (problems, data, sigma, starts))))
                for i in range(args.problems)
            ])
            wall = time.perf_counter() - start
            best = jax.vmap(lambda r: r.best_params())(result)
            err = np.asarray(jnp.linalg.norm(best.coefficients - truths.coefficients, axis=(1, 2))
                             / jnp.linalg.norm(truths.coefficients, axis=(1, 2)))
            # every start's relative coefficient error (problems, S): how many reach the truth
            start_err = np.asarray(
                jnp.linalg.norm(result.params.coefficients - truths.coefficients[:, None],
                                axis=(2, 3))
                / jnp.linalg.norm(truths.coefficients, axis=(1, 2))[:, None])
            best_of[method] = best
            covs = per_problem(laplace, (problems, best, sigma), args.problems)
            d2 = mahalanobis_d2(best, truths, covs)
            ok = d2 < threshold
            cov_of[method] = covs
            corr_truth, corr_held, corr_data = map(
                np.asarray, metrics_of(problems, best, truths, data))
            row["methods"][method] = {
                "coefficient_error": err.tolist(),
                "starts_within_1_percent": np.sum(start_err < 0.01, axis=1).tolist(),
                "min_start_coefficient_error": start_err.min(axis=1).tolist(),
                "best_loss": np.asarray(result.loss).min(axis=1).tolist(),
                "mahalanobis_d2": d2.tolist(),
                "success_fraction": float(np.mean(ok)),
                "median_corr_truth": float(np.median(corr_truth)),
                "median_corr_held_out_2T": float(np.median(corr_held)),
                "median_corr_data": float(np.median(corr_data)),
                "wall_s_per_fit": wall / args.problems,
                "compile_s": compile_s,
                "median_optimiser_steps": float(np.median(np.asarray(result.steps))),
            }
            print(f"T={t_final:g} {method}: success {np.mean(ok):.2f}, median "
                  f"err {np.median(err):.3g}, held-out corr {np.median(corr_held):.3f}, "
                  f"{wall / args.problems:.2f} s/fit", flush=True)
        # Fisher information at the truth, Laplace coverage at the best method's successful fits
        fisher = per_problem(fisher_at, (problems, truths, sigma), args.problems)
        eig = np.linalg.eigvalsh(np.asarray(fisher))
        prior_precision = 1 / scale[0] ** 2
        row["fisher_eigenvalues_median"] = np.median(eig, axis=0)[::-1].tolist()
        row["identifiable_directions_median"] = float(
            np.median(np.sum(eig > prior_precision, axis=1)))
        best_method = max(methods, key=lambda m: row["methods"][m]["success_fraction"])
        d2_best = np.asarray(row["methods"][best_method]["mahalanobis_d2"])
        z_all, z_ok = [], []
        best = best_of[best_method]
        covs = cov_of[best_method]
        for i in range(args.problems):
            w, v = np.linalg.eigh(np.asarray(fisher[i]))
            keep = w > prior_precision
            delta = np.asarray(best.coefficients[i] - truths.coefficients[i]).ravel()
            proj = v[:, keep].T @ delta
            proj_var = np.einsum("pi,pq,qi->i", v[:, keep], np.asarray(covs[i]), v[:, keep])
            z = (proj / np.sqrt(proj_var)).tolist()
            z_all.extend(z)
            if d2_best[i] < threshold:
                z_ok.extend(z)
        z_all, z_ok = np.asarray(z_all), np.asarray(z_ok)
        row["coverage"] = {"method": best_method}
        for name, z in (("all", z_all), ("successful", z_ok)):
            row["coverage"][name] = {
                "n_z": int(z.size),
                "within_1sigma": float(np.mean(np.abs(z) < 1)) if z.size else None,
                "within_2sigma": float(np.mean(np.abs(z) < 2)) if z.size else None,
            }
        # one gradient of the likelihood (single problem, single start), wall time
        first = jax.tree.map(lambda a: a[0], (problems, truths, data, sigma))
        grad = jax.jit(jax.grad(loss_of_coefficients))
        scale_j = jnp.asarray(scale)
        jax.block_until_ready(grad(truths.coefficients[0], *first[0:1], *first[2:], scale_j))
        start = time.perf_counter()
        for _ in range(5):
            jax.block_until_ready(
                grad(truths.coefficients[0], *first[0:1], *first[2:], scale_j))
        row["wall_s_per_gradient"] = (time.perf_counter() - start) / 5
        rows.append(row)
        (args.out / "inverse_horizon.json").write_text(json.dumps({"rows": rows}, indent=1))
        print(f"T={t_final:g}: identifiable {row['identifiable_directions_median']}, coverage "
              f"{row['coverage']}, grad {row['wall_s_per_gradient'] * 1e3:.1f} ms", flush=True)

    horizon = {}
    for method in methods:
        ok = [r["t_omega"] for r in rows if r["methods"][method]["success_fraction"] >= 0.5]
        horizon[method] = max(ok) if ok else None
    result = {"parameters": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
              "horizon": horizon, "rows": rows}
    (args.out / "inverse_horizon.json").write_text(json.dumps(result, indent=1))
    print("horizon", horizon)

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    t = [r["t_omega"] for r in rows]
    for method in methods:
        axes[0].plot(t, [r["methods"][method]["success_fraction"] for r in rows], "o-",
                     label=method)
        axes[1].plot(t, [1 - r["methods"][method]["median_corr_held_out_2T"] for r in rows],
                     "o-", label=method)
    eig = np.array([r["fisher_eigenvalues_median"] for r in rows])
    for i in range(eig.shape[1]):
        axes[2].semilogy(t, eig[:, i], "-", color="C0", alpha=0.5)
    axes[2].axhline(1 / scale[0] ** 2, color="k", ls=":", label="prior precision")
    axes[0].set_ylabel("fraction recovered (truth within the posterior)")
    axes[1].set_ylabel("1 − corr(prediction, held-out map at 2T)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("Fisher eigenvalues (median over problems)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("tΩ")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "inverse_horizon.png", dpi=110)


if __name__ == "__main__":
    main()
