"""Which summaries of a back-tracking ensemble constrain σ and r_L/Lc: Fisher forecasts from the
emulator's runs, and the held-out validation of the emulated spectrum shape.

Reads the run files of an emulator build (``crsky emulator ... --runs RUNS --out TABLE``; the
accepted step of each node is in the table's header) and computes, per node, at the last saved
time, with leave-one-realisation-out jackknife errors:

- ``shape_parallel``, ``shape_perpendicular``: ``Ĉ_l/Ĉ_1`` for ``l = 2 … 8`` with the gradient
  along / across B0 (rel.-diffusion paper eq. 3.1);
- ``dipole_ratio``: ln of ``Ĉ_1`` over the standard-diffusion dipole ``4π|K g|²`` (eq. 1.1),
  both orientations;
- ``relative_diffusion``: ln ``K̃/K`` (eq. 2.4), parallel and perpendicular components;
- ``kappa_ratio``: ln ``κ∥/κ⊥``.

(The positive scalars vary over decades across the grid: they are fitted in ln.)

Each feature is fitted over (ln σ, ln r_L/Lc) by the emulator's weighted least-squares
polynomial (:mod:`crsky.inference.emulator`, total degree ``--degree``); its derivatives give the
Fisher matrix ``F = Jᵀ C⁻¹ J`` for ``(ln σ, ln r_L/Lc)`` of a data set of ``R`` realisations
(``C`` diagonal: the nodes' jackknife variances, interpolated, times ``R_node/R``; correlations
between features are neglected). Printed: the forecast 1-σ errors of ``ln σ`` and
``ln(r_L/Lc)`` per feature group and for all together, at the fiducial points; per group, the
held-out pulls (:func:`crsky.inference.emulator.leave_one_out`) and the median ratio of the
emulator's error to the simulation error of one node. ::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emulator_fisher.py --runs RUNS \\
        --table data/emulator.csv [--degree 2] [--realisations 8 100] [--out fisher.json]
"""

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from crsky.inference.emulator import Emulator, evaluate, leave_one_out  # noqa: E402
from crsky.io import runfile, tables  # noqa: E402
from crsky.pipelines.tabulate import jackknife, node_path  # noqa: E402

ELL = np.arange(2, 9)
FIDUCIAL = [(0.5, 0.05), (1.0, 0.1), (2.0, 0.2)]


def features(run) -> dict[str, np.ndarray]:
    """The summaries of one ensemble (values only; errors by :func:`jackknife`)."""
    out = {}
    K = run.diffusion()
    for orientation in ("parallel", "perpendicular"):
        stats = run.statistics(orientation)
        cl_hat = np.asarray(stats.cl_hat[-1])
        out[f"shape_{orientation}"] = cl_hat[ELL] / cl_hat[1]
        out.setdefault("dipole_ratio", []).append(cl_hat[1] / float(stats.dipole_diffusion[-1]))
    k_rel, k = np.asarray(stats.K_relative[-1]), np.asarray(K.K[-1])
    out["relative_diffusion"] = np.log([k_rel[2, 2] / k[2, 2],
                                        (k_rel[0, 0] + k_rel[1, 1]) / (k[0, 0] + k[1, 1])])
    out["kappa_ratio"] = np.log([float(K.kappa_parallel[-1] / K.kappa_perp[-1])])
    out["dipole_ratio"] = np.log(out["dipole_ratio"])
    return out


def feature_grid(runs: Path, table) -> tuple[dict, dict]:
    """Feature values and jackknife errors on the table's grid, (n_s, n_r, n_feature) each."""
    steps = json.loads(table.meta["steps"])
    shape = (table.sigma.size, table.rl_over_lc.size)
    values, errors = {}, {}
    for a, s in enumerate(table.sigma):
        for b, r in enumerate(table.rl_over_lc):
            run = runfile.load(node_path(runs, s, r, steps[f"{s:.6g},{r:.6g}"]["dt"]))
            sizes = {name: v.size for name, v in features(run).items()}
            flat, err = jackknife(run, lambda e: np.concatenate(list(features(e).values())))
            start = 0
            for name, size in sizes.items():
                part = slice(start, start + size)
                start += size
                values.setdefault(name, np.zeros(shape + (size,)))[a, b] = flat[part]
                errors.setdefault(name, np.zeros(shape + (size,)))[a, b] = err[part]
    return values, errors


def emulate(table, value, error, degree) -> Emulator:
    """An emulator of one feature group (its components as the columns)."""
    return Emulator(sigma=table.sigma, rl_over_lc=table.rl_over_lc,
                    ell=np.arange(1, value.shape[-1] + 1), ratio=value, error=error,
                    degree=degree)


def forecast(emulators: list[Emulator], sigma, rl, realisations, node_realisations):
    """1-σ errors of (ln σ, ln r_L/Lc) from the Fisher matrix of the given feature groups:
    ``marginal`` (the other parameter free; ``None`` when the groups cannot separate the two)
    and ``conditional`` (the other parameter known)."""
    fisher = np.zeros((2, 2))
    for emu in emulators:
        def mean(log_params, emu=emu):
            return evaluate(emu, jnp.exp(log_params[0]), jnp.exp(log_params[1]))[0]

        jac = np.asarray(jax.jacfwd(mean)(jnp.log(jnp.array([sigma, rl]))))
        node_error = np.asarray(evaluate(Emulator(emu.sigma, emu.rl_over_lc, emu.ell, emu.ratio,
                                                  emu.error), sigma, rl)[1])
        variance = node_error**2 * node_realisations / realisations
        fisher += jac.T @ (jac / variance[:, None])
    conditional = (1 / np.sqrt(np.diag(fisher))).tolist()
    if np.linalg.cond(fisher) > 1e10:  # one scalar feature cannot separate two parameters
        return {"marginal": None, "conditional": conditional}
    return {"marginal": np.sqrt(np.diag(np.linalg.inv(fisher))).tolist(),
            "conditional": conditional}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--table", required=True, help="the emulator table of the build")
    parser.add_argument("--degree", type=int, default=2)
    parser.add_argument("--realisations", type=int, nargs="+", default=[8, 100])
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    table = tables.load_emulator(args.table)
    node_realisations = json.loads(table.meta["config"])["realisations"]
    values, errors = feature_grid(args.runs, table)
    groups = {name: emulate(table, values[name], errors[name], args.degree) for name in values}
    report = {"degree": args.degree, "node_realisations": node_realisations, "forecast": {},
              "held_out": {}}
    for name, emu in groups.items():
        pull = leave_one_out(emu)
        fitted_error = np.array([[np.asarray(evaluate(emu, s, r)[1]) for r in emu.rl_over_lc]
                                 for s in emu.sigma])
        # the emulator's own error against the simulation error of one node's ensemble
        report["held_out"][name] = {"pull_mean": float(pull.mean()),
                                    "pull_std": float(pull.std()),
                                    "pull_max_abs": float(np.abs(pull).max()),
                                    "emulator_over_node_error": float(
                                        np.median(fitted_error / emu.error))}
    choices = {**{name: [emu] for name, emu in groups.items()},
               "shapes (both orientations)": [groups["shape_parallel"],
                                              groups["shape_perpendicular"]],
               "all": list(groups.values())}
    for sigma, rl in FIDUCIAL:
        for realisations in args.realisations:
            key = f"sigma={sigma:g}, rl={rl:g}, R={realisations}"
            report["forecast"][key] = {
                name: forecast(emus, sigma, rl, realisations, node_realisations)
                for name, emus in choices.items()
            }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
