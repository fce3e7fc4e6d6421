"""The beam paper's remaining claims as numbers and figures (writes docs/figures/beam/).

1. l from each MILAGRO observable alone and jointly (``inference/milagro_beam*.toml``, NUTS with
   a modest sampler), on one axis with the knee-anchored l = r_g(3 PeV, B0) over the B0 prior;
   tension: pairwise posterior overlap and the difference of medians of ln l over the combined
   68 % half-widths, for l and for l·B0 (which removes the shared B0 prior).
2. Width and excess over energy at l = r_g(3 PeV, 3 μG) with their local indices.
3. Source distance along the flux tube against l for several δ = V_A/c and source anisotropies.
4. Beam sustainability F_B/F_C against the threshold over momentum, p_Bmax marked.
5. The first-mode attenuation over energy at a fixed distance (energy (in)dependence).

Run (a few minutes on 2 free cores)::

    OMP_NUM_THREADS=1 python benchmarks/beam_consistency.py [--chains 2 --warmup 300 --samples 500]

and copy the printed numbers into docs/beam_claims.md.
"""

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpyro

numpyro.set_host_device_count(2)

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from crsky.inference.sampling import SamplerConfig, run_nuts  # noqa: E402
from crsky.physics import beam  # noqa: E402
from crsky.pipelines.inference import build, model_kwargs  # noqa: E402
from crsky.plotting.beam import (  # noqa: E402
    plot_energy_dependence,
    plot_l_posteriors,
    plot_source_distance,
    plot_sustainability,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"width": "milagro_beam_width", "excess": "milagro_beam_excess",
        "cut-off": "milagro_beam_cutoff", "joint": "milagro_beam"}
B0_PRIOR = (1.0, 10.0)  # μG, the run files' prior


def tension(a, b):
    """(overlap, z) of two sets of log-draws: ∫ min(p_a, p_b) (histograms on a shared grid) and
    |median difference| / sqrt(h_a² + h_b²), h = half the 68 % interval."""
    grid = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 61)
    pa, _ = np.histogram(a, grid, density=True)
    pb, _ = np.histogram(b, grid, density=True)
    overlap = float(np.sum(np.minimum(pa, pb)) * (grid[1] - grid[0]))

    def half(x):
        lo, hi = np.percentile(x, [16, 84])
        return 0.5 * (hi - lo)

    z = abs(np.median(a) - np.median(b)) / np.hypot(half(a), half(b))
    return overlap, float(z)


def posteriors(args, out):
    numbers, l_draws, b0_draws = {}, {}, {}
    table = None
    for label, run in RUNS.items():
        setup = build(run)
        kwargs = model_kwargs(setup) if table is None else setup["kwargs"] | {"excess_table": table}
        table = kwargs.get("excess_table", table)
        config = SamplerConfig(chains=args.chains, warmup=args.warmup, samples=args.samples,
                               seed=0)
        start, cpu = time.perf_counter(), time.process_time()
        idata = run_nuts(setup["model"], kwargs, config)
        post = idata.posterior
        l_draws[label] = np.asarray(post["l_pc"]).ravel()
        b0_draws[label] = np.asarray(post["b0_ugauss"]).ravel()
        q = np.percentile(l_draws[label], [2.5, 16, 50, 84, 97.5])
        numbers[label] = {"l_pc_median": q[2], "l_pc_68": [q[1], q[3]], "l_pc_95": [q[0], q[4]],
                          "divergences": int(np.sum(idata.sample_stats["diverging"])),
                          "wall_s": time.perf_counter() - start,
                          "cpu_s": time.process_time() - cpu}
        print(label, json.dumps(numbers[label]), flush=True)
    numbers["excess_table_max_rel_error"] = table.max_rel_error
    pairs = {}
    for a, b in itertools.combinations(("width", "excess", "cut-off"), 2):
        ov, z = tension(np.log(l_draws[a]), np.log(l_draws[b]))
        ov_b, z_b = tension(np.log(l_draws[a] * b0_draws[a]), np.log(l_draws[b] * b0_draws[b]))
        pairs[f"{a}/{b}"] = {"overlap_l": ov, "z_l": z, "overlap_lB0": ov_b, "z_lB0": z_b}
    numbers["tension"] = pairs
    knee = [float(beam.knee_scale_pc(b)) for b in B0_PRIOR[::-1]]
    numbers["knee_l_pc_over_b0_prior"] = knee
    worst = max(pairs.items(), key=lambda kv: kv[1]["z_l"])
    text = (f"largest tension in ln l: {worst[0]} z = {worst[1]['z_l']:.2f}, "
            f"overlap {worst[1]['overlap_l']:.2f}")
    fig = plot_l_posteriors(l_draws, knee, text, b0_draws,
                            float(beam.knee_scale_pc(1.0)) * 1.0)
    fig.savefig(out / "l_posteriors.png", dpi=110, bbox_inches="tight")
    return numbers


def claims(out):
    numbers = {}
    # energy dependence at the knee-anchored l for B0 = 3 μG (ε = E / 3 PeV)
    l_knee = float(beam.knee_scale_pc(3.0))
    energies = np.geomspace(0.3, 50.0, 25)
    table = beam.energy_dependence(l_knee, 3.0, energies, 1e-4, 1e-3)
    plot_energy_dependence(table).savefig(out / "energy_dependence.png", dpi=110,
                                          bbox_inches="tight")
    idx = np.asarray(table["excess_index"])
    numbers["energy"] = {
        "l_pc": l_knee,
        "rows": {f"{e:.3g}": {"eps": float(ep), "width_deg": float(w), "excess": float(x),
                              "excess_index": float(i)}
                 for e, ep, w, x, i in zip(energies[::4], table["eps"][::4],
                                           table["width_deg"][::4],
                                           table["fractional_excess"][::4], idx[::4],
                                           strict=True)},
        "excess_index_below_0.9_from_tev": float(energies[np.argmax(idx < 0.9)]),
    }
    # source distance against l (ε at 1.5 TeV, B0 = 3 μG)
    l_grid = np.geomspace(0.1, 10.0, 9)
    curves, rows = {}, {}
    for delta, a_src in ((1e-4, 1.0), (1e-4, 1e-2), (3e-4, 1.0), (1e-3, 1.0)):
        dist = [float(beam.source_distance(
            l, beam.eps_from_scale(l, 1.5, 3.0), delta, a_src).distance_pc) for l in l_grid]
        curves[rf"$\delta$={delta:g}, $A_{{src}}$={a_src:g}"] = dist
        rows[f"delta={delta:g}, A_src={a_src:g}"] = dict(zip(
            (f"{l:.3g}" for l in l_grid), dist, strict=True))
    plot_source_distance(l_grid, curves).savefig(out / "source_distance.png", dpi=110,
                                                 bbox_inches="tight")
    seed = beam.source_distance(1.0, 2.1e-3, 1e-4, 1.0)
    numbers["distance"] = {
        "curves_pc": rows,
        "seed_parameters": {"distance_pc": float(seed.distance_pc),
                            "scattering_length_pc": float(seed.scattering_length_pc),
                            "lambda1": float(seed.lambda1),
                            "mode_separation": float(seed.mode_separation)},
        # what A_src gives 300 pc at the beam paper's l, δ, ε: ln(A_src/A_obs) = λ1 L/(c/ν)
        "a_src_for_300pc": float(1e-3 * np.exp(
            float(seed.lambda1) * 300.0 / float(seed.scattering_length_pc))),
    }
    # sustainability (l = 1 pc, B0 = 3 μG, δ = 1e-4, α = 1e-3, q_c = 4.6)
    p = np.geomspace(0.1, 300.0, 80)
    content = np.asarray(beam.beam_content_ratio(beam.eps_from_scale(1.0, p, 3.0), 1e-3))
    p_max = float(beam.p_bmax_tev(1.0, 3.0, 1e-4, 1e-3, 4.6))
    plot_sustainability(p, content, float(beam.threshold_ratio(1e-4, 4.6)), p_max).savefig(
        out / "sustainability.png", dpi=110, bbox_inches="tight")
    numbers["sustainability"] = {"p_bmax_tev": p_max,
                                 "threshold_ratio": float(beam.threshold_ratio(1e-4, 4.6))}
    # first-mode attenuation over energy, over the distance the beam paper's parameters give
    # for A_src = 1 (l = 1 pc)
    att = {f"{e:g}": float(beam.first_mode_attenuation(
        float(seed.distance_pc), 1.0, beam.eps_from_scale(1.0, e, 3.0), 1e-4))
        for e in (0.3, 1.0, 3.0, 10.0, 30.0)}
    numbers["attenuation_vs_energy_tev"] = att
    return numbers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures" / "beam"))
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    numbers = claims(out)
    print(json.dumps(numbers, indent=1), flush=True)
    if not args.skip_inference:
        numbers["posteriors"] = posteriors(args, out)
    (out / "numbers.json").write_text(json.dumps(numbers, indent=1, default=float))
    print(json.dumps(numbers.get("posteriors", {}), indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
