"""Observatories: frames, map rotation, the observation (field of view, data-driven reference
map, Poisson counts), pseudo-C_l and their expected mean and covariance.

References: analytic maps of known harmonics (a dipole along a chosen axis, ``n_x n_y``),
healpy (``rotate_alm``, ``anafast``, ``synalm``), ``scipy.special.sph_harm_y``, and Monte Carlo
ensembles of Gaussian skies observed pixel by pixel.
"""

import healpy as hp
import numpy as np
import pytest
from scipy.special import sph_harm_y

from crsky.inference import data, models
from crsky.io import tables
from crsky.physics import observatory as ob
from crsky.resources import resolve


def _directions(nside):
    return np.stack(hp.pix2vec(nside, np.arange(12 * nside**2)), axis=-1)


def test_frame_puts_b0_on_the_fitted_direction():
    # Reference: the unit vector of RA 229.2, Dec 11.4 (Abeysekara et al. 2019) by hand.
    r = ob.simulation_frame()
    ra, dec = np.radians(229.2), np.radians(11.4)
    b0 = [np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]
    np.testing.assert_allclose(r[:, 2], b0, atol=1e-15)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(ob.simulation_frame(field_sign=-1)[:, 2], -np.asarray(b0),
                               atol=1e-15)
    # a gradient given on the sky comes back on the sky
    g = ob.gradient_from_sky(r, 10.0, -40.0)
    np.testing.assert_allclose(r @ g, ob.radec_to_vector(10.0, -40.0), atol=1e-14)


def test_rotation_of_known_harmonics_healpy_and_jax():
    """m_sim = n_x n_y rotated is (R^T n)_x (R^T n)_y exactly (band-limited, l = 2)."""
    nside, r = 16, ob.simulation_frame(roll_deg=30.0)
    n = _directions(nside)
    u = n @ r  # R^T n for every pixel
    expected = u[:, 0] * u[:, 1]
    sim = n[:, 0] * n[:, 1]
    # healpy map2alm (iter=3) of an l = 2 map is exact to ~1e-13 at nside 16
    np.testing.assert_allclose(ob.rotate_map_healpy(sim, r, lmax=4), expected, atol=1e-12)
    alm = hp.map2alm(sim, lmax=4, iter=10)
    np.testing.assert_allclose(np.asarray(ob.alm_to_map_rotated(alm, r, nside, 4)), expected,
                               atol=1e-12)


def test_jax_rotation_matches_healpy_for_a_random_band_limited_sky():
    nside, lmax = 8, 12
    alm = hp.synalm(1.0 / (1 + np.arange(lmax + 1)) ** 2, lmax=lmax)
    r = ob.simulation_frame(b0=[0.3, -0.2, 0.9])
    reference = alm.copy()
    hp.rotate_alm(reference, *ob.zyz_angles(r), lmax=lmax)
    # both evaluate the same band-limited field at pixel centres: float64 round-off only
    np.testing.assert_allclose(np.asarray(ob.alm_to_map_rotated(alm, r, nside, lmax)),
                               hp.alm2map(reference, nside, lmax=lmax), atol=1e-12)


def test_legendre_table_matches_scipy():
    theta = np.linspace(0.05, 3.1, 7)
    table = ob.normalised_legendre(30, theta)
    ell = np.arange(31)
    ref = sph_harm_y(ell[None, :, None], ell[:, None, None], theta[None, None, :], 0.0).real
    ref = np.where(ell[None, :, None] >= ell[:, None, None], ref, 0.0)
    np.testing.assert_allclose(table, ref, atol=1e-12)


def test_dipole_along_the_earth_axis_vanishes_and_equatorial_dipole_survives():
    nside = 16
    n = _directions(nside)
    mask = ob.field_of_view(nside, -28.76, 66.76)
    polar = ob.observe_map(1e-3 * n[:, 2], mask)  # no shot noise
    # a declination-only dipole is removed ring by ring: zero to round-off (map values ~1e-3)
    assert np.max(np.abs(polar)) < 1e-14
    equatorial = ob.observe_map(1e-3 * n[:, 0], mask)
    # in the field of view the equatorial dipole is kept; the ratio n/ref - 1 equals the
    # linear filter up to O(dI^2) = 1e-6 relative
    np.testing.assert_allclose(equatorial[mask], 1e-3 * n[mask, 0], rtol=0, atol=2e-9)
    assert np.all(equatorial[~mask] == 0)


def test_pseudo_cl_is_healpy_anafast_of_the_masked_map():
    nside = 16
    mask = ob.field_of_view(nside, -90, -23.578)
    sky = hp.synfast(np.ones(30), nside)
    observed = ob.observe_map(1e-3 * sky, mask)
    masked = np.where(mask, observed, 0.0)
    np.testing.assert_allclose(ob.pseudo_cl(observed, 20), hp.anafast(masked, lmax=20),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.asarray(ob.pseudo_cl(observed, 20, method="jax")),
                               hp.anafast(masked, lmax=20), rtol=1e-9, atol=1e-25)


def test_full_band_no_filter_kernels_are_the_identity():
    """Whole sky: K^m_{lL} is the HEALPix quadrature of orthonormality, = delta_lL up to the
    pixelisation error (~1e-3 at nside 16, l <= 10)."""
    nside = 16
    kernels = ob.coupling_kernels(nside, np.ones(12 * nside**2, bool), 10, 10)
    for m in range(1, 11):
        np.testing.assert_allclose(kernels[m][m:, m:], np.eye(11 - m), atol=5e-3)


@pytest.mark.parametrize("band", [(-90.0, -23.578), (-28.76, 66.76)])
def test_mixing_matrix_predicts_monte_carlo_pseudo_cl(band):
    """>= 200 Gaussian skies, observed with Poisson counts: the mean pseudo-C_l agrees with the
    mixing-matrix prediction within 4 Monte Carlo standard errors at every l, and the Gaussian
    standard deviation with the sample one within 25 % (the standard error of a standard
    deviation from 240 draws is 5 %)."""
    nside, lmax, n_mc = 16, 20, 240
    mask = ob.field_of_view(nside, *band)
    lmax_sky = 3 * nside - 1
    ell = np.arange(lmax_sky + 1)
    cl = np.where(ell > 0, 1e-6 / (ell + 1.0) ** 2, 0.0)
    kernels = ob.coupling_kernels(nside, mask, lmax, lmax_sky)
    events = 1e7
    f_sky = mask.mean()
    noise = data.pseudo_noise_level(f_sky, events)
    mean, cov = ob.pseudo_cl_moments(kernels, np.arange(lmax + 1), cl, noise / f_sky)
    np.testing.assert_allclose(ob.pseudo_cl_mean(kernels, np.arange(lmax + 1), cl, noise / f_sky),
                               mean, rtol=1e-12)
    rng = np.random.default_rng(3)
    draws = np.array([
        ob.pseudo_cl(ob.observe_map(ob.gaussian_sky(cl, nside, rng), mask, events=events,
                                    rng=rng), lmax)
        for _ in range(n_mc)
    ])
    mc_mean, mc_std = draws.mean(0)[1:], draws.std(0, ddof=1)[1:]
    pulls = (mc_mean - np.asarray(mean)[1:]) / (mc_std / np.sqrt(n_mc))
    assert np.max(np.abs(pulls)) < 4, pulls
    np.testing.assert_allclose(np.sqrt(np.diag(np.asarray(cov)))[1:], mc_std, rtol=0.25)
    # the mixing matrix is the noise-free mean
    np.testing.assert_allclose(np.asarray(ob.mixing_matrix(kernels)) @ cl,
                               ob.pseudo_cl_moments(kernels, np.arange(lmax + 1), cl)[0],
                               rtol=1e-12)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="dec_deg"):
        ob.radec_to_vector(0.0, 95.0)
    with pytest.raises(ValueError, match="dec_max_deg"):
        ob.field_of_view(8, -30.0, 91.0)
    with pytest.raises(ValueError, match="dec_min_deg"):
        ob.field_of_view(8, 10.0, -10.0)
    with pytest.raises(ValueError, match="b0"):
        ob.simulation_frame(b0=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="b0"):
        ob.simulation_frame(b0=[1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="field_sign"):
        ob.simulation_frame(field_sign=2)
    mask = ob.field_of_view(8, -30.0, 60.0)
    with pytest.raises(ValueError, match="events"):
        ob.observe_map(np.zeros(768), mask, events=0)
    with pytest.raises(ValueError, match="lmax_sky"):
        ob.coupling_kernels(8, mask, 10, 24)
    with pytest.raises(ValueError, match="lmax"):
        ob.coupling_kernels(8, mask, 20, 15)
    experiments = tables.load_experiments(resolve("data", "experiments.toml"))
    with pytest.raises(ValueError, match="experiment must be one of"):
        data.find_experiment(experiments, "auger")
    assert data.find_experiment(experiments, "icecube").name == "IceCube"


def test_shipped_experiments_table():
    experiments = tables.load_experiments(resolve("data", "experiments.toml"))
    assert {"IceCube", "HAWC", "HAWC_IceCube", "ARGO-YBJ", "Tibet-ASgamma"} <= set(experiments)
    for exp in experiments.values():
        assert all(exp.sources[k] for k in tables.EXPERIMENT_KEYS)
    # derived bands reproduce the published f_sky (that is how they were chosen)
    for name, f_sky in (("IceCube", 0.3), ("HAWC", 0.7)):
        exp = experiments[name]
        assert "derived" in exp.sources["declination_deg"]
        assert ob.band_sky_fraction(exp.dec_min_deg, exp.dec_max_deg) == pytest.approx(
            f_sky, abs=2e-5)
    assert (experiments["ARGO-YBJ"].dec_min_deg, experiments["ARGO-YBJ"].dec_max_deg) == (
        -20.0, 80.0)


def test_experiments_table_errors(tmp_path):
    text = (resolve("data", "experiments.toml")).read_text()
    bad = tmp_path / "e.toml"
    bad.write_text(text.replace("value = [-20.0, 80.0]", "value = [-20.0, 95.0]"))
    with pytest.raises(ValueError, match=r"\[ARGO-YBJ\] declination_deg: dec_max_deg"):
        tables.load_experiments(bad)


def test_table_kind_must_match_the_model(tmp_path):
    table = tables.load_cl_table(resolve("data", "mock_icecube_hawc_pseudo_cl.csv"))
    assert table.kind == "pseudo"
    spectrum = models.spectrum_data(table, 1, 18, ["HAWC"])
    with pytest.raises(ValueError, match="pseudo spectra but the model has no experiment"):
        models.check_observation(spectrum, None)
    full = models.spectrum_data(tables.load_cl_table(resolve("data", "mock_icecube_hawc_cl.csv")),
                                1, 18, ["HAWC"])
    experiments = tables.load_experiments(resolve("data", "experiments.toml"))
    op = data.pseudo_cl_forward(experiments["HAWC"], 16, 18)
    with pytest.raises(ValueError, match="full_sky"):
        models.check_observation(full, op)
    bad = tmp_path / "k.csv"
    bad.write_text("# spectrum: partial\nell,cl,error,experiment,f_sky,noise\n1,1,1,X,0.5,0\n")
    with pytest.raises(ValueError, match="'spectrum' must be one of"):
        tables.load_cl_table(bad)


@pytest.mark.parametrize("argv, name", [
    (["--experiment", "auger"], "experiment"),
    (["--experiment", "hawc", "--b0-dec", "100"], "--b0-dec"),
    (["--experiment", "hawc", "--events", "0"], "--events"),
])
def test_observe_cli_rejects_bad_input_before_compute(tmp_path, capsys, argv, name):
    from crsky.cli import main

    missing = tmp_path / "no_such_run.h5"  # never opened: the checks come first
    code = main(["observe", str(missing), *argv, "--out", str(tmp_path / "o.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert name in err and len(err.strip().splitlines()) == 1


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _observe(tiny_run, tmp_path, capsys, *extra, out="o.csv"):
    from crsky.cli import main

    code = main(["observe", str(tiny_run), "--experiment", "hawc", "--ell-max", "3",
                 "--events", "1e8", "--out", str(tmp_path / out), *extra])
    return code, capsys.readouterr()


def test_observe_cli_draws_the_observed_sky_map(tiny_run, tmp_path, capsys):
    """The PNG is written (a PNG by its signature, read back by matplotlib), next to the table;
    an existing figure is replaced only with --overwrite."""
    import matplotlib.image as mpimg

    png = tmp_path / "sky.png"
    code, cap = _observe(tiny_run, tmp_path, capsys, "--sky-map", str(png))
    assert code == 0, cap.err
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(png)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert (tmp_path / "o.csv").exists()
    code, cap = _observe(tiny_run, tmp_path, capsys, "--sky-map", str(png), out="p.csv")
    assert code == 2 and "--sky-map" in cap.err and "--overwrite" in cap.err
    assert len(cap.err.strip().splitlines()) == 1 and not (tmp_path / "p.csv").exists()
    code, cap = _observe(tiny_run, tmp_path, capsys, "--sky-map", str(png), "--overwrite")
    assert code == 0, cap.err


@pytest.mark.parametrize("path, message", [
    ("no_such_folder/sky.png", "--sky-map"),
    ("sky.jpg", "--sky-map must name a .png"),
    ("o.csv", "--sky-map"),
])
def test_observe_cli_bad_sky_map_path_is_one_line(tiny_run, tmp_path, capsys, path, message):
    code, cap = _observe(tiny_run, tmp_path, capsys, "--sky-map", str(tmp_path / path))
    assert code == 2 and message in cap.err and len(cap.err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()  # refused before any compute


@pytest.mark.parametrize("t_omega", ["20", "2e1", "20.0", "20.000001", "0.2e2"])
def test_observe_cli_accepts_the_last_time_in_any_float_form(tiny_run, tmp_path, capsys,
                                                            t_omega):
    from crsky.io import runfile

    assert float(runfile.load(tiny_run).t_omega[-1]) == pytest.approx(20.0, rel=1e-12)
    code, cap = _observe(tiny_run, tmp_path, capsys, "--t-omega", t_omega)
    assert code == 0, cap.err


@pytest.mark.parametrize("t_omega", ["19.9", "2", "nan", "inf", "-20"])
def test_observe_cli_rejects_other_times(tiny_run, tmp_path, capsys, t_omega):
    code, cap = _observe(tiny_run, tmp_path, capsys, "--t-omega", t_omega)
    assert code == 2 and "--t-omega" in cap.err and len(cap.err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_observed_sky_map_figure_and_bad_input():
    from crsky.plotting.sky import observed_sky_map

    nside = 8
    mask = ob.field_of_view(nside, -28.76, 66.76)
    observed = ob.observe_map(1e-3 * _directions(nside)[:, 0], mask)
    fig = observed_sky_map(observed, mask, "HAWC", dec_range_deg=(-28.76, 66.76))
    assert fig.axes and "HAWC" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="mask"):
        observed_sky_map(observed, mask[:10])
    with pytest.raises(ValueError, match="dec_range_deg"):
        observed_sky_map(observed, mask, dec_range_deg=(10.0,))
    with pytest.raises(ValueError, match="observed"):
        observed_sky_map(np.full(12 * nside**2, np.nan), mask)


@pytest.mark.parametrize("band, lmax", [((-90.0, -23.578), 36), ((-28.76, 66.76), 18)])
def test_mixing_check_agrees_on_isotropic_gaussian_skies(band, lmax):
    """200 healpy.synfast skies (band-limited to 3 nside - 1, isotropic), observed without
    shot noise: the paired deviation <C~ - M C> vanishes within Monte Carlo errors, every pull
    below 4 (36 or 18 correlated pulls) and Hotelling's joint test not rejecting at 1e-3."""
    nside, n_mc = 16, 200
    lmax_sky = 3 * nside - 1
    ell = np.arange(lmax_sky + 1)
    cl = np.where(ell > 0, 1e-6 / (ell + 1.0) ** 2, 0.0)
    mask = ob.field_of_view(nside, *band)
    mixing = ob.mixing_matrix(ob.coupling_kernels(nside, mask, lmax))
    np.random.seed(5)  # noqa: NPY002 (synfast draws from numpy's global generator)
    skies = [hp.synfast(cl, nside, lmax=lmax_sky) for _ in range(n_mc)]
    pseudo = np.array([ob.pseudo_cl(ob.observe_map(m, mask), lmax) for m in skies])
    full = np.array([hp.anafast(m, lmax=lmax_sky, iter=3) for m in skies])
    check = ob.mixing_check(pseudo, full, mixing)
    assert np.max(np.abs(check["significance"][1:])) < 4, check["significance"]
    assert check["p_value"] > 1e-3
    assert np.max(check["relative_error"][1:]) < 0.1  # the test has power at the 10 % level
    # an anisotropic sky (every a_lm with m = 1 tripled) is caught
    alms = [hp.map2alm(m, lmax=lmax_sky, iter=3) for m in skies]
    m1 = hp.Alm.getlm(lmax_sky)[1] == 1
    boosted = [hp.alm2map(np.where(m1, 3 * a, a), nside, lmax=lmax_sky) for a in alms]
    pseudo_b = np.array([ob.pseudo_cl(ob.observe_map(m, mask), lmax) for m in boosted])
    full_b = np.array([hp.anafast(m, lmax=lmax_sky, iter=3) for m in boosted])
    assert ob.mixing_check(pseudo_b, full_b, mixing)["p_value"] < 1e-6


def test_mixing_check_bad_input():
    with pytest.raises(ValueError, match="pseudo_spectra"):
        ob.mixing_check(np.ones((1, 4)), np.ones((1, 6)), np.ones((4, 6)))
    with pytest.raises(ValueError, match="full_sky_spectra"):
        ob.mixing_check(np.ones((3, 4)), np.ones((2, 6)), np.ones((4, 6)))
    with pytest.raises(ValueError, match="mixing"):
        ob.mixing_check(np.ones((3, 4)), np.ones((3, 6)), np.ones((4, 5)))


def _log_likelihood(spectrum, experiment, p, q1, fiducial=None):
    from numpyro.infer.util import log_density

    priors = {"p": models.Prior("uniform", 0.01, 0.99),
              "q1": models.Prior("loguniform", 1e-12, 1e-2)}
    kwargs = {"data": spectrum, "priors": priors, "experiment": experiment,
              "fiducial": fiducial}
    _, trace = log_density(models.spectrum_p_model, (), kwargs, {"p": p, "q1": q1})
    return float(trace["cl_obs"]["fn"].log_prob(trace["cl_obs"]["value"]).sum())


@pytest.mark.parametrize("pseudo", [True, False])
def test_fiducial_covariance_option(pseudo):
    """fiducial = the model point reproduces the default likelihood (same covariance there);
    with the covariance held, only the mean q1 * shape(p) moves, so at fixed p the Gaussian
    log-likelihood is exactly quadratic in q1 (third finite difference 0 to rounding), which
    it is not when the covariance follows the model."""
    name = "mock_icecube_hawc_pseudo_cl.csv" if pseudo else "mock_icecube_hawc_cl.csv"
    spectrum = models.spectrum_data(tables.load_cl_table(resolve("data", name)), 1, 18,
                                    ["HAWC"])
    experiment = None
    if pseudo:
        experiments = tables.load_experiments(resolve("data", "experiments.toml"))
        experiment = [data.pseudo_cl_forward(experiments["HAWC"], 16, 18)]  # small kernels
    fid = {"p": 0.5, "q1": 1e-6}
    assert _log_likelihood(spectrum, experiment, 0.5, 1e-6, fid) == pytest.approx(
        _log_likelihood(spectrum, experiment, 0.5, 1e-6), rel=1e-10)
    assert _log_likelihood(spectrum, experiment, 0.6, 2e-6, fid) != pytest.approx(
        _log_likelihood(spectrum, experiment, 0.6, 2e-6), rel=1e-6)
    q1 = 1e-6 * np.array([0.8, 1.0, 1.2, 1.4])
    held = np.array([_log_likelihood(spectrum, experiment, 0.55, q, fid) for q in q1])
    moving = np.array([_log_likelihood(spectrum, experiment, 0.55, q) for q in q1])
    assert abs(np.diff(held, 3)[0]) < 1e-8 * abs(np.diff(held, 2)[0])
    assert abs(np.diff(moving, 3)[0]) > 1e-4 * abs(np.diff(moving, 2)[0])
    with pytest.raises(ValueError, match="fiducial"):
        _log_likelihood(spectrum, experiment, 0.5, 1e-6, {"p": 0.5})
    with pytest.raises(ValueError, match="fiducial p"):
        _log_likelihood(spectrum, experiment, 0.5, 1e-6, {"p": 1.5, "q1": 1e-6})


@pytest.mark.parametrize("pseudo", [True, False])
def test_fiducial_of_the_sigma_model(pseudo):
    """As for spectrum_p: the fiducial at the model point reproduces the default likelihood;
    held elsewhere, the variance (cosmic and emulator error) no longer moves with c1, so at fixed
    sigma and r_L/Lc the log-likelihood is exactly quadratic in c1; keys are checked."""
    from numpyro.infer.util import log_density

    emulator = tables.load_emulator(resolve("data", "emulator.csv"), degree=2)
    if pseudo:
        table = tables.load_cl_table(resolve("data", "mock_icecube_hawc_pseudo_cl.csv"))
        experiments = tables.load_experiments(resolve("data", "experiments.toml"))
        experiment = [data.pseudo_cl_forward(experiments["HAWC"], 16, 8, 32)]  # emulator l<=32
    else:
        table, experiment = tables.load_cl_table(resolve("data", "simulated_cl_sigma1.csv")), None
    spectrum = models.spectrum_data(table, 1, 8, ["HAWC"] if pseudo else None)
    c1 = float(spectrum.cl[0])
    priors = models.resolve_priors(models.spectrum_sigma_parameters(spectrum, emulator), None)

    def loglik(point, fiducial=None):
        kwargs = {"data": spectrum, "emulator": emulator, "priors": priors,
                  "experiment": experiment, "fiducial": fiducial}
        _, trace = log_density(models.spectrum_sigma_model, (), kwargs, point)
        return float(trace["cl_obs"]["fn"].log_prob(trace["cl_obs"]["value"]).sum())

    at = {"sigma": 1.0, "rl_over_lc": 0.1, "c1": c1}
    assert loglik(at, at) == pytest.approx(loglik(at), rel=1e-10)
    held = np.array([loglik(at | {"c1": c1 * f}, at) for f in (0.8, 1.0, 1.2, 1.4)])
    moving = np.array([loglik(at | {"c1": c1 * f}) for f in (0.8, 1.0, 1.2, 1.4)])
    assert abs(np.diff(held, 3)[0]) < 1e-8 * abs(np.diff(held, 2)[0])
    assert abs(np.diff(moving, 3)[0]) > 1e-4 * abs(np.diff(moving, 2)[0])
    with pytest.raises(ValueError, match="fiducial must be a mapping with keys sigma"):
        loglik(at, {"p": 0.5, "q1": 1e-6})
    with pytest.raises(ValueError, match="fiducial c1"):
        loglik(at, at | {"c1": -1.0})


def test_fiducial_key_of_a_run_file(tmp_path):
    from crsky.pipelines.inference import build

    shipped = resolve("run_file", "mock_icecube_hawc_pseudo_p")
    text = shipped.read_text().replace(
        '"../data/mock_icecube_hawc_pseudo_cl.csv"',
        repr(str(resolve("data", "mock_icecube_hawc_pseudo_cl.csv"))).replace("'", '"'))
    text = "\n".join(line for line in text.splitlines() if not line.startswith("fiducial"))
    run = tmp_path / "run.toml"
    run.write_text(text.replace("[data]", "fiducial = {p = 0.5, q1 = 1e-6}\n[data]", 1))
    assert build(run)["kwargs"]["fiducial"] == {"p": 0.5, "q1": 1e-6}
    table = text.replace('error_model = "cosmic_variance"', 'error_model = "table"')
    for base, line, message in [
        (text, "fiducial = {p = 0.5}", "fiducial must give numbers p and q1"),
        (text, "fiducial = {p = 0.5, q = 1}", "unknown key 'q'"),
        (table, "fiducial = {p = 0.5, q1 = 1e-6}", "cosmic_variance"),
        (text, 'fiducial = "truth"', "fiducial must be one of 'model', 'iterate', got 'truth'"),
        (table, 'fiducial = "iterate"', "cosmic_variance"),
    ]:
        run.write_text(base.replace("[data]", f"{line}\n[data]", 1))
        with pytest.raises(ValueError, match=message):
            build(run)
    run.write_text(text.replace("[data]", 'fiducial = "model"\n[data]', 1))
    assert not build(run)["iterate_fiducial"]
    assert not build(resolve("run_file", "mock_icecube_hawc_p"))["iterate_fiducial"]  # full sky


def test_pseudo_cl_run_files_iterate_the_fiducial_by_default():
    """Pseudo-C_l with the Gaussian covariance: the run file's fit holds the covariance at the
    self-consistent fiducial, found before sampling and recorded with the data's header; the
    MAP of the model with that fiducial (fit_laplace, a separate fit) reproduces it."""
    from crsky.inference.fitting import fit_laplace
    from crsky.pipelines.inference import build, model_kwargs

    setup = build(resolve("run_file", "mock_icecube_hawc_pseudo_p"))
    assert setup["iterate_fiducial"] and "fiducial" not in setup["kwargs"]
    kwargs = model_kwargs(setup)
    found = setup["data_meta"]["fiducial"]
    assert found["iterate"] == kwargs["fiducial"] and found["iterations"] >= 1
    mode = fit_laplace(setup["model"], kwargs, draws=10).mode
    assert float(mode["p"]) == pytest.approx(kwargs["fiducial"]["p"], rel=2e-3)
    assert float(mode["q1"]) == pytest.approx(kwargs["fiducial"]["q1"], rel=2e-3)


def test_fiducial_key_of_sigma_and_beam_run_files(tmp_path):
    from crsky.pipelines.inference import build

    text = resolve("run_file", "simulated_sigma").read_text()
    for name in ("simulated_cl_sigma1.csv", "emulator.csv"):
        text = text.replace(f'"../data/{name}"',
                            repr(str(resolve("data", name))).replace("'", '"'))
    text = text.replace('error_model = "table"', 'error_model = "cosmic_variance"')
    run = tmp_path / "sigma.toml"
    run.write_text(text)
    assert build(run)["iterate_fiducial"] is None  # full-sky default: at the model
    held = "fiducial = {sigma = 1.0, rl_over_lc = 0.1, c1 = 8.0}\n[data]"
    run.write_text(text.replace("[data]", held, 1))
    assert build(run)["kwargs"]["fiducial"] == {"sigma": 1.0, "rl_over_lc": 0.1, "c1": 8.0}
    run.write_text(text.replace("[data]", 'fiducial = "iterate"\n[data]', 1))
    assert set(build(run)["iterate_fiducial"]) == {"sigma", "rl_over_lc", "c1"}
    run.write_text(text.replace("[data]", "fiducial = {p = 0.5, q1 = 1e-6}\n[data]", 1))
    with pytest.raises(ValueError, match="unknown key 'p'"):
        build(run)
    beam = resolve("run_file", "milagro_beam").read_text()
    beam = beam.replace('"../data/', '"' + str(resolve("data", "experiments.toml").parent) + "/")
    run.write_text(beam.replace("[data]", 'fiducial = "iterate"\n[data]', 1))
    with pytest.raises(ValueError, match="'fiducial' applies to the spectrum models only"):
        build(run)


def test_transfer_column_scales_the_signal_pseudo_cl():
    """Noise-free rows: with transfer T the model is N(C~; T mu, T Sigma T), so its log density
    equals that of C~/T without transfer minus sum(ln T) (change of variables), for any T."""
    import dataclasses

    from numpyro.infer.util import log_density

    table = tables.load_cl_table(resolve("data", "mock_icecube_hawc_pseudo_cl.csv"))
    spectrum = dataclasses.replace(models.spectrum_data(table, 1, 18, ["HAWC"]), noise=(0.0,))
    experiments = tables.load_experiments(resolve("data", "experiments.toml"))
    experiment = [data.pseudo_cl_forward(experiments["HAWC"], 16, 18)]
    priors = {"p": models.Prior("uniform", 0.01, 0.99),
              "q1": models.Prior("loguniform", 1e-12, 1e-2)}
    transfer = 1.0 + 0.3 / spectrum.ell  # a made-up, l-dependent transfer
    point = {"p": 0.45, "q1": 1.3e-6}

    def log_joint(spec):
        kwargs = {"data": spec, "priors": priors, "experiment": experiment}
        return float(log_density(models.spectrum_p_model, (), kwargs, point)[0])

    with_transfer = log_joint(dataclasses.replace(spectrum, transfer=transfer))
    divided = log_joint(dataclasses.replace(spectrum, cl=spectrum.cl / transfer))
    assert with_transfer == pytest.approx(divided - np.sum(np.log(transfer)), rel=1e-10)
    ones = log_joint(dataclasses.replace(spectrum, transfer=np.ones(spectrum.ell.size)))
    assert ones == pytest.approx(log_joint(spectrum), rel=1e-12)


def test_transfer_column_in_tables(tmp_path):
    """Read and written; refused when not positive and in full-sky tables."""
    import dataclasses

    table = tables.load_cl_table(resolve("data", "mock_icecube_hawc_pseudo_cl.csv"))
    with_transfer = dataclasses.replace(table, transfer=np.linspace(1.3, 1.0, table.ell.size))
    path = tmp_path / "t.csv"
    tables.write_cl_table(path, with_transfer)
    back = tables.load_cl_table(path)
    np.testing.assert_array_equal(back.transfer, with_transfer.transfer)
    assert tables.load_cl_table(resolve("data", "mock_icecube_hawc_pseudo_cl.csv")).transfer is None
    text = path.read_text()
    first_row = next(i for i, line in enumerate(text.splitlines()) if line[:1].isdigit())
    lines = text.splitlines()
    lines[first_row] = lines[first_row].rsplit(",", 1)[0] + ",0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="transfer must be > 0"):
        tables.load_cl_table(path)
    full = tmp_path / "f.csv"
    full.write_text("ell,cl,error,experiment,f_sky,noise,transfer\n1,1,1,X,0.5,0,1\n")
    with pytest.raises(ValueError, match="'transfer' applies to pseudo-C_l tables only"):
        tables.load_cl_table(full)


def test_simulated_transfer_is_one_for_isotropic_skies(tiny_run):
    """An ensemble whose basis maps are independent isotropic Gaussian skies makes an isotropic
    dI (a fixed linear combination), whatever the rotation: T_l = 1 within 4 Monte Carlo errors
    at every l. The same skies with their dipole along the simulation frame's axis only (l = 1,
    m = 0: a dipole along B0, as a gradient along B0 gives) lose 4 % of the dipole power to the
    ring filter (B0 at Dec 11.4 deg) where an isotropic dipole loses a third: T_1 ~ 0.96 / (2/3)
    ~ 1.4, far outside the errors."""
    import dataclasses

    from crsky.io import runfile
    from crsky.pipelines.tabulate import simulated_transfer

    run = runfile.load(tiny_run)
    nside, n_real, lmax = 8, 200, 6
    ell = np.arange(3 * nside)
    cl = np.where(ell > 0, 1.0 / (ell + 1.0) ** 2, 0.0)
    rng = np.random.default_rng(11)
    maps = np.stack([np.stack([ob.gaussian_sky(cl, nside, rng) for _ in range(6)], -1)
                     for _ in range(n_real)])
    fake = dataclasses.replace(run, config=dataclasses.replace(run.config, nside=nside),
                               arrays=run.arrays | {"maps_last": maps})
    hawc = tables.load_experiments(resolve("data", "experiments.toml"))["HAWC"]
    transfer, error = simulated_transfer(fake, hawc, lmax)
    assert np.all(np.abs(transfer[1:] - 1) < 4 * error[1:]), (transfer, error)
    assert np.max(error[1:]) < 0.1  # the test has power at the 10 % level
    ell_alm, m_alm = hp.Alm.getlm(3 * nside - 1)
    keep = (ell_alm != 1) | (m_alm == 0)
    axis = np.stack([np.stack([
        hp.alm2map(keep * hp.map2alm(maps[r, :, i], iter=3), nside)
        for i in range(6)], -1) for r in range(n_real)])
    aligned = dataclasses.replace(fake, arrays=run.arrays | {"maps_last": axis})
    transfer, error = simulated_transfer(aligned, hawc, lmax)
    assert transfer[1] - 1 > 4 * error[1] and transfer[1] > 1.2, (transfer[1], error[1])


def test_observe_cli_writes_the_transfer_column(tiny_run, tmp_path, capsys):
    code, cap = _observe(tiny_run, tmp_path, capsys, "--transfer")
    assert code == 0, cap.err
    table = tables.load_cl_table(tmp_path / "o.csv")
    assert table.transfer is not None and table.transfer.shape == table.ell.shape
    assert np.all(np.isfinite(table.transfer)) and np.all(table.transfer > 0)
    assert "Monte Carlo errors" in table.meta["transfer"]
    spectrum = models.spectrum_data(table, 1, 3)
    np.testing.assert_array_equal(spectrum.transfer, table.transfer)
