"""``crsky demo``: the main job on embedded defaults, CPU, a few minutes.

A reduced back-tracking ensemble → C_ℓ versus back-tracking time → BGK fit of p → the beam
eigen solution → a posterior of l from the MILAGRO numbers, written as a report folder.
"""

import argparse
import json
import time
from pathlib import Path

# Embedded defaults: the built-in reduced configuration and the MILAGRO run file.
SIMULATION = "reduced"
QUICK = dict(nside=4, realisations=4, modes=32, t_omega_max=50.0, n_times=5)
BEAM_RUN = "milagro_beam"
# The beam paper's anchor: Δϑ = 10° → ε = Δϑ²/j1² ≈ 2.1e-3, δ = V_A/c = 1e-4
# (docs/physics.md (B10), (B14)).
BEAM = dict(width_deg=10.0, delta=1e-4)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the main job on embedded defaults and write a report folder",
        description=(
            "Reduced back-tracking ensemble -> C_l versus back-tracking time -> BGK fit of p -> "
            "beam eigen solution -> posterior of l from the MILAGRO numbers. Writes report.md "
            "with PNG figures into a new folder (never overwrites an earlier report)."
        ),
    )
    p.add_argument("--out", default="demo-output",
                   help="report folder; if it exists, the next free <out>-N is used")
    p.add_argument("--quick", action="store_true",
                   help="a smaller configuration (seconds; for tests)")
    p.set_defaults(func=run, interrupted=lambda args: (
        f"the unfinished report is in {getattr(args, 'report', args.out)}; run crsky demo again "
        "(it writes a new folder)"))


def fresh_folder(out: str | Path) -> Path:
    """``out`` if it does not exist, else the first free ``out-2``, ``out-3``, …"""
    out = Path(out)
    candidate, n = out, 1
    while candidate.exists():
        n += 1
        candidate = out.with_name(f"{out.name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def markdown_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: ``|`` escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def format_value(result: dict) -> str:
    """A result of the demo summary as text: value, ``± error`` or the 68 % (and 95 %)
    interval, and the comparison values it carries."""
    text = f"{result['value']:.3g}"
    if "error" in result:
        text += f" ± {result['error']:.2g}"
    if "interval_68" in result:
        lo, hi = result["interval_68"]
        text += f" (68 %: {lo:.3g} to {hi:.3g})"
    if "interval_95" in result:
        lo, hi = result["interval_95"]
        text += f" (95 %: {lo:.3g} to {hi:.3g})"
    for key in ("flat", "asymptotic"):
        if key in result:
            text += f"; {key}: {result[key]:.3g}"
    return text


def _step(number: int, text: str) -> float:
    print(f"[{number}/5] {text} ...", flush=True)
    return time.perf_counter()


def fit_p(stats, ell_max: int) -> dict:
    """Laplace (MAP + Hessian) fit of the BGK exponent p to the simulated Ĉ_ℓ at the last time.

    Data: ``Ĉ_ℓ`` for 1 ≤ ℓ ≤ ``ell_max`` with the standard error over realisations
    (``error_model="table"``); model: rel.-diffusion paper eq. (4.7) via
    :func:`crsky.inference.models.spectrum_p_model`.
    """
    import numpy as np

    from crsky.inference import models
    from crsky.inference.data import ClTable
    from crsky.inference.fitting import fit_laplace

    ell = np.arange(1, ell_max + 1)
    cl = np.asarray(stats.cl_hat[-1])[ell]
    err = np.asarray(stats.cl_hat_err[-1])[ell]
    n = ell.size
    table = ClTable(ell=ell, cl=cl, error=err, experiment=np.array(["simulation"] * n),
                    f_sky=np.ones(n), noise=np.zeros(n), meta={"mock": "simulation"})
    data = models.spectrum_data(table, 1, ell_max)
    parameters = models.spectrum_p_parameters(data, "table")
    scale = float(cl[0])
    priors = models.resolve_priors(
        parameters, {"q1": {"dist": "loguniform", "low": scale * 1e-4, "high": scale * 1e4}}
    )
    fit = fit_laplace(models.spectrum_p_model, {"data": data, "priors": priors,
                                                "error_model": "table"})
    return fit.summary()


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from crsky.cli._common import check_output
    from crsky.cli.plot import draw_run
    from crsky.inference.sampling import SamplerConfig, run_nuts, summarize
    from crsky.io import runfile
    from crsky.io.posterior import write_posterior
    from crsky.io.text import to_builtin
    from crsky.physics import beam
    from crsky.physics.sky import ORIENTATIONS
    from crsky.pipelines.ensemble import SimulationConfig, run_ensemble
    from crsky.pipelines.inference import build, model_kwargs
    from crsky.plotting.beam import plot_beam_eigenfunction
    from crsky.plotting.posterior import log_uniform, save_figures

    check_output("--out", args.out, folder=True)
    out = fresh_folder(args.out)
    args.report = out  # for the interrupt message
    print(f"crsky demo: writing the report to {out}/")
    config = SimulationConfig.load(SIMULATION).replace(**(QUICK if args.quick else {}))
    results = {}

    t0 = _step(1, f"back-tracking {config.realisations} realisations x {12 * config.nside**2} "
                  f"CRs through {config.modes} modes to tOmega = {config.t_omega_max:g}")
    summary = run_ensemble(config, out / "run.h5")
    t_max = float(summary["t_omega"][-1])
    for name, symbol in (("parallel", "κ∥"), ("perp", "κ⊥")):
        results[f"kappa_{name}_at_t_max"] = {
            "label": f"{symbol}, running value at tΩ = {t_max:g}",
            "value": summary[f"kappa_{name}"], "error": summary[f"kappa_{name}_err"],
            "unit": "Lc c", "t_omega": t_max,
        }
    results["momentum_drift_max"] = {"label": "max |p̂| drift (|p̂| − 1 over all steps)",
                                      "value": summary["momentum_drift_max"], "unit": "1"}
    results["mode_evaluations_per_second"] = {
        "label": "back-tracking speed", "value": summary["mode_evaluations_per_second"],
        "unit": "mode evaluations/s"}
    print(f"      {time.perf_counter() - t0:.0f} s")

    t0 = _step(2, "angular power spectra versus back-tracking time (Figs. 2 and 3)")
    run = runfile.load(out / "run.h5")
    stats = {orientation: run.statistics(orientation) for orientation in ORIENTATIONS}
    figures = draw_run(run, out, stats=stats)
    print(f"      {time.perf_counter() - t0:.0f} s")

    t0 = _step(3, "BGK fit of the exponent p of nu_r to the simulated spectrum")
    ell_max = min(8, config.lmax_spectra)
    p_fit = fit_p(stats["parallel"], ell_max)["p"]
    results["bgk_p"] = {
        "label": f"BGK exponent p (∇n ∥ B0, 1 ≤ ℓ ≤ {ell_max}, Laplace fit)",
        "value": p_fit["median"], "interval_68": p_fit["q68"], "unit": "1",
        "ell_range": [1, ell_max], "t_omega": t_max, "orientation": "parallel",
    }
    print(f"      {time.perf_counter() - t0:.0f} s")

    t0 = _step(4, "beam eigen solution for a 10 deg beam")
    eps = float(beam.eps_from_width(BEAM["width_deg"]))
    obs = beam.observables(eps, BEAM["delta"])
    results["beam_eps"] = {"label": f"beam ε = r_g/l for a {BEAM['width_deg']:g}° beam",
                           "value": eps, "unit": "1", "width_deg": BEAM["width_deg"]}
    results["lambda1"] = {"label": "λ1 (matched D; flat D alongside)",
                          "value": float(obs["lambda1"]), "flat": float(obs["lambda1_flat"]),
                          "unit": "1"}
    results["fractional_excess"] = {
        "label": "fractional excess (eigenfunction; asymptotic alongside)",
        "value": float(obs["fractional_excess"]),
        "asymptotic": float(obs["fractional_excess_asymptotic"]), "unit": "1"}
    fig = plot_beam_eigenfunction(eps, BEAM["delta"])
    figures["beam_eigenfunction"] = out / "beam_eigenfunction.png"
    fig.savefig(figures["beam_eigenfunction"], dpi=110, bbox_inches="tight")
    print(f"      {time.perf_counter() - t0:.0f} s")

    t0 = _step(5, "posterior of the turbulence scale l from the MILAGRO beam (NUTS)")
    setup = build(BEAM_RUN)
    sampler = SamplerConfig(chains=2, warmup=150 if args.quick else 400,
                            samples=150 if args.quick else 500, seed=0)
    idata = run_nuts(setup["model"], setup["kwargs"] | {"forward": "asymptotic"}
                     if args.quick else model_kwargs(setup), sampler)
    posterior = summarize(idata)
    paths = write_posterior(idata, {"parameters": posterior}, out / "posterior_l")
    paths |= save_figures(idata, setup["sampled"], out / "posterior_l", units=setup["units"],
                          log_scale=log_uniform(setup["priors"]))
    figures["corner_l"] = paths["corner"]
    l_post = posterior["l_pc"]
    results["l_pc"] = {"label": "turbulence scale l (NUTS median; beam paper: ~1 pc)",
                       "value": l_post["median"], "interval_68": l_post["q68"],
                       "interval_95": l_post["q95"], "unit": "pc"}
    print(f"      {time.perf_counter() - t0:.0f} s")

    rows = [(r["label"], format_value(r), r["unit"]) for r in results.values()]
    width = max(len(k) for k, _, _ in rows)
    print("\n" + "\n".join(f"{k:<{width}}  {v} {u if u != '1' else ''}" for k, v, u in rows))
    report = ["# crsky demo report", "",
              f"Simulation: `{json.dumps(config.to_dict())}`", "",
              "| quantity | value | unit |", "| --- | --- | --- |"]
    report += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    report += [""] + [f"![{name}]({Path(p).relative_to(out).as_posix()})"
                      for name, p in figures.items()]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "summary.json").write_text(
        json.dumps(to_builtin(results), indent=2, allow_nan=True) + "\n")
    print(f"\nreport: {out / 'report.md'}")
    return 0 if np.isfinite(p_fit["median"]) else 1
