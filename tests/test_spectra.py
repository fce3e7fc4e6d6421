"""crsky.physics.spectra: HEALPix a_lm and C_l, JAX path against healpy, scipy and analytic
spectra."""

import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import sph_harm_y

from crsky.physics import spectra

NSIDES = (8, 16)


@pytest.fixture(scope="module", params=NSIDES)
def plan(request):
    return spectra.make_plan(request.param)


def random_alm(lmax_band: int, lmax: int, seed: int = 0) -> np.ndarray:
    """Complex healpy-layout alm (size for ``lmax``) with power only at l <= lmax_band."""
    rng = np.random.default_rng(seed)
    l, m = hp.Alm.getlm(lmax)
    alm = rng.normal(size=l.size) + 1j * rng.normal(size=l.size) * (m > 0)
    return np.where(l <= lmax_band, alm, 0)


def test_legendre_table_matches_scipy():
    # Reference: scipy.special.sph_harm_y(l, m, theta, 0) (Condon-Shortley phase); 1e-12 absolute
    # is float64 round-off of the three-term recursion at l <= 47.
    nside = 16
    table = spectra._legendre_table(
        *hp.ringinfo(nside, np.arange(1, 4 * nside))[2:4], 3 * nside - 1
    )
    theta = np.arccos(hp.ringinfo(nside, np.arange(1, 4 * nside))[2])
    l, m = np.meshgrid(np.arange(3 * nside), np.arange(3 * nside))
    ref = sph_harm_y(l[:, None, :], m[:, None, :], theta[None, :, None], 0.0).real
    np.testing.assert_allclose(table, np.where(l >= m, 1, 0)[:, None, :] * ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("iter", [0, 3])
def test_jax_matches_healpy(plan, iter):
    # Reference: healpy.map2alm / anafast at the same iter; requirement 1e-8 relative for
    # l <= 2 nside (measured ~1e-13 over all l: the same quadrature, only round-off differs).
    nside = plan.nside
    maps = np.random.default_rng(1).normal(size=(2, 12 * nside**2))
    alm = np.asarray(spectra.map2alm(maps, plan=plan, iter=iter))
    ref = np.stack([hp.map2alm(m, iter=iter, pol=False) for m in maps])
    np.testing.assert_allclose(alm, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    cl = np.asarray(spectra.power_spectrum(maps, plan=plan, iter=iter))
    ref_cl = np.stack([hp.anafast(m, iter=iter) for m in maps])
    np.testing.assert_allclose(cl[:, : 2 * nside + 1], ref_cl[:, : 2 * nside + 1], rtol=1e-8)
    np.testing.assert_allclose(cl, ref_cl, rtol=1e-10)
    healpy_path = spectra.power_spectrum(maps, method="healpy", iter=iter)
    np.testing.assert_allclose(healpy_path, ref_cl, rtol=1e-14)


def test_synthesis_matches_healpy(plan):
    # Reference: healpy.alm2map; 1e-12 relative (round-off).
    alm = random_alm(plan.lmax, plan.lmax, seed=2)
    ref = hp.alm2map(alm, plan.nside, pol=False)
    np.testing.assert_allclose(
        spectra.alm2map(alm, plan), ref, rtol=0, atol=1e-12 * np.abs(ref).max()
    )


def test_known_harmonics_give_exact_cl():
    # Reference: analytic C_l of Y_l0 (1/(2l+1)), Re Y_lm (1/(2(2l+1))) and a dipole A.n
    # (4 pi |A|^2 / 9), maps from scipy.sph_harm_y. 1e-6 relative: iter=10 HEALPix quadrature at
    # nside 16 for l <= 5 (measured <= 2e-7); all other multipoles vanish to 1e-6 of the signal.
    nside = 16
    plan = spectra.make_plan(nside, 16)
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside**2))
    for l, m in [(0, 0), (2, 0), (3, 2), (5, 5)]:
        f = sph_harm_y(l, m, theta, phi).real
        cl = np.asarray(spectra.power_spectrum(f, plan=plan, iter=10))
        expected = np.zeros(17)
        expected[l] = (1.0 if m == 0 else 0.5) / (2 * l + 1)
        np.testing.assert_allclose(cl, expected, rtol=1e-6, atol=1e-6 * expected.max())
    a = np.array([0.3, -1.2, 0.7])
    cl = np.asarray(
        spectra.power_spectrum(
            np.stack(hp.pix2vec(nside, np.arange(12 * nside**2)), -1) @ a, plan=plan, iter=10
        )
    )
    expected = np.zeros(17)
    expected[1] = 4 * np.pi * a @ a / 9
    np.testing.assert_allclose(cl, expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_parseval_band_limited():
    # Band-limited map (l <= 8) synthesised by healpy.alm2map from random a_lm at nside 16.
    # Reference 1: the exact sky mean of f^2 = sum (2l+1) C_l^true / 4 pi from the input a_lm.
    # With iter=10 the recovered spectrum reaches it to 1.4e-7 (iter=3: 6e-6); asserted 1e-6.
    # Reference 2: the pixel mean of f^2. HEALPix's unit-weight quadrature is only O(1/Npix)
    # accurate for f^2 (measured 1.4e-4 at nside 16, 3.6e-5 at nside 32 whatever iter), so the
    # pixel-space Parseval identity holds to that level only; asserted 5e-4.
    nside, band = 16, 8
    alm = random_alm(band, band, seed=3)
    f = hp.alm2map(alm, nside, lmax=band, pol=False)
    true = np.sum((2 * np.arange(band + 1) + 1) * hp.alm2cl(alm)) / (4 * np.pi)
    plan = spectra.make_plan(nside)
    cl = np.asarray(spectra.power_spectrum(f, plan=plan, iter=10))
    total = np.sum((2 * np.arange(cl.size) + 1) * cl) / (4 * np.pi)
    assert abs(total / true - 1) < 1e-6
    assert abs(np.mean(f**2) / total - 1) < 5e-4


def test_cross_spectra_of_linear_combinations(plan):
    # Reference: the spectrum of sum_a c_a map_a computed directly (bilinearity), and healpy's
    # own cross-spectrum anafast(map1, map2); 1e-12 relative (round-off).
    rng = np.random.default_rng(4)
    maps = rng.normal(size=(2, 3, 12 * plan.nside**2))
    c = rng.normal(size=3)
    x = np.asarray(spectra.cross_spectra(maps, plan=plan))
    assert x.shape == (2, plan.lmax + 1, 3, 3)
    direct = np.asarray(spectra.power_spectrum(np.einsum("a,...ap->...p", c, maps), plan=plan))
    np.testing.assert_allclose(np.einsum("a,...lab,b->...l", c, x, c), direct, rtol=1e-12)
    ref = hp.anafast(maps[0, 0], maps[0, 2])
    np.testing.assert_allclose(x[0, :, 0, 2], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(
        spectra.cross_spectra(maps, method="healpy"), x, rtol=1e-10, atol=1e-12 * np.abs(x).max()
    )


def test_jit_vmap_grad():
    # jit and vmap reproduce the eager batched result to round-off; grad of the quadratic C_2
    # equals the central finite difference, which is exact for a quadratic up to round-off (1e-9).
    plan = spectra.make_plan(8)
    maps = np.random.default_rng(5).normal(size=(4, 768))
    eager = spectra.power_spectrum(maps, plan=plan)
    jitted = jax.jit(lambda m, p: spectra.power_spectrum(m, plan=p))(maps, plan)
    mapped = jax.vmap(lambda m: spectra.power_spectrum(m, plan=plan))(jnp.asarray(maps))
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    np.testing.assert_allclose(mapped, eager, rtol=1e-12)

    def c2(m):
        return spectra.power_spectrum(m, plan=plan)[2]

    direction = np.random.default_rng(6).normal(size=768)
    grad = jax.grad(c2)(jnp.asarray(maps[0]))
    h = 1e-3
    fd = (c2(maps[0] + h * direction) - c2(maps[0] - h * direction)) / (2 * h)
    np.testing.assert_allclose(grad @ direction, fd, rtol=1e-9)


def test_bad_input_raises():
    plan = spectra.make_plan(8)
    good = np.zeros(768)
    with pytest.raises(ValueError, match="maps"):
        spectra.power_spectrum(np.zeros(700))
    with pytest.raises(ValueError, match="maps"):
        spectra.power_spectrum(np.where(np.arange(768) == 3, np.nan, good), plan=plan)
    with pytest.raises(ValueError, match="plan"):
        spectra.power_spectrum(np.zeros(3072), plan=plan)
    with pytest.raises(ValueError, match="lmax"):
        spectra.power_spectrum(good, 24)
    with pytest.raises(ValueError, match="lmax"):
        spectra.make_plan(8, 24)
    with pytest.raises(ValueError, match="nside"):
        spectra.make_plan(6)
    with pytest.raises(ValueError, match="method"):
        spectra.power_spectrum(good, method="s2fft")
    with pytest.raises(ValueError, match="iter"):
        spectra.power_spectrum(good, iter=-1)
    with pytest.raises(ValueError, match="healpy"):
        jax.jit(lambda m: spectra.power_spectrum(m, method="healpy"))(good)
    with pytest.raises(ValueError, match="alm"):
        spectra.alm2map(np.zeros(10, complex), plan)
