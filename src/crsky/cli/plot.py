"""``crsky plot RUNFILE``: the relative-diffusion paper's Figs. 2 and 3 and a δI sky map, as PNG."""

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot",
        help="draw Fig. 2/3 analogues and a Mollweide map of dI from a run file",
        description=(
            "Fig. 2 analogue (<C_0>, <C_1>, <C_l> for 2 <= l <= 9, shot noise and standard dipole "
            "against t*Omega), Fig. 3 analogue (C^_l / C^_1 at three times with the noise level) "
            "for gradients parallel and perpendicular to B0, and a Mollweide map of dI of one "
            "realisation at the last saved time. Unit gradient |grad n|/n = 1/Lc."
        ),
    )
    p.add_argument("runfile", help="run file written by 'crsky simulate'")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: next to RUNFILE)")
    p.add_argument("--realisation", type=int, default=0, help="realisation shown in the map")
    p.add_argument("--orientation", default="parallel", choices=("parallel", "perpendicular"),
                   help="gradient of the map")
    p.add_argument("--fits", action="store_true",
                   help="also write the dI map as a HEALPix FITS file (RING, for healpy)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace figures already in the output folder")
    p.set_defaults(func=run)


FIGURES = ("fig2_spectrum_vs_time.png", "fig3_spectrum_shape.png", "sky_map.png")


def check_figures(out: str | Path, fits: bool = False, overwrite: bool = False) -> None:
    """Refuse (``FileExistsError``) to replace figures already in ``out`` unless ``overwrite``."""
    names = FIGURES + (("sky_map.fits",) if fits else ())
    existing = [name for name in names if (Path(out) / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{str(Path(out) / existing[0])!r} exists; pass --overwrite to replace the figures"
        )


def draw(runfile_path: str | Path, out: str | Path, realisation: int = 0,
         orientation: str = "parallel", fits: bool = False,
         overwrite: bool = False) -> dict[str, Path]:
    """Load a run file and :func:`draw_run` it."""
    from crsky.io import runfile

    check_figures(out, fits, overwrite)
    run = runfile.load(runfile_path)
    if not len(run):
        raise ValueError(f"runfile {str(runfile_path)!r} holds no finished realisation")
    return draw_run(run, out, realisation, orientation, fits, overwrite=overwrite)


def draw_run(run, out: str | Path, realisation: int = 0, orientation: str = "parallel",
             fits: bool = False, stats: dict | None = None, *,
             overwrite: bool = False) -> dict[str, Path]:
    """Write ``fig2_spectrum_vs_time.png``, ``fig3_spectrum_shape.png``, ``sky_map.png`` (and
    with ``fits`` the δI map as ``sky_map.fits``, RING ordering, unit |∇n|/n = 1/Lc, its header
    described by :func:`fits_header`) of an :class:`crsky.io.run.Ensemble` (simulated or
    loaded). ``stats``: ``{orientation: run.statistics(orientation)}`` for both orientations,
    if the caller has it already (computed here otherwise). Existing figures in ``out`` are
    replaced only with ``overwrite`` (``FileExistsError`` before any drawing otherwise)."""
    import matplotlib

    matplotlib.use("Agg")
    import jax.numpy as jnp
    import numpy as np

    from crsky import _validate
    from crsky.io.fits import write_fits
    from crsky.physics import sky
    from crsky.plotting import spectra as plotting
    from crsky.plotting.sky import DELTA_I_LABEL, sky_map

    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    indices = np.asarray(run.indices)
    if realisation not in indices:  # a count and a range: a run may hold hundreds
        held = (f"{indices.size} realisations, indices {indices.min()} to {indices.max()}"
                if indices.size else "no finished realisation")
        raise ValueError(f"realisation {realisation} is not in the run (it has {held})")
    if stats is not None and set(sky.ORIENTATIONS) - set(stats):
        raise ValueError(
            f"stats must hold both orientations {', '.join(map(repr, sky.ORIENTATIONS))} "
            f"(Ensemble.statistics of the run), got keys {sorted(stats)}"
        )
    out = Path(out)
    check_figures(out, fits, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    stats = {o: run.statistics(o) for o in sky.ORIENTATIONS} if stats is None else stats
    maps = run.arrays["maps_last"][list(indices).index(realisation)]
    gradient = sky.reference_gradient(orientation)
    delta_i = sky.relative_intensity(
        jnp.asarray(maps[:, :3]), jnp.asarray(maps[:, 3:]), gradient,
        stats[orientation].K_liouville,
    )
    figures = {
        "fig2_spectrum_vs_time": plotting.spectrum_evolution(stats),
        "fig3_spectrum_shape": plotting.spectrum_shape(stats),
        "sky_map": sky_map(
            np.asarray(delta_i),
            title=rf"$\delta I$, realisation {realisation}, "
            rf"$t\Omega = {run.t_omega[-1]:g}$, $\nabla n$ {orientation} to $B_0$",
            unit=DELTA_I_LABEL, gradient=np.asarray(gradient),
        ),
    }
    paths = {}
    for name, fig in figures.items():
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name], dpi=110, bbox_inches="tight")
    if fits:
        paths["sky_map_fits"] = write_fits(
            out / "sky_map.fits", np.asarray(delta_i), overwrite=True, column_names=["DELTA_I"],
            column_units="", header=fits_header(run, realisation, orientation, gradient),
        )
    return paths


def fits_header(run, realisation: int, orientation: str, gradient) -> dict:
    """FITS keywords of a δI map of ``crsky plot``: quantity and unit, frame, time, gradient,
    realisation and the run's physical parameters."""
    import numpy as np

    config, t_omega = run.config, float(run.t_omega[-1])
    g = np.asarray(gradient, dtype=float)
    return {
        "QUANTITY": ("relative intensity dI = (4 pi f - n)/n", "eq. 2.1"),
        "BUNIT": ("", "dimensionless, linear in |grad n|/n"),
        "FRAME": ("B0_ALONG_Z", "arrival directions; B0 along +z (theta=0)"),
        "B0DIR": ("+Z", "direction of the regular field B0"),
        "TOMEGA": (t_omega, "back-tracking time t*Omega [1/Omega]"),
        "T_LCC": (t_omega * float(config.r_larmor), "back-tracking time T [Lc/c]"),
        "GRADDIR": (orientation, "grad n relative to B0"),
        "GRADNORM": (float(np.linalg.norm(g)), "|grad n|/n [1/Lc]"),
        "GRADX": (float(g[0] / np.linalg.norm(g)), "unit vector of grad n, x"),
        "GRADY": (float(g[1] / np.linalg.norm(g)), "unit vector of grad n, y"),
        "GRADZ": (float(g[2] / np.linalg.norm(g)), "unit vector of grad n, z"),
        "REALIS": (int(realisation), "field realisation (0-based)"),
        "RLARMOR": (float(config.r_larmor), "Larmor radius r_L [Lc]"),
        "SIGMA2": (float(config.sigma2), "turbulence level <dB^2>/B0^2"),
        "SEED": (int(config.seed), "PRNG seed of the ensemble"),
    }


def run(args: argparse.Namespace) -> int:
    from crsky.cli._common import check_output

    out = args.out or Path(args.runfile).with_suffix("").as_posix() + "-plots"
    check_output("--out", out, folder=True)
    paths = draw(args.runfile, out, args.realisation, args.orientation, args.fits,
                 overwrite=args.overwrite)
    for path in paths.values():
        print(path)
    return 0
