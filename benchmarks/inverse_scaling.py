"""How does the recovery error of one field realisation scale with the unknowns and the events?

Mock problems of benchmarks/inverse_horizon.py (its ``mock``; crsky.physics.inverse): N waves
with random directions and |k| log-spaced in k r_L ∈ [0.5, 2], Fourier coefficients drawn from
the prior (rms δB = sigma B0 shared by the N waves, 4N real unknowns), a known CR gradient
g = (1, 0, 1)/√2 per Lc, K = diag(0.025, 0.025, 0.54) Lc c, r_L = 0.1 Lc, Boris dt = 0.1/Ω,
one HEALPix map at the single time ``--t-omega`` (short, so that the likelihood is smooth and
the fit finds the basin of the truth) with the shot noise of ``events`` CRs
(σ_pix = (Npix/events)^{1/2}, inverse.pixel_sigma). For every N of ``--modes`` and every event
count of ``--events``, problems with seeds 0..problems-1 are fitted (MAP, BFGS, one stage, from
``--starts`` prior draws, seeds 10000 + problem as in the horizon benchmark). The seed fixes the
wave directions, the true coefficients and the unit noise draw, so the event counts differ only
in the noise amplitude (common random numbers).

Recorded per setting:

- the relative coefficient error |Δθ|/|θ| (median and 16/84 % quantiles over the problems);
- the Laplace prediction of that error, (tr C)^{1/2}/|θ| with C = (F + prior precision)⁻¹ at the
  fit (inverse.laplace_covariance): what the error should be if the fit sits at the optimum of a
  locally linear-Gaussian problem;
- success: the truth inside the fit's Laplace ellipsoid, d² = Δθᵀ C⁻¹ Δθ below the 99.9 %
  quantile of χ² with 4N degrees of freedom (the horizon benchmark's criterion);
- an optimiser check: the −ln posterior of the best start minus that of the truth (positive:
  the fit stopped at a worse point than the truth, a local minimum or the step limit), and how
  many best starts used the whole step budget ``--max-steps``;
- wall time per fit (all starts, one compiled fit looped over the problems) and the XLA
  compilation time, once per N (the event count changes only the data, not the program).

Usage (the run reported in benchmarks/RESULTS.md):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inverse_scaling.py --out DIR \\
        --problems 20 --modes 1 2 4 8 --events 1e4 1e5 1e6 1e7 --nside 4 --t-omega 2 \\
        --max-steps 1000

Writes DIR/inverse_scaling.json (after every setting, so a partial run keeps what it measured)
and DIR/inverse_scaling.png (error against unknowns and against events); ``--replot JSON``
redraws the figure from a finished run.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from inverse_horizon import mahalanobis_d2, mock, per_problem, stack  # noqa: E402
from machine import describe  # noqa: E402

from crsky.physics import inverse as inv  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--modes", type=int, nargs="+", default=(1, 2, 4),
                        help="numbers of waves N (4N unknowns)")
    parser.add_argument("--events", type=float, nargs="+", default=(1e4, 1e5, 1e6))
    parser.add_argument("--sigma", type=float, default=0.5, help="rms dB/B0 of the prior")
    parser.add_argument("--nside", type=int, default=2)
    parser.add_argument("--t-omega", type=float, default=2.0, help="time of the single map")
    parser.add_argument("--r-larmor", type=float, default=0.1)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--quantile", type=float, default=0.999,
                        help="chi^2 quantile of the success criterion")
    parser.add_argument("--max-steps", type=int, default=1000, help="BFGS step limit")
    parser.add_argument("--replot", type=Path, default=None,
                        help="only redraw the figure from this inverse_scaling.json")
    return parser.parse_args()


def quantiles(values):
    q16, q50, q84 = np.percentile(np.asarray(values), [16, 50, 84])
    return {"median": float(q50), "q16": float(q16), "q84": float(q84)}


def plot(result, path):
    """Two panels: the relative coefficient error against the unknowns (one curve per event
    count) and against the events (one curve per number of unknowns), with the Laplace
    prediction dotted."""
    from matplotlib.ticker import NullFormatter

    rows, p = result["rows"], result["parameters"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))

    def curve(ax, x_key, group_key, groups, label):
        for j, g in enumerate(groups):
            sel = [r for r in rows if r[group_key] == g]
            if not sel:
                continue
            x = [r[x_key] for r in sel]
            q = [r["coefficient_error_quantiles"] for r in sel]
            med = np.array([v["median"] for v in q])
            yerr = [med - [v["q16"] for v in q], np.array([v["q84"] for v in q]) - med]
            ax.errorbar(x, med, yerr=yerr, fmt="o-", color=f"C{j}", capsize=3, label=label(g))
            ax.plot(x, [r["laplace_error_quantiles"]["median"] for r in sel], ":",
                    color=f"C{j}")
        ax.plot([], [], "k:", label="Laplace prediction (tr C)^½/|θ|")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("|Δθ|/|θ| (median and 16–84 % of the fields)")
        ax.legend(fontsize=8)

    curve(left, "unknowns", "events", p["events"], lambda e: f"{e:.0e} events")
    left.set_xlabel("unknowns 4N")
    left.set_xticks([4 * m for m in p["modes"]], [str(4 * m) for m in p["modes"]])
    curve(right, "events", "modes", p["modes"], lambda m: f"{4 * m} unknowns")
    right.set_xlabel("events in the map")
    fig.suptitle(f"one map at tΩ = {p['t_omega']:g}, nside {p['nside']}, "
                 f"{p['problems']} mock fields per point")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.out / "inverse_scaling.png")
        return
    times = [args.t_omega]
    rows = []
    result = {"parameters": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
              "machine": describe(), "load_average_start": os.getloadavg(), "rows": rows}
    for n_modes in args.modes:
        scale = inv.prior_scale_for(n_modes, args.sigma)
        threshold = stats.chi2.ppf(args.quantile, 4 * n_modes)
        fitted = jax.jit(lambda p, d, s, st, scale=scale: inv.fit(
            p, d, s, st, prior_scale=scale, max_steps=args.max_steps))
        laplace = jax.jit(lambda p, b, s, scale=scale: inv.laplace_covariance(p, b, s, scale))
        loss_at = jax.jit(lambda p, t, d, s, scale=scale: inv.negative_log_posterior(
            p, t, d, s, scale))
        compiled = None
        for events in args.events:
            # the horizon benchmark's mock problems, with this N and event count
            setting = SimpleNamespace(modes=n_modes, sigma=args.sigma, nside=args.nside,
                                      r_larmor=args.r_larmor, dt=args.dt, events=events)
            mocks = [mock(setting, s, times) for s in range(args.problems)]
            problems = stack([m[0] for m in mocks])
            truths = stack([m[1] for m in mocks])
            data, sigma = jnp.stack([m[2] for m in mocks]), jnp.stack([m[3] for m in mocks])
            starts = stack([
                inv.random_starts(jax.random.PRNGKey(10_000 + s), args.starts, n_modes, scale,
                                  mocks[s][1].gradient) for s in range(args.problems)
            ])
            batched = (problems, data, sigma, starts)
            compile_s = None
            if compiled is None:  # one program per N: the events only change the data
                start = time.perf_counter()
                compiled = fitted.lower(*jax.tree.map(lambda a: a[0], batched)).compile()
                compile_s = time.perf_counter() - start
            start = time.perf_counter()
            fits = stack([
                jax.block_until_ready(compiled(*jax.tree.map(lambda a, i=i: a[i], batched)))
                for i in range(args.problems)
            ])
            wall = time.perf_counter() - start
            best = jax.vmap(lambda r: r.best_params())(fits)
            norm = np.asarray(jnp.linalg.norm(truths.coefficients, axis=(1, 2)))
            err = np.asarray(jnp.linalg.norm(best.coefficients - truths.coefficients,
                                             axis=(1, 2))) / norm
            covs = per_problem(laplace, (problems, best, sigma), args.problems)
            # Laplace prediction of |Δθ|: E|Δθ|² = tr C for Δθ ~ N(0, C)
            predicted = np.sqrt(np.trace(np.asarray(covs), axis1=1, axis2=2)) / norm
            d2 = mahalanobis_d2(best, truths, covs)
            # optimiser check: −ln posterior of the best start minus that of the truth (> 0: the
            # fit stopped at a worse point than the truth, a local minimum or the step limit)
            loss_truth = per_problem(loss_at, (problems, truths, data, sigma), args.problems)
            loss_gap = np.asarray(fits.loss[np.arange(args.problems), fits.best] - loss_truth)
            best_steps = np.asarray(fits.steps[np.arange(args.problems), fits.best])
            ok = d2 < threshold
            row = {
                "modes": n_modes,
                "unknowns": 4 * n_modes,
                "events": events,
                "pixel_sigma": inv.pixel_sigma(events, 12 * args.nside**2),
                "coefficient_error": err.tolist(),
                "coefficient_error_quantiles": quantiles(err),
                "laplace_error_quantiles": quantiles(predicted),
                "mahalanobis_d2": d2.tolist(),
                "successes": int(np.sum(ok)),
                "problems": args.problems,
                "wall_s_per_fit": wall / args.problems,
                "compile_s": compile_s,
                "median_optimiser_steps": float(np.median(np.asarray(fits.steps))),
                "best_start_at_step_limit": int(np.sum(best_steps >= args.max_steps)),
                "loss_gap_to_truth": loss_gap.tolist(),
                "fits_worse_than_truth": int(np.sum(loss_gap > 0)),
                "load_average": os.getloadavg(),
            }
            rows.append(row)
            (args.out / "inverse_scaling.json").write_text(json.dumps(result, indent=1))
            print(f"N={n_modes} ({4 * n_modes} unknowns) events={events:.0e}: success "
                  f"{int(np.sum(ok))}/{args.problems}, median err {np.median(err):.3g} "
                  f"(Laplace {np.median(predicted):.3g}), worse than truth "
                  f"{int(np.sum(loss_gap > 0))}, at step limit "
                  f"{int(np.sum(best_steps >= args.max_steps))}, "
                  f"{wall / args.problems:.2f} s/fit, "
                  f"compile {compile_s or 0:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)

    plot(result, args.out / "inverse_scaling.png")
    result["load_average_end"] = os.getloadavg()
    (args.out / "inverse_scaling.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
