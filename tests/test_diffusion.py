"""Running diffusion tensor K_ij(T) = ⟨r_i r_j⟩/(2T) (rel.-diffusion paper, section 2).

References: the ballistic limit K = T/6 per axis at T ≪ 1/Ω (analytic, isotropic start), the
late-time plateau with κ⊥ < κ∥ expected for σ² = 1, r_L = 0.1 Lc (paper, section 3), and
float32 vs float64 agreement within the statistical error.
"""

import numpy as np
import pytest

from crsky.io import runfile
from crsky.physics.diffusion import diffusion_tensor, position_moments
from crsky.pipelines.ensemble import SimulationConfig, run_ensemble

REFERENCE = dict(nside=4, realisations=4, modes=64, t_omega_min=1.0, t_omega_max=1000.0,
                 n_times=10, sigma2=1.0, r_larmor=0.1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for dtype in ("float32", "float64"):
        path = tmp_path_factory.mktemp(dtype) / "run.h5"
        run_ensemble(SimulationConfig(**REFERENCE, dtype=dtype), path, progress=False)
        out[dtype] = runfile.load(path).diffusion()
    return out


def test_kappa_levels_off_with_perp_below_parallel(runs):
    K = runs["float64"]
    t = np.asarray(K.t)
    for kappa in (np.asarray(K.kappa_parallel), np.asarray(K.kappa_perp)):
        slope = np.diff(np.log(kappa)) / np.diff(np.log(t))
        assert slope[-1] < 0.3  # plateau by tΩ ~ 500-1000 ...
    assert np.diff(np.log(K.kappa_parallel))[0] / np.diff(np.log(t))[0] > 0.6  # ... not at first
    assert K.kappa_perp[-1] + 3 * K.kappa_perp_err[-1] < K.kappa_parallel[-1]


def test_float32_and_float64_agree_within_errors(runs):
    a, b = runs["float32"], runs["float64"]
    for name in ("kappa_parallel", "kappa_perp"):
        diff = abs(float(getattr(a, name)[-1] - getattr(b, name)[-1]))
        err = float(np.hypot(getattr(a, name + "_err")[-1], getattr(b, name + "_err")[-1]))
        assert diff < 3 * err, (name, diff, err)


def test_ballistic_limit_and_error_estimates():
    """Straight lines r = −T n̂, isotropic n̂: K_ij = ⟨r_i r_j⟩/(2T) = T δ_ij / 6 (analytic)."""
    rng = np.random.default_rng(0)
    n = rng.normal(size=(200000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    t = np.array([0.5, 2.0])
    r = -t[:, None, None] * n[None]
    m = position_moments(r)
    K = diffusion_tensor(m.rr_mean[None], t, m.rr_var[None], m.n)
    np.testing.assert_allclose(K.K, t[:, None, None] * np.eye(3) / 6, atol=2e-3 * t.max())
    # one realisation: error from trajectory scatter; several: from realisation scatter
    assert np.all(np.isfinite(K.K_err)) and np.all(K.K_err[:, 0, 0] > 0)
    two = diffusion_tensor(np.stack([m.rr_mean, 1.1 * m.rr_mean]), t)
    np.testing.assert_allclose(two.K_err[:, 2, 2], 0.05 * m.rr_mean[:, 2, 2] / (2 * t),
                               rtol=1e-6)


def test_kappa_perp_error_from_its_own_scatter():
    """κ⊥'s error is the scatter of (K_xx + K_yy)/2 over realisations (numpy reference)."""
    rng = np.random.default_rng(1)
    rr = rng.normal(1.0, 0.1, size=(6, 2, 3, 3))
    rr[..., 1, 1] = rr[..., 0, 0]  # perfectly correlated xx and yy
    t = np.array([1.0, 2.0])
    K = diffusion_tensor(rr, t)
    perp = 0.5 * (rr[..., 0, 0] + rr[..., 1, 1]) / (2 * t)
    np.testing.assert_allclose(K.kappa_perp_err, perp.std(0, ddof=1) / np.sqrt(6), rtol=1e-12)
    np.testing.assert_allclose(K.kappa_perp, perp.mean(0), rtol=1e-12)
