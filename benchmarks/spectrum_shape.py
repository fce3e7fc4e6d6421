"""Shape of Ĉ_ℓ/Ĉ_1 of a run file at its last saved time: concave or convex in log-log?

The relative-diffusion paper's Fig. 3 shows Ĉ_ℓ/Ĉ_1 (Ĉ_ℓ = ⟨C_ℓ⟩ − N, eq. 3.1) falling with
ℓ on log-log axes. This script prints, per gradient orientation, the ratio with its
leave-one-realisation-out jackknife error (:func:`crsky.pipelines.tabulate.spectrum_shape`) for the
ℓ
where Ĉ_ℓ exceeds twice its error (contiguous from ℓ = 1), and the curvature c of the weighted
quadratic fit ln(Ĉ_ℓ/Ĉ_1) = a + b ln ℓ + c ln²ℓ: c < 0 concave, c > 0 convex. The fit weights
are the diagonal jackknife errors (the ratios are correlated across ℓ, so the curvature's
error is indicative). For comparison, ``bgk_curvature`` is the same (unweighted) fit to the BGK
closure's C_ℓ/C_1 (eq. 4.7) over the same ℓ for p = 1/3, 1/2, 2/3: the closure itself is only
slightly concave (c ≈ −0.05 at p = 1/2). Prints one JSON line.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spectrum_shape.py paper.h5
"""

import argparse
import json

import numpy as np

from crsky.io import runfile
from crsky.physics import bgk, sky
from crsky.pipelines.tabulate import spectrum_shape


def _shape(run, orientation: str) -> dict:
    ratio, error = spectrum_shape(run, orientation)
    significant = ratio[1:] > 2 * error[1:]
    n = int(np.argmin(significant)) if not significant.all() else significant.size
    ell = np.arange(1, n + 1)
    fit = {}
    if n >= 4:
        # weighted least squares in ln ℓ; σ(ln R) = σ_R / R (ℓ = 1 has zero error: fixed point)
        r, e = ratio[1 : n + 1], error[1 : n + 1]
        sigma = np.where(e > 0, e / r, 1e-3)
        coef, cov = np.polyfit(np.log(ell), np.log(r), 2, w=1 / sigma, cov="unscaled")
        fit = {"curvature": float(coef[0]), "curvature_err": float(np.sqrt(cov[0, 0])),
               "slope_at_1": float(coef[1]), "bgk_curvature": {}}
        for p in (1 / 3, 1 / 2, 2 / 3):
            closure = np.asarray(bgk.cl_shape(p, ell))
            fit["bgk_curvature"][f"{p:.3g}"] = float(
                np.polyfit(np.log(ell), np.log(closure / closure[0]), 2)[0])
    return {"ell_max_significant": n, "ratio": ratio[1 : n + 1].tolist(),
            "error": error[1 : n + 1].tolist(), **fit}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runfile", help="run file written by crsky simulate")
    a = p.parse_args()
    run = runfile.load(a.runfile)
    out = {"runfile": a.runfile, "realisations": len(run),
           "t_omega": float(run.t_omega[-1])}
    out.update({o: _shape(run, o) for o in sky.ORIENTATIONS})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
