"""Tables made from back-tracking ensembles: the emulator table over a grid of turbulence
levels, and a run's simulated spectrum as a C_l table for inference."""

import dataclasses
import json
from pathlib import Path

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.inference.data import ClTable, pseudo_noise_level
from crsky.inference.emulator import EMULATOR_COLUMNS
from crsky.io import runfile
from crsky.physics import observatory, sky
from crsky.physics.anisotropy import SUMMARY_KEYS, ensemble_statistics
from crsky.pipelines.ensemble import Ensemble, run_ensemble


def jackknife(run: Ensemble, statistic) -> tuple[np.ndarray, np.ndarray]:
    """A statistic of the ensemble and its leave-one-realisation-out jackknife error.

    ``statistic``: a function of an :class:`Ensemble` returning an array. The jackknife
    carries the correlations inside the statistic (e.g. between ``Ĉ_l`` and ``Ĉ_1`` of a
    ratio). Returns ``(value, error)`` of the statistic's shape.
    """
    n = len(run)
    if n < 2:
        raise ValueError("the run needs at least 2 realisations for a jackknife error")
    full = np.asarray(statistic(run))
    leave_one_out = np.stack([np.asarray(statistic(run.select(np.arange(n) != i)))
                              for i in range(n)])
    # jackknife variance: (n − 1)/n Σ (θ_i − θ̄)²
    spread = leave_one_out - leave_one_out.mean(axis=0)
    return full, np.sqrt((n - 1) / n * np.sum(spread**2, axis=0))


def spectrum_shape(run: Ensemble, orientation: str = "parallel") -> tuple[np.ndarray, np.ndarray]:
    """``Ĉ_l/Ĉ_1`` at the last saved time of a loaded run, with its jackknife error.

    ``Ĉ_l = ⟨C_l⟩ − N`` (rel.-diffusion paper eq. 3.1) for the unit gradient ``orientation``
    (``"parallel"`` or ``"perpendicular"`` to B0); error by :func:`jackknife`.

    Returns:
        ``(ratio, error)``, each of shape (lmax + 1,) over ``l = 0 … lmax``.
    """
    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)

    def ratio(r):
        cl_hat = np.asarray(r.statistics(orientation).cl_hat[-1])
        return cl_hat / cl_hat[1]

    return jackknife(run, ratio)


def realisation_shapes(run: Ensemble, orientation: str = "parallel") -> np.ndarray:
    """``Ĉ_l/Ĉ_1`` of each realisation alone at the last saved time, shape (n_real, lmax + 1).

    Each realisation's spectra go through rel.-diffusion paper eq. 3.1 with the *ensemble's* K
    (Liouville map and noise), so the realisations differ only by their fields: the quantity
    to pair between two runs of the same fields (:func:`paired_step_z`).
    """
    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    K = run.diffusion().K
    out = []
    for i in range(len(run)):
        one = {name: run.arrays[f"spectra/{name}"][i : i + 1] for name in SUMMARY_KEYS}
        stats = ensemble_statistics(one, run.t_omega, run.config.r_larmor, K,
                                    sky.reference_gradient(orientation),
                                    nside=run.config.nside, K_liouville=K[-1])
        cl_hat = np.asarray(stats.cl_hat[-1])
        out.append(cl_hat / cl_hat[1])
    return np.stack(out)


def paired_step_z(coarse: Ensemble, fine: Ensemble, ell_max: int) -> np.ndarray:
    """Step-size test: ``z`` of the change of ``Ĉ_l/Ĉ_1`` (``l = 2 … ell_max``, both gradient
    orientations) between two runs of the same fields at steps ``dt`` and ``dt/2``.

    Per realisation ``i`` held by both runs, ``d_i = shape_i(fine) − shape_i(coarse)``;
    ``z = mean(d) / (std(d) / sqrt(n))``. The fields are shared, so the spread of ``d`` is the
    part of the noise the step changes; ``|z|`` of a few says no change was detected.

    Returns:
        ``z`` of shape (2, ell_max − 1): rows parallel, perpendicular.
    """
    shared = np.intersect1d(coarse.indices, fine.indices)
    if shared.size < 2:
        raise ValueError("the step test needs >= 2 realisations held by both runs")
    coarse = coarse.select(np.isin(coarse.indices, shared))
    fine = fine.select(np.isin(fine.indices, shared))
    z = []
    for orientation in sky.ORIENTATIONS:
        diff = (realisation_shapes(fine, orientation)
                - realisation_shapes(coarse, orientation))[:, 2 : ell_max + 1]
        spread = diff.std(0, ddof=1) / np.sqrt(diff.shape[0])
        z.append(np.divide(diff.mean(0), spread, out=np.zeros(diff.shape[1]),
                           where=spread > 0))
    return np.asarray(z)


@dataclasses.dataclass(frozen=True)
class StepTest:
    """How a node's Boris step was chosen: the accepted ``dt`` (1/Ω), the ``max |z|`` of
    :func:`paired_step_z` against ``dt/2`` for each step tried (coarsest first), and the
    threshold ``z_max`` it was held to."""

    dt: float
    tried: tuple[tuple[float, float], ...]
    z_max: float


def node_path(runs_dir: Path, sigma: float, rl_over_lc: float, dt: float) -> Path:
    """Run file of one emulator node at one step."""
    return runs_dir / f"sigma_{sigma:.6g}_rl_{rl_over_lc:.6g}_dt_{dt:.6g}.h5"


def _check_test_realisations(n) -> None:
    _validate.positive_int("test_realisations", n)
    if n < 2:
        raise ValueError(f"test_realisations must be >= 2 (a spread needs two), got {n}")


def step_test_threshold(test_realisations: int, n_statistics: int,
                        false_alarm: float = 0.05) -> float:
    """``|z|`` above which :func:`paired_step_z` reports a change of the step.

    Under no change each ``z`` follows Student's t with ``n − 1`` degrees of freedom (``n`` the
    paired realisations); the threshold keeps the chance that any of ``n_statistics`` exceeds
    it by chance at ``false_alarm`` (Bonferroni): ``t_{n−1}⁻¹(1 − false_alarm / (2 m))``.
    """
    from scipy.stats import t

    return float(t.ppf(1 - false_alarm / (2 * n_statistics), test_realisations - 1))


def converged_node(config, runs_dir: Path, *, test_realisations: int = 6, ell_max: int = 6,
                   max_halvings: int = 3, progress: bool = True) -> tuple[Path, StepTest]:
    """Run one emulator node with a Boris step chosen by a step-convergence test.

    Starting from ``config.step``, run the first ``test_realisations`` fields at ``dt`` and at
    ``dt/2``; accept ``dt`` when every ``|z|`` of :func:`paired_step_z` (``l = 2 … ell_max``,
    both orientations) is below :func:`step_test_threshold` (5 % false alarms per node),
    otherwise halve and test again (at most ``max_halvings`` times). Then complete
    ``config.realisations`` at the accepted step. Every run file is resumed if present, so an
    interrupted node continues where it stopped.

    Returns:
        the accepted run file and its :class:`StepTest`.
    """
    _check_test_realisations(test_realisations)
    sigma, rl, dt = config.sigma, config.r_larmor, config.step
    z_max = step_test_threshold(test_realisations, 2 * (ell_max - 1))
    first = list(range(test_realisations))
    tried = []
    for _ in range(max_halvings + 1):
        paths = [node_path(runs_dir, sigma, rl, step) for step in (dt, dt / 2)]
        for path, step in zip(paths, (dt, dt / 2), strict=True):
            run_ensemble(config.replace(dt=step), path, resume=path.exists(), progress=progress,
                         indices=first)
        z = paired_step_z(runfile.load(paths[0]), runfile.load(paths[1]), ell_max)
        tried.append((dt, float(np.max(np.abs(z)))))
        if tried[-1][1] <= z_max:
            run_ensemble(config.replace(dt=dt), paths[0], resume=True, progress=progress)
            return paths[0], StepTest(dt, tuple(tried), z_max)
        dt /= 2
    raise RuntimeError(
        f"sigma {sigma:g}, r_L/Lc {rl:g}: no step passed the convergence test "
        f"(dt, max |z|: {tried}); lower the configuration's dt"
    )


def build_table(
    base, sigmas, rl_over_lcs, runs_dir: str | Path, out: str | Path, *,
    orientation: str = "parallel", test_realisations: int = 6, command: str = "",
    progress: bool = True, overwrite: bool = False,
) -> Path:
    """Run back-tracking ensembles over a (σ, r_L/Lc) grid and write the emulator table ``out``.

    Args:
        base: :class:`crsky.pipelines.ensemble.SimulationConfig`; its ``sigma2`` and
            ``r_larmor`` are replaced per node, its ``dt`` (or the default step) is the first
            step tried by :func:`converged_node`.
        sigmas: turbulence levels σ (increasing, > 0).
        rl_over_lcs: Larmor radii r_L/Lc (increasing, > 0).
        runs_dir: folder for the run files (:func:`node_path`); existing ones are resumed, so
            an interrupted build continues where it stopped, node by node.
        out: the CSV table to write (format in :mod:`crsky.inference.emulator`); must not exist
            unless ``overwrite``. Its folder must exist (checked before any run).
        orientation: gradient orientation of the spectra (``"parallel"``/``"perpendicular"``).
        test_realisations: fields per step-convergence test (:func:`converged_node`).
        command: the command line that rebuilds the table (recorded in the header).

    Returns:
        ``out``. The table holds ``ℓ = 1 … ell_max`` of the runs at the last saved time; its
        header records each node's accepted step and test.
    """
    _validate.increasing("sigmas", sigmas)
    _validate.increasing("rl_over_lcs", rl_over_lcs)
    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    _check_test_realisations(test_realisations)
    out, runs_dir = Path(out), Path(runs_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"out {str(out)!r} exists; pass overwrite=True to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    runs_dir.mkdir(parents=True, exist_ok=True)
    rows, steps = [], {}
    for sigma in sigmas:
        for rl in rl_over_lcs:
            config = base.replace(sigma2=float(sigma) ** 2, r_larmor=float(rl))
            path, test = converged_node(config, runs_dir, test_realisations=test_realisations,
                                        progress=progress)
            steps[f"{sigma:.6g},{rl:.6g}"] = {"dt": test.dt, "tried": test.tried,
                                              "z_max": test.z_max}
            ratio, error = spectrum_shape(runfile.load(path), orientation)
            rows += [(sigma, rl, ell, ratio[ell], error[ell]) for ell in range(1, ratio.size)]
    settings = {k: v for k, v in base.to_dict().items() if k not in ("sigma2", "r_larmor", "dt")}
    header = [
        "kind: crsky emulator table",
        "synthetic: false",
        f"orientation: {orientation}",
        f"time: t_omega = {base.t_omega[-1]:g} (last saved time)",
        f"config: {json.dumps(settings, sort_keys=True)}",
        f"steps: {json.dumps(steps, sort_keys=True)}",
        f"command: {command}",
    ]
    lines = [f"# {h}" for h in header] + [",".join(EMULATOR_COLUMNS)]
    lines += [f"{s:.6g},{r:.6g},{e},{x:.8e},{dx:.8e}" for s, r, e, x, dx in rows]
    out.write_text("\n".join(lines) + "\n")
    return out


def cl_table_from_run(run: Ensemble, orientation: str = "parallel", ell_max: int | None = None,
                      experiment: str = "simulation", command: str = "",
                      t_omega: float | None = None) -> ClTable:
    """The simulated ``Ĉ_l = ⟨C_l⟩ − N`` (rel.-diffusion paper eq. 3.1) of a back-tracking run
    at one saved time, as a C_l table: ``error`` is the standard error over realisations,
    ``f_sky = 1``, ``noise`` the shot noise ``N`` already subtracted (eq. 3.1). Use it with
    ``error_model = "table"`` (the ensemble error, not single-sky cosmic variance).

    Args:
        run: the :class:`~crsky.io.run.Ensemble` (:func:`crsky.io.runfile.load`,
            :func:`crsky.pipelines.ensemble.simulate`; ≥ 2 realisations).
        orientation: unit gradient ``"parallel"`` or ``"perpendicular"`` to B0 (|∇n|/n = 1/Lc).
        ell_max: largest multipole (default: all stored).
        t_omega: the saved time ``tΩ`` to export (to 1e-6 relative; default the last). The
            noise grows as T while the spectrum levels off, so an earlier time in the
            asymptotic regime can carry more multipoles above the noise.
    """

    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    if len(run) < 2:
        raise ValueError("the run needs at least 2 realisations for an error over realisations")
    times = np.asarray(run.t_omega, dtype=float)
    at = times.size - 1
    if t_omega is not None:
        _validate.positive("t_omega", t_omega)
        matches = np.flatnonzero(np.abs(times - t_omega) <= 1e-6 * t_omega)
        if not matches.size:
            raise ValueError(f"t_omega must be one of the run's saved times "
                             f"{', '.join(f'{t:.6g}' for t in times)}; got {t_omega!r}")
        at = int(matches[0])
    stats = run.statistics(orientation)
    cl_hat, err = np.asarray(stats.cl_hat[at]), np.asarray(stats.cl_hat_err[at])
    top = cl_hat.size - 1 if ell_max is None else ell_max
    _validate.positive_int("ell_max", top)
    if top > cl_hat.size - 1:
        raise ValueError(f"ell_max must be <= {cl_hat.size - 1} (the run's spectra), got {top}")
    ell = np.arange(1, top + 1)
    config = run.config.to_dict()
    meta = {
        "mock": "false (simulated, not observed)",
        "source": f"crsky back-tracking run, gradient {orientation} to B0, "
                  f"t_omega = {times[at]:.6g}",
        "truth": f"sigma = {config['sigma2'] ** 0.5:g}, r_larmor = {config['r_larmor']:g}",
        "seed": str(config["seed"]),
        "realisations": f"{len(run)} (of {config['realisations']} configured)",
        "config": json.dumps(config, sort_keys=True),
        "command": command,
    }
    n = ell.size
    return ClTable(ell=ell, cl=cl_hat[ell], error=err[ell],
                   experiment=np.array([experiment] * n), f_sky=np.ones(n),
                   noise=np.full(n, float(stats.noise[at])), meta=meta)



def _basis_maps(run: Ensemble):
    """The six basis maps of each realisation at the last time, ``(R, Npix, 6)``."""
    if "maps_last" not in run.arrays:
        raise ValueError("the run file has no maps_last (basis maps at the last time)")
    return run.arrays["maps_last"]


def _observation_input(run: Ensemble, experiment, ell_max: int | None):
    """``lmax`` and ``lmax_sky`` of :func:`observed_cl_table`, checked (``ValueError``)."""
    if _basis_maps(run).shape[0] < 2:
        raise ValueError("the run needs >= 2 realisations (the table's error is their spread)")
    nside = run.config.nside
    lmax = experiment.ell_max if ell_max is None else ell_max
    if lmax is None:
        raise ValueError(f"ell_max: no source gives ell_max of {experiment.name}; pass one")
    lmax_sky = 3 * nside - 1
    observatory.check_ell_range(lmax, lmax_sky, nside)
    return lmax, lmax_sky


def observed_maps(run: Ensemble, experiment, *, events: float | None = None,
                  b0_ra_deg: float = observatory.B0_RA_DEG,
                  b0_dec_deg: float = observatory.B0_DEC_DEG, field_sign: int = 1,
                  gradient_angle_deg: float = 0.0, gradient_azimuth_deg: float = 0.0,
                  strength: float = 1e-4, seed: int = 0):
    """Yield, realisation by realisation, the relative-intensity map ``δI_obs`` (equatorial,
    RING, ``(Npix,)``, dimensionless, ``0`` outside the field of view) that ``experiment``
    reconstructs: the maps :func:`observed_cl_table` takes the pseudo-``C_l`` of, with the same
    Poisson draws for the same ``seed`` (see there for the arguments)."""
    if events is not None:
        _validate.positive("events", events)
    mask = experiment.field_of_view(run.config.nside)
    rng = np.random.default_rng(seed)
    for sky_map in sky_maps(run, b0_ra_deg=b0_ra_deg, b0_dec_deg=b0_dec_deg,
                             field_sign=field_sign, gradient_angle_deg=gradient_angle_deg,
                             gradient_azimuth_deg=gradient_azimuth_deg, strength=strength):
        yield observatory.observe_map(sky_map, mask, events=events, rng=rng)


def sky_maps(run: Ensemble, *, b0_ra_deg: float = observatory.B0_RA_DEG,
              b0_dec_deg: float = observatory.B0_DEC_DEG, field_sign: int = 1,
              gradient_angle_deg: float = 0.0, gradient_azimuth_deg: float = 0.0,
              strength: float = 1e-4):
    """Yield, realisation by realisation, the whole-sky ``δI`` (equatorial, RING, ``(Npix,)``)
    before the observation: the maps :func:`observed_maps` observes (arguments as there)."""
    _validate.positive("strength", strength)
    maps = _basis_maps(run)
    rotation = observatory.simulation_frame(
        observatory.radec_to_vector(b0_ra_deg, b0_dec_deg), field_sign=field_sign
    )
    g = observatory.gradient_from_b0(gradient_angle_deg, gradient_azimuth_deg, strength)
    c = np.asarray(sky.liouville_coefficients(g, run.diffusion().K[-1]))
    for basis in np.asarray(maps, dtype=float):
        # rel.-diffusion paper eq. (2.1): δI = c · b, rotated onto the sky (R ẑ = B̂0)
        yield observatory.rotate_map_healpy(basis @ c, rotation)


def sky_spectra(run: Ensemble, experiment, lmax: int, lmax_sky: int | None = None,
                **observation) -> tuple[np.ndarray, np.ndarray]:
    """Per realisation, the pseudo-``C_l`` (``l <= lmax``) of ``δI`` observed by ``experiment``
    without shot noise, and the whole-sky ``C_L`` (``healpy.anafast``, ``L <= lmax_sky``,
    default ``3 nside − 1``) of the same map: shapes ``(R, lmax + 1)`` and
    ``(R, lmax_sky + 1)``. ``observation``: the keywords of :func:`observed_maps` except
    ``events`` and ``seed``."""
    nside = run.config.nside
    mask = experiment.field_of_view(nside)
    lmax_sky = 3 * nside - 1 if lmax_sky is None else lmax_sky
    pseudo, full = [], []
    for sky_map in sky_maps(run, **observation):
        observed = observatory.observe_map(sky_map, mask)
        pseudo.append(np.asarray(observatory.pseudo_cl(observed, lmax)))
        full.append(hp.anafast(sky_map, lmax=lmax_sky, iter=3))
    return np.asarray(pseudo), np.asarray(full)


def simulated_transfer(run: Ensemble, experiment, lmax: int,
                       **observation) -> tuple[np.ndarray, np.ndarray]:
    """The forward-simulated transfer ``T_l = ⟨C̃_l⟩ / ⟨(M C)_l⟩``, ``l = 0 .. lmax``, and its
    Monte Carlo error.

    ``⟨C̃_l⟩``: the mean over realisations of the pseudo-``C_l`` of the observed ``δI``
    without shot noise; ``⟨(M C)_l⟩``: the isotropic mixing matrix applied to the same maps'
    whole-sky ``C_L`` (:func:`sky_spectra`, ``L <= 3 nside − 1``); ``T_l = 1 +`` the
    ``relative`` deviation of :func:`crsky.physics.observatory.mixing_check`, whose paired error
    is the one returned. ``T_l`` = 1 for a statistically isotropic sky; the engine's skies, with
    their preferred axis ``B0``, depart from it at low ``l`` (``docs/observations.md``).
    ``observation``: the keywords of :func:`observed_maps` except ``events`` and ``seed``.
    ``T_0`` is set to 1 (the filter removes the monopole).
    """
    nside = run.config.nside
    mask = experiment.field_of_view(nside)
    mixing = observatory.mixing_matrix(observatory.coupling_kernels(nside, mask, lmax,
                                                                    3 * nside - 1))
    check = observatory.mixing_check(*sky_spectra(run, experiment, lmax, **observation), mixing)
    transfer = 1.0 + np.nan_to_num(check["relative"])
    error = np.nan_to_num(check["relative_error"])
    transfer[0], error[0] = 1.0, 0.0
    return transfer, error


def observed_cl_table(run: Ensemble, experiment, *, events: float | None = None,
                      b0_ra_deg: float = observatory.B0_RA_DEG,
                      b0_dec_deg: float = observatory.B0_DEC_DEG, field_sign: int = 1,
                      gradient_angle_deg: float = 0.0, gradient_azimuth_deg: float = 0.0,
                      strength: float = 1e-4, seed: int = 0, ell_max: int | None = None,
                      meta: dict | None = None, transfer: bool = False) -> ClTable:
    """An experiment's pseudo-``C_l`` of a simulated ensemble, as a ``spectrum: pseudo`` table.

    Per realisation: ``δI = c · b`` from the six basis maps at the last time (``maps_last``;
    rel.-diffusion paper eq. 2.1, ``K`` the ensemble's at that time, gradient ``strength``
    (1/Lc) at ``gradient_angle_deg`` from ``B0``), rotated onto the sky with ``B0`` at
    (``b0_ra_deg``, ``b0_dec_deg``) (:func:`crsky.physics.observatory.rotate_map_healpy`),
    observed (:func:`crsky.physics.observatory.observe_map`; Poisson counts if ``events``) and
    its pseudo-``C_l`` taken; ``cl`` = mean over realisations minus the flat noise level,
    ``error`` its standard error. ``strength`` must keep ``|δI| < 1``. With ``transfer``, the
    table carries the column ``transfer`` of :func:`simulated_transfer` from the same maps, so
    that a fit of it accounts for the departure of these skies from statistical isotropy.
    """
    lmax, lmax_sky = _observation_input(run, experiment, ell_max)
    nside = run.config.nside
    mask = experiment.field_of_view(nside)
    spectra = [np.asarray(observatory.pseudo_cl(observed, lmax)) for observed in observed_maps(
        run, experiment, events=events, b0_ra_deg=b0_ra_deg, b0_dec_deg=b0_dec_deg,
        field_sign=field_sign, gradient_angle_deg=gradient_angle_deg,
        gradient_azimuth_deg=gradient_azimuth_deg, strength=strength, seed=seed,
    )]
    spectra = np.asarray(spectra)
    f_sky = float(mask.mean())
    noise = 0.0 if events is None else pseudo_noise_level(f_sky, events)
    ell = np.arange(1, lmax + 1)
    n = spectra.shape[0]
    error = spectra.std(0, ddof=1)[ell] / np.sqrt(n)
    header = {
        "spectrum": "pseudo", "mock": "false (simulated, not observed)",
        "source": f"crsky back-tracking run observed as {experiment.name}",
        "nside": str(nside), "lmax_sky": str(lmax_sky), "realisations": str(n),
        "observation": (f"B0 at RA {b0_ra_deg!r}, Dec {b0_dec_deg!r}, sign {field_sign}; "
                        f"gradient {gradient_angle_deg!r} deg from B0 (azimuth "
                        f"{gradient_azimuth_deg!r}), |grad n|/n = {strength!r}/Lc; events "
                        f"{events!r}; seed {seed}; t_omega {float(run.t_omega[-1])!r}"),
        "config": json.dumps(run.config.to_dict(), sort_keys=True),
    }
    column = None
    if transfer:
        column, column_error = simulated_transfer(
            run, experiment, lmax, b0_ra_deg=b0_ra_deg, b0_dec_deg=b0_dec_deg,
            field_sign=field_sign, gradient_angle_deg=gradient_angle_deg,
            gradient_azimuth_deg=gradient_azimuth_deg, strength=strength)
        header["transfer"] = (
            f"forward-simulated from the same {n} maps without shot noise (mean pseudo-C_l over "
            "the isotropic mixing matrix's prediction); Monte Carlo errors by l: "
            + ", ".join(f"{e:.3g}" for e in column_error[ell]))
    return ClTable(
        ell=ell, cl=spectra.mean(0)[ell] - noise, error=error,
        experiment=np.full(ell.size, experiment.name), f_sky=np.full(ell.size, f_sky),
        noise=np.full(ell.size, noise), meta=header | (meta or {}),
        transfer=None if column is None else column[ell],
    )
