"""crsky.physics.anisotropy: ensemble statistics on a toy ensemble whose answers are analytic.

Realisation k has r = s_k + a_k n and p = n on the HEALPix pixel centres n: a sky-mean offset
s_k (a pure monopole in r.g) plus a dipole of random amplitude a_k. Then, with c = (g, -3 K g),
dI = g.s_k + n.A_k, A_k = a_k g - 3 K g, so C_0 = 4 pi (g.s_k)^2, C_1 = 4 pi |A_k|^2 / 9 and the
ensemble-mean map has C_1 = 4 pi |<a> g - 3 K g|^2 / 9. The pixel sums sum n = 0 and
M = mean(n n^T) are exact HEALPix facts computed with numpy (M = I/3 only to 1.5e-3 at nside 8).
"""

import healpy as hp
import numpy as np
import pytest

from crsky.physics import anisotropy, sky, spectra

NSIDE = 8
N = np.stack(hp.pix2vec(NSIDE, np.arange(12 * NSIDE**2)), axis=-1)
M = N.T @ N / N.shape[0]
T_OMEGA = np.array([10.0, 100.0])
R_LARMOR = 0.1


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    n_real = 5
    shifts = rng.normal(size=(n_real, 2, 3))
    amplitude = rng.uniform(1, 3, size=(n_real, 2))
    r = shifts[:, :, None, :] + amplitude[..., None, None] * N
    p = np.broadcast_to(N, r.shape)
    plan = spectra.make_plan(NSIDE, 8)
    summaries = [sky.realisation_summary(r[k], p[k], plan, iter=10) for k in range(n_real)]
    stacked = {key: np.stack([s[key] for s in summaries]) for key in summaries[0]}
    T = T_OMEGA * R_LARMOR
    # the K(T) the engine would report: <mean(r r^T)> / 2T
    rr = np.einsum("ktpi,ktpj->tij", r, r) / (n_real * N.shape[0])
    return stacked, shifts, amplitude, rr / (2 * T[:, None, None]), T


def test_spectra_noise_and_standard_dipole(toy):
    # Analytic C_0, C_1 (module docstring); 1e-6 relative is the iter=10 quadrature at nside 8.
    stacked, shifts, amplitude, K, T = toy
    g = np.array([0.3, 0.0, 1.0])
    K_liouville = np.diag([0.2, 0.2, 0.9])
    stats = anisotropy.ensemble_statistics(
        stacked, T_OMEGA, R_LARMOR, K, g, nside=NSIDE, K_liouville=K_liouville
    )
    c0 = 4 * np.pi * np.mean((shifts @ g) ** 2, axis=0)
    A = amplitude[..., None] * g - 3 * K_liouville @ g
    c1 = 4 * np.pi * np.mean(np.sum(A**2, -1), axis=0) / 9
    np.testing.assert_allclose(stats.cl_mean[:, 0], c0, rtol=1e-6)
    np.testing.assert_allclose(stats.cl_mean[:, 1], c1, rtol=1e-6)
    assert np.all(np.abs(stats.cl_mean[:, 2:]) < 1e-6 * c1[:, None])
    a_mean = amplitude.mean(0)[:, None] * g - 3 * K_liouville @ g
    np.testing.assert_allclose(
        stats.dipole_standard, 4 * np.pi * np.sum(a_mean**2, -1) / 9, rtol=1e-6
    )
    # Eq. (3.1) and eq. (1.1) evaluated by hand
    noise = 4 * np.pi / (12 * NSIDE**2) * 2 * T * np.einsum("i,tij,j->t", g, K, g)
    np.testing.assert_allclose(stats.noise, noise, rtol=1e-12)
    np.testing.assert_allclose(stats.cl_hat, stats.cl_mean - noise[:, None], rtol=1e-12)
    np.testing.assert_allclose(stats.dipole_diffusion, 4 * np.pi * np.sum((K @ g) ** 2, -1))
    err = np.std(4 * np.pi * np.sum(A**2, -1) / 9, axis=0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(stats.cl_err[:, 1], err, rtol=1e-6)
    np.testing.assert_array_equal(stats.ell, np.arange(stats.cl_mean.shape[1]))


def test_relative_diffusion_and_sum_rules(toy):
    # Eq. (2.4) on the grid: the shifts cancel in r1 - r2, so K~ = <a^2> M / 2T exactly (1e-12).
    # With K_liouville = 0 the sum rules hold exactly: (2.6) monopole = g.<s s^T>.g and (2.7)
    # higher = <a^2> g.M.g up to HEALPix quadrature of the dipole^2 (|M - I/3| ~ 1.5e-3, so 3e-3);
    # (2.5) pixel variance = 2T g.K.g exactly, since K here is the ensemble's own <r r>/2T.
    stacked, shifts, amplitude, K, T = toy
    g = sky.reference_gradient("perpendicular", 0.5)
    stats = anisotropy.ensemble_statistics(
        stacked, T_OMEGA, R_LARMOR, K, g, nside=NSIDE, K_liouville=np.zeros((3, 3))
    )
    a2 = np.mean(amplitude**2, axis=0)
    np.testing.assert_allclose(
        stats.K_relative, a2[:, None, None] * M / (2 * T[:, None, None]), rtol=1e-12, atol=1e-15
    )
    rules = stats.sum_rules
    np.testing.assert_allclose(rules.variance, rules.variance_rhs, rtol=1e-12)
    np.testing.assert_allclose(rules.monopole, rules.monopole_rhs, rtol=1e-6)
    np.testing.assert_allclose(rules.monopole, np.mean((shifts @ g) ** 2, 0), rtol=1e-6)
    np.testing.assert_allclose(rules.higher, rules.higher_rhs, rtol=3e-3)
    np.testing.assert_allclose(rules.variance_spectrum, rules.variance, rtol=3e-3)


def test_bad_input_raises(toy):
    stacked, _, _, K, _ = toy
    g = np.array([0, 0, 1.0])
    with pytest.raises(ValueError, match="summaries"):
        anisotropy.ensemble_statistics({"mean": 1}, T_OMEGA, R_LARMOR, K, g, nside=NSIDE)
    with pytest.raises(ValueError, match="t_omega"):
        anisotropy.ensemble_statistics(stacked, T_OMEGA[:1], R_LARMOR, K, g, nside=NSIDE)
    with pytest.raises(ValueError, match="r_larmor"):
        anisotropy.ensemble_statistics(stacked, T_OMEGA, -1.0, K, g, nside=NSIDE)
    with pytest.raises(ValueError, match="K"):
        anisotropy.ensemble_statistics(stacked, T_OMEGA, R_LARMOR, K[0], g, nside=NSIDE)
    with pytest.raises(ValueError, match="nside"):
        anisotropy.ensemble_statistics(stacked, T_OMEGA, R_LARMOR, K, g, nside=6)
    bad = dict(stacked, mean=np.where(True, np.nan, stacked["mean"]))
    with pytest.raises(ValueError, match="mean"):
        anisotropy.ensemble_statistics(bad, T_OMEGA, R_LARMOR, K, g, nside=NSIDE)
