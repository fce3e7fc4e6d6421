"""crsky.physics.sky: Liouville mapping (rel.-diffusion paper eq. (2.1)) and per-realisation
summaries."""

import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky.io import fits
from crsky.physics import sky, spectra

NSIDE = 8
NPIX = 12 * NSIDE**2
DIRECTIONS = np.stack(hp.pix2vec(NSIDE, np.arange(NPIX)), axis=-1)


def random_trajectories(n_times: int = 2, seed: int = 0):
    """Random r (Lc) and unit p of shape (n_times, Npix, 3)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(n_times, NPIX, 3)) * 3.0
    p = rng.normal(size=(n_times, NPIX, 3))
    return r, p / np.linalg.norm(p, axis=-1, keepdims=True)


def test_relative_intensity_formula():
    # Reference: eq. (2.1) written out in numpy, dI = r.g - 3 p.(K g); 1e-13 (round-off).
    r, p = random_trajectories()
    g = np.array([0.2, -0.5, 1.0])
    K = np.random.default_rng(1).normal(size=(3, 3))
    expected = r @ g - 3 * p @ (K @ g)
    np.testing.assert_allclose(sky.relative_intensity(r, p, g, K), expected, rtol=1e-13)
    np.testing.assert_allclose(sky.relative_intensity(r[1], p[1], g, K), expected[1], rtol=1e-13)
    per_time_K = np.stack([K, 2 * K])
    np.testing.assert_allclose(
        sky.relative_intensity(r, p, g, per_time_K)[1], r[1] @ g - 6 * p[1] @ (K @ g), rtol=1e-13
    )
    np.testing.assert_allclose(sky.reference_gradient("parallel", 2.0), [0, 0, 2])
    np.testing.assert_allclose(sky.reference_gradient("perpendicular"), [1, 0, 0])


def test_liouville_dipole_is_exact():
    # r = a n, p = n gives dI = n.(a g - 3 K g): a pure dipole with C_1 = 4 pi |a g - 3 K g|^2 / 9
    # and no other multipole (analytic). 1e-6 relative: iter=10 HEALPix quadrature at nside 8
    # for a dipole (measured 3e-7); the other C_l vanish to 1e-6 of C_1.
    a, g = 2.5, np.array([0.0, 0.0, 1.0])
    K = np.diag([0.3, 0.3, 1.1])
    plan = spectra.make_plan(NSIDE, 12)
    summary = sky.realisation_summary(a * DIRECTIONS[None], DIRECTIONS[None], plan, iter=10)
    cl = np.asarray(sky.liouville_spectrum(summary["cross_spectra"], g, K))[0]
    expected = np.zeros(13)
    expected[1] = 4 * np.pi * np.sum((a * g - 3 * K @ g) ** 2) / 9
    np.testing.assert_allclose(cl, expected, rtol=1e-6, atol=1e-6 * expected[1])


def test_summary_reproduces_direct_spectra():
    # Reference: C_l of the dI map computed directly (spectra.power_spectrum), healpy.map2alm for
    # the low a_lm, and numpy pixel means; 1e-11 relative (round-off through the 6x6 contraction).
    r, p = random_trajectories(seed=2)
    g, K = np.array([1.0, 0.3, -0.2]), np.diag([0.5, 0.7, 2.0])
    plan = spectra.make_plan(NSIDE)
    summary = sky.realisation_summary(r, p, plan)
    assert summary["cross_spectra"].shape == (2, 3 * NSIDE, 6, 6)
    assert summary["alm_low"].shape == (2, 6, 3)
    direct = spectra.power_spectrum(sky.relative_intensity(r, p, g, K), plan=plan)
    via_x = sky.liouville_spectrum(summary["cross_spectra"], g, K)
    np.testing.assert_allclose(via_x, direct, rtol=1e-11)
    basis = np.concatenate([r, p], axis=-1)
    ref_alm = hp.map2alm(basis[1, :, 4], pol=False)[[0, 1, 3 * NSIDE]]
    np.testing.assert_allclose(summary["alm_low"][1, 4], ref_alm, rtol=1e-11)
    np.testing.assert_allclose(summary["mean"], basis.mean(axis=1), rtol=1e-12)
    moments = np.einsum("tpa,tpb->tab", basis, basis) / NPIX
    np.testing.assert_allclose(summary["second_moments"], moments, rtol=1e-12)
    healpy_summary = sky.realisation_summary(r, p, lmax=3 * NSIDE - 1, method="healpy")
    for key, value in summary.items():
        np.testing.assert_allclose(healpy_summary[key], value, rtol=1e-10, atol=1e-13)


def test_summary_under_jit_and_grad_in_gradient():
    # jit reproduces the eager summary; d C_l / d g from grad equals the analytic
    # 2 (dc/dg)^T X_l c of the quadratic form (1e-10).
    r, p = random_trajectories(n_times=1, seed=3)
    plan = spectra.make_plan(NSIDE, 10)
    eager = sky.realisation_summary(r, p, plan)
    jitted = jax.jit(sky.realisation_summary)(r, p, plan)
    np.testing.assert_allclose(jitted["cross_spectra"], eager["cross_spectra"], rtol=1e-12)
    K = np.diag([0.5, 0.5, 1.5])
    g0 = jnp.array([0.1, 0.2, 1.0])
    grad = jax.grad(lambda g: sky.liouville_spectrum(eager["cross_spectra"], g, K)[0, 3])(g0)
    dc_dg = np.concatenate([np.eye(3), -3 * K], axis=0)
    c = np.asarray(sky.liouville_coefficients(g0, K))
    np.testing.assert_allclose(grad, 2 * dc_dg.T @ eager["cross_spectra"][0, 3] @ c, rtol=1e-10)


def test_write_fits_round_trip(tmp_path):
    # Reference: healpy.read_map reads back the RING maps bit for bit.
    r, p = random_trajectories(n_times=2, seed=4)
    maps = np.asarray(sky.relative_intensity(r, p, np.array([0, 0, 1.0]), np.eye(3)))
    path = fits.write_fits(tmp_path / "dI.fits", maps)
    np.testing.assert_array_equal(hp.read_map(path, field=None, nest=False), maps)
    with pytest.raises(OSError):
        fits.write_fits(path, maps)


def test_bad_input_raises():
    r, p = random_trajectories(n_times=1)
    g, K = np.array([0, 0, 1.0]), np.eye(3)
    with pytest.raises(ValueError, match="r and p"):
        sky.relative_intensity(r, p[:, :-1], g, K)
    with pytest.raises(ValueError, match="r"):
        sky.realisation_summary(r[:, :-1], p[:, :-1])
    with pytest.raises(ValueError, match="p"):
        sky.relative_intensity(r, np.where(np.arange(3) == 1, np.nan, p), g, K)
    with pytest.raises(ValueError, match="grad_n_over_n"):
        sky.relative_intensity(r, p, g[:2], K)
    with pytest.raises(ValueError, match="K"):
        sky.relative_intensity(r, p, g, np.eye(2))
    with pytest.raises(ValueError, match="orientation"):
        sky.reference_gradient("oblique")
    with pytest.raises(ValueError, match="lmax"):
        sky.realisation_summary(r, p, lmax=0)
    with pytest.raises(ValueError, match="maps"):
        fits.write_fits("unused.fits", np.zeros(100))
