"""Closure on engine-made skies: back-tracked ensembles observed as IceCube and HAWC, fitted for p.

The mock closure (``closure_observatory.py``) draws Gaussian, statistically isotropic skies of
the BGK spectrum. Engine-made skies are neither: ``δI = c · b`` (rel.-diffusion paper eq. 2.1)
of one field realisation has the preferred axis ``B0`` and non-Gaussian structure. Here each
realisation of a run file is one data set:

1. its ``δI`` (gradient ``∥ B0`` or ``⊥ B0``, ``|∇n|/n = --strength``/Lc, ``K`` of the ensemble at
   the last time) is rotated onto the equatorial sky with ``B0`` at RA 229.2°, Dec 11.4°, and
   observed by the experiment without shot noise (field of view, per-ring right-ascension mean
   removed); its pseudo-C_ℓ, ``ℓ = --ell-min .. ℓmax`` (IceCube 36, HAWC 18), is the data;
2. the **reference p** is the BGK fit (``C_ℓ = q1 cl_shape(p, ℓ)``, eq. 4.7; weighted least
   squares with the ensemble's standard errors) to the **ensemble-mean full-sky** spectrum over
   the same ℓ: the p-like shape of the engine's sky, known to ±(its error) from all
   realisations together; the fit's χ² says how well the BGK shape describes the engine;
3. every data set is fitted (MAP + Laplace, ``closure_observatory.Fitter``) by
   ``pseudo``: the experiment's pseudo-C_ℓ model with the covariance held at the self-consistent
   fiducial (``crsky.inference.fitting.iterate_fiducial``, the default of ``crsky infer``);
   ``ideal``: the full-sky model on ``C̃_ℓ / f_sky``; and, for reference, ``full_sky``: the
   full-sky model on the realisation's own full-sky ``C_ℓ`` (the ideal observer).

Reported per experiment and way: the coverage of the reference p by the 68 % / 95 % Laplace
intervals, the bias of the medians and their spread against the mean interval width. ::

    OMP_NUM_THREADS=1 .venv/bin/python -m crsky simulate --config reduced --nside 16 \\
        --realisations 96 --t-omega-max 100 --seed 1 --out run16b.h5
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/closure_engine.py run16b.h5 \\
        [--orientation parallel] [--ell-min 1] [--out closure_engine.json]
"""

import argparse
import json
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from closure_observatory import (  # noqa: E402
    PRIORS,
    Fitter,
    ideal_table,
    iterated_fits,
    report,
    summary,
)
from observatory_anisotropy import ORIENTATIONS, spectra_of_run  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from crsky.inference import data as cdata  # noqa: E402
from crsky.inference import models  # noqa: E402
from crsky.inference.data import ClTable  # noqa: E402
from crsky.io import runfile  # noqa: E402
from crsky.io.tables import load_experiments  # noqa: E402
from crsky.physics import bgk  # noqa: E402
from crsky.resources import resolve  # noqa: E402


def reference_p(full: np.ndarray, ell: np.ndarray) -> dict:
    """BGK fit to the ensemble-mean full-sky spectrum at ``ell`` (errors: standard errors of
    the mean over realisations): p, its error, q1 and the χ² per degree of freedom."""
    mean = full[:, ell].mean(0)
    error = full[:, ell].std(0, ddof=1) / np.sqrt(full.shape[0])
    scale = mean[0]

    def residual(x):  # x = (p, ln(q1 / scale))
        return (np.asarray(bgk.cl(x[0], jnp.asarray(ell), scale * np.exp(x[1]))) - mean) / error

    fit = least_squares(residual, [0.5, 0.0], bounds=([0.01, -30], [0.99, 30]))
    cov = np.linalg.inv(fit.jac.T @ fit.jac)
    return {"p": float(fit.x[0]), "p_error": float(np.sqrt(cov[0, 0])),
            "q1": float(scale * np.exp(fit.x[1])),
            "chi2_per_dof": float(np.sum(fit.fun**2) / (ell.size - 2))}


def table(cl: np.ndarray, error: np.ndarray, ell: np.ndarray, name: str, f_sky: float,
          kind: str, nside: int) -> ClTable:
    """A noise-free C_ℓ table of one data set (``error``: the ensemble spread, which the
    pseudo-C_ℓ likelihood uses only as a scale)."""
    n = ell.size
    meta = {"spectrum": kind} | ({"nside": str(nside), "lmax_sky": str(3 * nside - 1)}
                                if kind == "pseudo" else {})
    return ClTable(ell=ell, cl=cl, error=error, experiment=np.full(n, name),
                   f_sky=np.full(n, f_sky), noise=np.zeros(n), meta=meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runfile")
    parser.add_argument("--orientation", choices=list(ORIENTATIONS), default="parallel")
    parser.add_argument("--strength", type=float, default=1e-4)
    parser.add_argument("--ell-min", type=int, default=1)
    parser.add_argument("--sets", type=int, default=None, help="first N realisations only")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    run = runfile.load(args.runfile)
    nside = run.config.nside
    experiments = load_experiments(resolve("data", "experiments.toml"))
    chosen = [experiments["IceCube"], experiments["HAWC"]]
    spectra = spectra_of_run(run, chosen, ORIENTATIONS[args.orientation], args.strength)
    results = {}
    print(f"{args.runfile}: nside {nside}, {len(run.indices)} realisations, t_omega "
          f"{float(run.t_omega[-1]):g}, grad n {args.orientation} to B0, no shot noise")
    for exp in chosen:
        pseudo, full = spectra[exp.name]
        n = len(pseudo) if args.sets is None else min(args.sets, len(pseudo))
        ell = np.arange(args.ell_min, exp.ell_max + 1)
        ref = reference_p(full, ell)
        forward = cdata.pseudo_cl_forward(exp, nside, exp.ell_max, 3 * nside - 1)
        print(f"\n{exp.name}, l = {ell[0]}..{ell[-1]}: reference p = {ref['p']:.4f} ± "
              f"{ref['p_error']:.4f} (BGK fit to the mean of {len(full)} full skies, chi2/dof "
              f"{ref['chi2_per_dof']:.2f}), f_sky {forward.f_sky:.3f}")
        spread = pseudo[:, ell].std(0, ddof=1)
        sets = {
            "pseudo": [table(c[ell], spread, ell, exp.name, forward.f_sky, "pseudo", nside)
                       for c in pseudo[:n]],
            "full_sky": [table(c[ell], full[:, ell].std(0, ddof=1), ell, exp.name, 1.0,
                               "full_sky", nside) for c in full[:n]],
        }
        sets["ideal"] = [ideal_table(t) for t in sets["pseudo"]]
        results[exp.name] = {"reference": ref, "ell": [int(ell[0]), int(ell[-1])]}
        for way, tables in sets.items():
            start = time.perf_counter()
            data = [models.spectrum_data(t, int(ell[0]), int(ell[-1])) for t in tables]
            kwargs = {"data": data[0], "priors": PRIORS, "error_model": "cosmic_variance"}
            if way == "pseudo":
                kwargs["experiment"] = [forward]
                fits, _ = iterated_fits(kwargs, data)
            else:
                fitter = Fitter(kwargs)
                fits = [fitter.p_quantiles(d.cl) for d in data]
            quantiles = [None if f is None else f[0] for f in fits]
            r = summary(ref["p"], quantiles) | {"seconds": time.perf_counter() - start}
            results[exp.name][way] = r
            report(f"  {way:8s}", r)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(vars(args) | {"nside": nside, "realisations": len(run.indices),
                                    "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
