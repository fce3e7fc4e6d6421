"""What of the field can a sky map constrain? Fisher spectra against tΩ, unknowns and events.

Mock problems as in benchmarks/inverse_horizon.py (crsky.physics.inverse): N waves with random
directions and |k| log-spaced in the band k r_L ∈ [k_min r_L, k_max r_L] (default 0.5 to 2),
Fourier coefficients drawn from the prior (rms δB = sigma B0, 4N real unknowns), a known CR
gradient g = (1, 0, 1)/√2 per Lc, K = diag(0.025, 0.025, 0.54) Lc c, HEALPix nside maps,
Boris dt. For each number of waves and each problem (seeds 0..problems-1) the Fisher matrix at
the truth, F = Jᵀ J / σ_pix², is computed for

- one map at tΩ = T (the main result), and
- the ladder of maps at all times ≤ T (as the horizon benchmark fits),

for every T of ``--times`` and every event count of ``--events``. σ_pix² = Npix/events
(inverse.pixel_sigma), so F ∝ events and one Jacobian per problem serves every event count and,
with all times saved along one back-tracking, every T. The Jacobian is inverse.jacobian (pixel
by pixel: each pixel's intensity depends on its own trajectory only, so reverse mode runs over
one trajectory per pixel, and the monopole is removed as in inverse.predict).

Identifiable directions: inverse.identifiable_directions with the isotropic prior precision
1/s² (s = sigma/√(2N), inverse.prior_scale_for) and threshold 1, i.e. Fisher eigenvalues above
the prior precision. A single map has Npix − 1 independent values (its monopole is removed), so
at most Npix − 1 directions can be identified from it (47 at nside 2, 191 at nside 4).

Also recorded per wave, at ``--reference-events``: its marginal information ratio (prior over
posterior variance minus 1, averaged over its four coefficients; > 1 means the map determines the
wave better than the prior, degeneracies with the other waves included), against k r_L, to see
which scales a map constrains.

With ``--experiment NAME`` (IceCube, HAWC, … of data/experiments.toml) the maps are in
equatorial pixels (B0 at the default direction of crsky.physics.observatory) and seen as that
experiment sees them: its declination band, each ring's mean removed (inverse.make_problem's
field_of_view); the events fall in the band, σ_pix² = n_obs/events, and a map has n_obs − (rings
in view) independent values.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inverse_fisher.py --out DIR [--experiment NAME]
Writes DIR/inverse_fisher.json and DIR/inverse_fisher.png.
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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crsky.io.tables import load_experiments  # noqa: E402
from crsky.physics import inverse as inv  # noqa: E402
from crsky.physics import observatory as ob  # noqa: E402
from crsky.resources import resolve  # noqa: E402

GRADIENT = np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
K = np.diag([0.025, 0.025, 0.54])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--problems", type=int, default=6)
    parser.add_argument("--waves", type=int, nargs="+", default=(1, 2, 4, 8, 16))
    parser.add_argument("--times", type=float, nargs="+", default=(1, 2, 4, 8, 16, 32))
    parser.add_argument("--events", type=float, nargs="+", default=(1e4, 1e6, 1e8))
    parser.add_argument("--sigma", type=float, default=0.5, help="rms dB/B0 of the prior")
    parser.add_argument("--nside", type=int, default=4)
    parser.add_argument("--r-larmor", type=float, default=0.1)
    parser.add_argument("--band", type=float, nargs=2, default=(0.5, 2.0),
                        help="k r_L of the shortest and longest wave number")
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--replot", action="store_true",
                        help="only redraw DIR/inverse_fisher.png from DIR/inverse_fisher.json")
    parser.add_argument("--experiment", default=None,
                        help="see the maps as this experiment does (default: whole sky)")
    parser.add_argument("--reference-events", type=float, default=1e6,
                        help="event count of the per-wave information")
    return parser.parse_args()


def mock(args, n_waves, seed, times):
    """(problem, truth) of mock problem ``seed`` (the same seeds as the horizon benchmark)."""
    key_basis, key_field, _ = jax.random.split(jax.random.PRNGKey(seed), 3)
    basis = inv.make_basis(key_basis, n_waves, args.band[0] / args.r_larmor,
                           args.band[1] / args.r_larmor)
    seen = {}
    if args.experiment:
        experiment = load_experiments(resolve("data", "experiments.toml"))[args.experiment]
        seen = {"frame": ob.simulation_frame(),
                "field_of_view": experiment.field_of_view(args.nside)}
    problem = inv.make_problem(basis, args.nside, times, args.r_larmor, K, args.dt, **seen)
    scale = inv.prior_scale_for(n_waves, args.sigma)
    coefficients = jnp.asarray(scale)[:, None] * jax.random.normal(key_field, (n_waves, 4))
    return problem, inv.FieldParams(coefficients, jnp.asarray(GRADIENT))


def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    times = [float(t) for t in args.times]
    if args.replot:
        result = json.loads((args.out / "inverse_fisher.json").read_text())
        args = argparse.Namespace(**{**result["parameters"], "out": args.out})
        plot(result, args, [float(t) for t in args.times], args.out / "inverse_fisher.png")
        return
    example = mock(args, 1, 0, times)[0]
    npix = inv.observed_pixels(example)  # values per map (the field of view's pixels)
    observation = (np.eye(npix) - 1 / npix if example.observation is None
                   else np.asarray(example.observation))
    jacobian = jax.jit(inv.jacobian)
    result = {"parameters": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
              "npix": npix, "rank_cap_single_map": int(np.linalg.matrix_rank(observation)),
              "settings": []}
    start_all = time.perf_counter()
    for n_waves in args.waves:
        scale = inv.prior_scale_for(n_waves, args.sigma)
        precision = 1 / scale[0] ** 2
        setting = {"waves": n_waves, "unknowns": 4 * n_waves, "prior_precision": precision,
                   "single": {}, "ladder": {}, "problems": []}
        start = time.perf_counter()
        for seed in range(args.problems):
            problem, truth = mock(args, n_waves, seed, times)
            # J of the observed maps, (n_times, n_obs, P)
            J = np.asarray(jacobian(problem, truth)).reshape(len(times), npix, -1)
            k_rl = (np.linalg.norm(np.asarray(problem.basis.k), axis=-1) * args.r_larmor)
            record = {"seed": seed, "k_r_larmor": k_rl.tolist(), "single": {}, "ladder": {}}
            for j, t in enumerate(times):
                # Fisher per unit events/Npix: F(events) = (events/Npix) F1
                for kind, rows in (("single", J[j:j + 1]), ("ladder", J[:j + 1])):
                    F1 = np.einsum("tpi,tpj->ij", rows, rows)
                    ident = inv.identifiable_directions(F1, precision)
                    ratio1 = np.asarray(ident.ratio)  # information ratio at events = Npix
                    # marginal information of each wave at the reference event count: prior
                    # over posterior variance minus 1, averaged over its four coefficients
                    # (posterior covariance (F + Λ)⁻¹ in prior-whitened units; degeneracies
                    # between waves lower it below the diagonal of F)
                    post = np.linalg.inv(F1 * args.reference_events / npix / precision
                                         + np.eye(F1.shape[0]))
                    per_wave = (1 / np.diag(post) - 1).reshape(n_waves, 4).mean(-1)
                    record[kind][str(t)] = {
                        "ratio_per_event_per_pixel": ratio1.tolist(),
                        "per_wave_marginal_ratio_at_reference_events": per_wave.tolist(),
                        "identifiable": {
                            f"{e:g}": int(np.sum(ratio1 * e / npix > 1)) for e in args.events},
                    }
            setting["problems"].append(record)
        setting["wall_s"] = time.perf_counter() - start
        for kind in ("single", "ladder"):
            for t in times:
                counts = {f"{e:g}": [r[kind][str(t)]["identifiable"][f"{e:g}"]
                                     for r in setting["problems"]] for e in args.events}
                setting[kind][str(t)] = {
                    "identifiable_median": {e: float(np.median(c)) for e, c in counts.items()},
                    "identifiable_min_max": {e: [min(c), max(c)] for e, c in counts.items()},
                }
        result["settings"].append(setting)
        summary = " ".join(
            f"T={t:g}:" + "/".join(f"{setting['single'][str(t)]['identifiable_median'][f'{e:g}']:g}"
                                   for e in args.events) for t in times)
        print(f"waves={n_waves} ({4 * n_waves} unknowns), {setting['wall_s']:.0f} s; "
              f"identifiable (single map, events {args.events}): {summary}", flush=True)
        (args.out / "inverse_fisher.json").write_text(json.dumps(result, indent=1))
    result["wall_s"] = time.perf_counter() - start_all
    (args.out / "inverse_fisher.json").write_text(json.dumps(result, indent=1))
    plot(result, args, times, args.out / "inverse_fisher.png")


def plot(result, args, times, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = dict(zip([f"{e:g}" for e in args.events], ["-", "--", ":", "-."], strict=False))
    ax = axes[0]
    for i, setting in enumerate(result["settings"]):
        for e, ls in styles.items():
            y = [setting["single"][str(t)]["identifiable_median"][e] for t in times]
            ax.plot(times, y, ls, marker="o", ms=3, color=f"C{i}")
        ax.axhline(setting["unknowns"], color=f"C{i}", lw=0.6, alpha=0.4)
    cap = result["rank_cap_single_map"]
    handles = [plt.Line2D([], [], color=f"C{i}", marker="o", ms=3,
                          label=f"{s['unknowns']} unknowns ({s['waves']} wave"
                                f"{'s' if s['waves'] > 1 else ''})")
               for i, s in enumerate(result["settings"])]
    handles += [plt.Line2D([], [], color="grey", ls=ls, label=f"{float(e):.0e} events")
                for e, ls in styles.items()]
    if cap <= max(s["unknowns"] for s in result["settings"]):  # the pixels cap the rank
        ax.axhline(cap, color="k", ls=":", lw=0.8)
        handles.append(plt.Line2D([], [], color="k", ls=":", lw=0.8,
                                  label=f"rank cap: {cap} independent values per map"))
    # colour: number of unknowns; line style: events
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="upper left")
    ax.set_ylim(2**1.7, 2 ** (np.log2(max(s["unknowns"] for s in result["settings"])) + 2.3))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("back-tracking time tΩ (time in units of 1/Ω)")
    ax.set_ylabel("identifiable directions (Fisher information > prior)")
    seen = getattr(args, "experiment", None) or "whole sky"
    ax.set_title(f"one map, nside {args.nside}, {seen} ({cap} values); "
                 f"median of {args.problems} fields")
    # panel b: marginal information per wave against k r_L for the last setting, single map
    ax = axes[1]
    setting = result["settings"][-1]
    for j, t in enumerate(times):
        k = np.concatenate([r["k_r_larmor"] for r in setting["problems"]])
        info = np.concatenate([r["single"][str(t)]["per_wave_marginal_ratio_at_reference_events"]
                               for r in setting["problems"]])
        ax.loglog(k, info, "o", ms=3, color=plt.cm.viridis(j / max(len(times) - 1, 1)),
                  label=f"tΩ = {t:g}")
    ax.axhline(1, color="k", ls=":", lw=0.8, label="= prior information")
    ax.set_xlabel("k r_L of the wave (k in 1/Lc, r_L in Lc)")
    ax.set_ylabel(f"prior / posterior variance − 1, {args.reference_events:.0e} events")
    ax.set_title(f"{setting['unknowns']} unknowns: information per wave, one map")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)


if __name__ == "__main__":
    main()
