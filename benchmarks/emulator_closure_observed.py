"""Closure of the (σ, r_L/Lc) emulator through an experiment's pseudo-C_ℓ, with and without the
forward-simulated transfer.

The ensembles of ``emulator_closure.py`` (back-tracking runs at parameter points that are not
emulator nodes, resumed from ``--runs``) are observed as IceCube and as HAWC: per realisation
``δI = c · b`` for a unit gradient along B0 (rel.-diffusion paper eq. 2.1), rotated onto the
sky with B0 at RA 229.2°, Dec 11.4° (``crsky.pipelines.tabulate.sky_maps``), observed without
Poisson counts (``observatory.observe_map``) and its pseudo-C_ℓ taken, ``ℓ = 1 .. --ell-max``.
The realisations' shot noise ``N`` (eq. 3.1, white) enters as the table's noise level
``Ñ = N f_sky``. Data set ``i`` is the mean over realisations ``i·per_set … (i+1)·per_set − 1``
with its standard error, fitted by ``spectrum_sigma_model`` with the experiment's operator
(``lmax_sky = 2 ℓmax + 16 = 32`` for ℓmax 8, the emulator's reach), error model ``table``, NUTS
(2 chains) as in ``emulator_closure.py``, two ways:

- ``isotropic``: the isotropic mixing matrix alone;
- ``transfer``: with the forward-simulated transfer ``T_ℓ = ⟨C̃_ℓ⟩ / ⟨(M C)_ℓ⟩`` measured on
  the *other* data sets of the same ensemble (leave-one-set-out, so the data do not set their
  own transfer), ``M`` the model's operator (``L ≤ 32``).

Reported per point, experiment, way and parameter: 68 % / 95 % coverage of the truth and the
mean ln(median / truth). ::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emulator_closure_observed.py \\
        --runs closure-runs --table data/emulator.csv --points 0.7,0.04 1.3,0.07 2.2,0.13 \\
        [--sets 20] [--per-set 8] [--ell-max 8] [--out closure_observed.json]
"""

import dataclasses
import json
import time
from pathlib import Path

import jax
from emulator_closure import (  # 2 host devices, before JAX's backend starts
    PARAMETERS,
    closure_parser,
    ensemble,
)

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

from crsky.inference import data as cdata  # noqa: E402
from crsky.inference import models  # noqa: E402
from crsky.io import tables  # noqa: E402
from crsky.physics import observatory  # noqa: E402
from crsky.pipelines.tabulate import sky_spectra  # noqa: E402
from crsky.resources import resolve  # noqa: E402

STRENGTH = 1e-4
"""|∇n|/n of the observed maps (1/Lc): small, so that the observation is linear in δI."""


def observed_spectra(run, experiment, lmax: int, lmax_sky: int):
    """Per realisation: the pseudo-C_ℓ (``ℓ ≤ lmax``) and the whole-sky C_L (``L ≤ lmax_sky``)
    of ``δI`` observed by ``experiment``, for a gradient along B0, scaled to a unit gradient
    (spectra ∝ |∇n|², the emulator's normalisation)."""
    pseudo, full = sky_spectra(run, experiment, lmax, lmax_sky, strength=STRENGTH)
    return pseudo / STRENGTH**2, full / STRENGTH**2


def main() -> None:
    parser = closure_parser(__doc__.splitlines()[0], ell_max=8)
    parser.add_argument("--experiments", nargs="+", default=["IceCube", "HAWC"],
                        choices=["IceCube", "HAWC"])
    args = parser.parse_args()
    emu = tables.load_emulator(args.table, degree=args.degree)
    experiments = tables.load_experiments(resolve("data", "experiments.toml"))
    lmax, lmax_sky = args.ell_max, 2 * args.ell_max + 16
    report = {"sets": args.sets, "per_set": args.per_set, "ell_max": lmax, "points": {}}
    for k, point in enumerate(args.points):
        sigma, rl = (float(x) for x in point.split(","))
        run = ensemble(emu, sigma, rl, args.seed + k, args.sets * args.per_set, args.runs)
        nside = run.config.nside
        # shot noise N of a unit gradient along B0 at the last time (eq. 3.1), white
        shot = float(run.statistics("parallel").noise[-1])
        for name in args.experiments:
            start = time.perf_counter()
            exp = experiments[name]
            forward = cdata.pseudo_cl_forward(exp, nside, lmax, lmax_sky)
            mixing = np.asarray(observatory.mixing_matrix(forward.kernels))
            pseudo, full = observed_spectra(run, exp, lmax, lmax_sky)
            ell = np.arange(1, lmax + 1)
            level = shot * forward.f_sky  # the table's flat pseudo noise level
            sets = []
            for i in range(args.sets):
                part = slice(i * args.per_set, (i + 1) * args.per_set)
                rest = np.ones(len(pseudo), bool)
                rest[part] = False
                check = observatory.mixing_check(pseudo[rest], full[rest], mixing)
                transfer = 1.0 + check["relative"][ell]
                n = args.per_set
                sets.append((pseudo[part].mean(0)[ell] - level,
                             pseudo[part].std(0, ddof=1)[ell] / np.sqrt(n), transfer))
            table = cdata.ClTable(
                ell=ell, cl=sets[0][0], error=sets[0][1], experiment=np.full(lmax, name),
                f_sky=np.full(lmax, forward.f_sky), noise=np.full(lmax, level),
                meta={"spectrum": "pseudo", "nside": str(nside), "lmax_sky": str(lmax_sky)})
            base = models.spectrum_data(table, 1, lmax)
            low, high = args.c1_range
            priors = models.resolve_priors(
                models.spectrum_sigma_parameters(base, emu, "table"),
                {"c1": {"dist": "loguniform", "low": low, "high": high}})
            for way in ("isotropic", "transfer"):

                def model(cl, error, transfer, base=base, priors=priors, way=way,
                          forward=forward):
                    spectrum = dataclasses.replace(
                        base, cl=cl, error=error, transfer=transfer if way == "transfer" else None)
                    models.spectrum_sigma_model(spectrum, emu, priors, "table", [forward])

                mcmc = MCMC(NUTS(model), num_warmup=args.warmup, num_samples=args.draws,
                            num_chains=2, chain_method="parallel", progress_bar=False,
                            jit_model_args=True)
                rows = []
                for i, (cl, error, transfer) in enumerate(sets):
                    mcmc.run(jax.random.PRNGKey(args.seed + 100 * k + i), jnp.asarray(cl),
                             jnp.asarray(error), jnp.asarray(transfer))
                    rows.append({p: np.asarray(mcmc.get_samples()[p]) for p in PARAMETERS})
                truth = {"sigma": sigma, "rl_over_lc": rl}
                result = {"seconds": round(time.perf_counter() - start, 1),
                          "transfer_mean": np.mean([s[2] for s in sets], 0).round(3).tolist()}
                for p in PARAMETERS:
                    t = np.log(truth[p])
                    q = np.array([np.quantile(np.log(r[p]), [0.025, 0.16, 0.5, 0.84, 0.975])
                                  for r in rows])
                    result[p] = {
                        "coverage68": float(np.mean((q[:, 1] <= t) & (t <= q[:, 3]))),
                        "coverage95": float(np.mean((q[:, 0] <= t) & (t <= q[:, 4]))),
                        "ln_bias_mean": float(np.mean(q[:, 2] - t)),
                        "ln_halfwidth68": float(np.mean(q[:, 3] - q[:, 1]) / 2),
                    }
                report["points"].setdefault(point, {}).setdefault(name, {})[way] = result
                print(json.dumps({point: {name: {way: result}}}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
