"""The isotropic mixing matrix against engine-made, anisotropic maps.

The pseudo-``C_ℓ`` model (``crsky.physics.observatory.mixing_matrix``) assumes a statistically
isotropic sky; the back-tracking engine's ``δI`` has a preferred axis ``B0``. For every
realisation of a run file (``maps_last``) and each gradient orientation (``∇n ∥ B0``: angle 0;
``∇n ⊥ B0``: angle 90° from ``B0``), ``δI = c · b`` (rel.-diffusion paper eq. 2.1, ``K`` of the
ensemble at the last time, ``|∇n|/n = --strength``/Lc) is rotated onto the equatorial sky with
``B0`` at RA 229.2°, Dec 11.4° (or ``--b0-ra``, ``--b0-dec``, ``--field-sign``;
``rotate_map_healpy``), observed by IceCube and HAWC without shot
noise (``observe_map``: declination band, per-ring right-ascension mean removed) and its
pseudo-``C_ℓ`` taken; its full-sky ``C_L`` (``anafast`` of the rotated whole-sky map,
``L ≤ 3 nside − 1``) gives the prediction ``M C`` of the same map. ``observatory.mixing_check``
reports per ℓ the ensemble-mean relative deviation ``⟨C̃ − M C⟩ / ⟨M C⟩``, its Monte Carlo
error and its significance. ::

    OMP_NUM_THREADS=1 .venv/bin/python -m crsky simulate --config reduced --nside 16 \\
        --realisations 16 --t-omega-max 100 --out run16.h5
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/observatory_anisotropy.py run16.h5 \\
        [--strength 1e-4] [--b0-ra 229.2 --b0-dec 11.4 --field-sign 1] [--out anisotropy.json]
"""

import argparse
import json
import time

import jax

jax.config.update("jax_enable_x64", True)

import healpy as hp  # noqa: E402
import numpy as np  # noqa: E402

from crsky.io import runfile  # noqa: E402
from crsky.io.tables import load_experiments  # noqa: E402
from crsky.physics import observatory as ob  # noqa: E402
from crsky.physics import sky  # noqa: E402
from crsky.resources import resolve  # noqa: E402

ORIENTATIONS = {"parallel": 0.0, "perpendicular": 90.0}


def spectra_of_run(run, experiments, angle_deg: float, strength: float, rotation):
    """Pseudo- and full-sky spectra per realisation, ``{name: (pseudo, full)}``, the simulation
    frame turned onto the sky by ``rotation`` (``observatory.simulation_frame``)."""
    nside = run.config.nside
    lmax_sky = 3 * nside - 1
    c = np.asarray(sky.liouville_coefficients(ob.gradient_from_b0(angle_deg, 0.0, strength),
                                              run.diffusion().K[-1]))
    out = {e.name: ([], []) for e in experiments}
    for basis in np.asarray(run.arrays["maps_last"], dtype=float):
        sky_map = ob.rotate_map_healpy(basis @ c, rotation)
        full = hp.anafast(sky_map, lmax=lmax_sky, iter=3)
        for e in experiments:
            observed = ob.observe_map(sky_map, e.field_of_view(nside))
            out[e.name][0].append(np.asarray(ob.pseudo_cl(observed, e.ell_max)))
            out[e.name][1].append(full)
    return {k: (np.asarray(p), np.asarray(f)) for k, (p, f) in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runfile")
    parser.add_argument("--strength", type=float, default=1e-4)
    parser.add_argument("--b0-ra", type=float, default=ob.B0_RA_DEG, help="deg")
    parser.add_argument("--b0-dec", type=float, default=ob.B0_DEC_DEG, help="deg")
    parser.add_argument("--field-sign", type=int, default=1, choices=(1, -1))
    parser.add_argument("--out", default=None, help="JSON of the per-l results")
    args = parser.parse_args()
    run = runfile.load(args.runfile)
    rotation = ob.simulation_frame(ob.radec_to_vector(args.b0_ra, args.b0_dec),
                                   field_sign=args.field_sign)
    nside = run.config.nside
    table = load_experiments(resolve("data", "experiments.toml"))
    experiments = [table["IceCube"], table["HAWC"]]
    for e in experiments:
        ob.check_ell_range(e.ell_max, 3 * nside - 1, nside)
    mixing = {e.name: np.asarray(ob.mixing_matrix(ob.coupling_kernels(
        nside, e.field_of_view(nside), e.ell_max))) for e in experiments}
    start = time.perf_counter()
    results = {}
    print(f"{args.runfile}: nside {nside}, {len(run.indices)} realisations, t_omega "
          f"{float(run.t_omega[-1]):g}, |grad n|/n = {args.strength:g}/Lc, B0 at RA "
          f"{args.b0_ra:g}, Dec {args.b0_dec:g}, sign {args.field_sign:+d}, no shot noise")
    for orientation, angle in ORIENTATIONS.items():
        spectra = spectra_of_run(run, experiments, angle, args.strength, rotation)
        for name, (pseudo, full) in spectra.items():
            check = ob.mixing_check(pseudo, full, mixing[name])
            results[f"{name}/{orientation}"] = {
                k: v[1:].tolist() if np.ndim(v) else v for k, v in check.items()}
            z = check["significance"][1:]
            print(f"\n{name}, grad n {orientation} to B0: max |pull| {np.max(np.abs(z)):.1f} "
                  f"over {z.size} l; Hotelling T2 {check['t2']:.1f}, p = {check['p_value']:.3g}")
            print("  l   <C~>/<MC>-1   MC error   pull")
            for ell in range(1, check["ell"].size):
                print(f"{ell:3d}   {check['relative'][ell]:+10.4f}   "
                      f"{check['relative_error'][ell]:8.4f}   {check['significance'][ell]:+6.1f}")
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"runfile": args.runfile, "nside": nside,
                       "realisations": len(run.indices), "strength": args.strength,
                       "b0_ra": args.b0_ra, "b0_dec": args.b0_dec,
                       "field_sign": args.field_sign,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
