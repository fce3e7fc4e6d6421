"""Synthetic turbulence against its defining properties (rel.-diffusion paper, section 3).

References are the definitions themselves, evaluated independently here with numpy: the
spectrum k³/(1 + (k Lc)^γ), transversality, ⟨δB²⟩ = σ²B0², and ∇·B = 0.
"""

import io
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky.physics.turbulence import (
    TurbulenceSpectrum,
    magnetic_field,
    sample_modes,
    stack_modes,
    turbulent_field,
)


@pytest.fixture(scope="module")
def modes():
    return sample_modes(jax.random.PRNGKey(3), TurbulenceSpectrum(sigma=1.0, n_modes=256))


def test_modes_are_transverse_and_normalised(modes):
    k, a = np.asarray(modes.k), np.asarray(modes.amplitude)
    # δB_n · k_n = 0 to rounding (float64: |k||δB| ≤ 700, so 1e-12 absolute)
    assert np.max(np.abs(np.sum(k * a, axis=1))) < 1e-12
    # Σ|δB_n|² = 2σ²B0²
    assert np.sum(a**2) == pytest.approx(2.0, rel=1e-12)


def test_wave_numbers_log_spaced_between_lambda_bounds(modes):
    k_abs = np.linalg.norm(np.asarray(modes.k), axis=1)
    assert k_abs[0] == pytest.approx(2 * np.pi / 100.0, rel=1e-12)
    assert k_abs[-1] == pytest.approx(2 * np.pi / 0.01, rel=1e-12)
    assert np.allclose(np.diff(np.log(k_abs)), np.log(1e4) / 255, rtol=1e-10)


def test_amplitudes_follow_kolmogorov_spectrum(modes):
    k_abs = np.linalg.norm(np.asarray(modes.k), axis=1)
    power = np.sum(np.asarray(modes.amplitude) ** 2, axis=1)
    expected = k_abs**3 / (1 + k_abs ** (11 / 3))
    expected *= 2.0 / expected.sum()
    np.testing.assert_allclose(power, expected, rtol=1e-12)


def test_directions_isotropic():
    # ⟨k̂ k̂ᵀ⟩ = I/3 for isotropic directions; 20000 modes give a statistical error ~0.003
    m = sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=1.0, n_modes=20000))
    k_hat = np.asarray(m.k) / np.linalg.norm(np.asarray(m.k), axis=1, keepdims=True)
    np.testing.assert_allclose(k_hat.T @ k_hat / len(k_hat), np.eye(3) / 3, atol=0.015)


def test_spatial_mean_square_is_sigma_squared():
    """⟨δB²⟩ over space → σ²B0² within 3% for N = 256 (docs/physics.md (R2))."""
    sigma = 0.7
    estimates = []
    for seed in range(4):
        m = sample_modes(jax.random.PRNGKey(seed), TurbulenceSpectrum(sigma=sigma, n_modes=256))
        x = jax.random.uniform(jax.random.PRNGKey(100 + seed), (20000, 3), maxval=1000.0)
        estimates.append(float(jnp.mean(jnp.sum(turbulent_field(m, x) ** 2, axis=-1))))
    assert np.mean(estimates) == pytest.approx(sigma**2, rel=0.03)


def test_field_matches_numpy_sum_of_plane_waves(modes):
    x = np.random.default_rng(1).uniform(-5, 5, (7, 3))
    k, a, beta = (np.asarray(v) for v in (modes.k, modes.amplitude, modes.phase))
    expected = np.cos(x @ k.T + beta) @ a + np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(magnetic_field(modes, jnp.asarray(x)), expected, atol=1e-12)


def test_stacked_realisations_match_numpy_per_realisation():
    # R = 3 fields stacked along a leading axis, 5 points each: row r in field r
    spectrum = TurbulenceSpectrum(sigma=1.0, n_modes=16)
    stacked = [sample_modes(jax.random.PRNGKey(i), spectrum) for i in range(3)]
    batch = stack_modes(stacked)
    x = np.random.default_rng(2).uniform(-50, 50, (3, 5, 3))
    b = magnetic_field(batch, jnp.asarray(x))
    assert b.shape == (3, 5, 3)
    # points not one set per realisation would broadcast into every pairing: refused
    for shape in ((3, 3), (3, 1, 5, 3), (2, 5, 3)):
        with pytest.raises(ValueError, match=r"^x must have shape \(R, M, 3\)"):
            magnetic_field(batch, jnp.zeros(shape))
    with pytest.raises(ValueError, match="^realisations"):
        stack_modes([])
    for r, m in enumerate(stacked):
        k, a, beta = (np.asarray(v) for v in (m.k, m.amplitude, m.phase))
        expected = np.cos(x[r] @ k.T + beta) @ a + np.array([0.0, 0.0, 1.0])
        np.testing.assert_allclose(b[r], expected, atol=1e-12)


def test_divergence_free(modes):
    """∇·B = 0 from the autodiff Jacobian, ≤ 1e-10 in float64 (docs/physics.md (R1))."""
    x = jax.random.normal(jax.random.PRNGKey(2), (16, 3)) * 10
    jac = jax.vmap(jax.jacfwd(lambda y: magnetic_field(modes, y)))(x)
    div = jnp.trace(jac, axis1=-2, axis2=-1)
    # individual ∂_i B_i reach |k||δB| ~ 30; their sum cancels to rounding
    assert float(jnp.max(jnp.abs(div))) < 1e-10


def test_same_key_same_field_and_linear_in_sigma():
    a = sample_modes(jax.random.PRNGKey(9), TurbulenceSpectrum(sigma=1.0, n_modes=32))
    b = sample_modes(jax.random.PRNGKey(9), TurbulenceSpectrum(sigma=2.0, n_modes=32))
    np.testing.assert_array_equal(a.k, b.k)
    np.testing.assert_allclose(2 * a.amplitude, b.amplitude, rtol=1e-15)
    def field_sum(s):
        modes = sample_modes(jax.random.PRNGKey(9), TurbulenceSpectrum(sigma=s, n_modes=32))
        return jnp.sum(turbulent_field(modes, jnp.ones(3)))

    grad = jax.grad(field_sum)(1.0)
    assert float(grad) == pytest.approx(float(jnp.sum(turbulent_field(a, jnp.ones(3)))))


def test_same_key_same_field_with_and_without_x64():
    # a process without jax_enable_x64 (e.g. one host of a multi-host run) draws the same
    # field for the same key as this one (x64 on, see conftest): the random numbers are float32
    code = (
        "import jax, jax.numpy as jnp, numpy as np, sys; assert not jax.config.jax_enable_x64;"
        "from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes;"
        "m = sample_modes(jax.random.PRNGKey(7), TurbulenceSpectrum(sigma=1.0, n_modes=16),"
        " dtype=jnp.float32);"
        "np.save(sys.stdout.buffer, np.concatenate([m.k.ravel(), m.amplitude.ravel(), m.phase]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    other = np.load(io.BytesIO(out))
    m = sample_modes(
        jax.random.PRNGKey(7), TurbulenceSpectrum(sigma=1.0, n_modes=16), dtype=jnp.float32
    )
    mine = np.concatenate([np.ravel(m.k), np.ravel(m.amplitude), np.asarray(m.phase)])
    # bitwise: float32 draws and float32 arithmetic whatever x64 (measured equal, jaxlib CPU)
    np.testing.assert_array_equal(other, mine)


def test_float32_dtype():
    m = sample_modes(
        jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=1.0, n_modes=8), dtype=jnp.float32
    )
    assert m.k.dtype == m.amplitude.dtype == m.phase.dtype == jnp.float32


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_modes=0), "n_modes"),
        (dict(sigma=-1.0), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(lambda_min=1.0, lambda_max=0.5), "lambda_min"),
        (dict(lambda_min=0.0), "lambda_min"),
        (dict(lc=-1.0), "lc"),
        (dict(gamma=0.0), "gamma"),
        (dict(n_modes=8.0), "n_modes"),
    ],
)
def test_bad_spectrum_names_the_field(kwargs, name):
    args = dict(n_modes=8, sigma=1.0) | kwargs
    with pytest.raises(ValueError, match=name):
        TurbulenceSpectrum(**args)


def test_spectrum_defaults_and_pytree():
    """Defaults as documented (σ = 1, λ in [0.01, 100] Lc, lc = 1, Kolmogorov γ = 11/3);
    n_modes is static, the rest are leaves (so jax.grad reaches σ)."""
    spectrum = TurbulenceSpectrum()
    assert (spectrum.sigma, spectrum.lambda_min, spectrum.lambda_max, spectrum.lc) == (
        1.0, 0.01, 100.0, 1.0)
    assert spectrum.gamma == pytest.approx(11 / 3)
    assert len(jax.tree.leaves(spectrum)) == 5
    with pytest.raises(ValueError, match="spectrum"):
        sample_modes(jax.random.PRNGKey(0), 8)


def test_traced_sigma_out_of_range_raises_at_run_time():
    """Under jit the construction check cannot see σ; the check travels with the computation
    (equinox.error_if) and raises when the negative value arrives."""
    draw = jax.jit(lambda s: sample_modes(jax.random.PRNGKey(0),
                                          TurbulenceSpectrum(sigma=s, n_modes=8)).amplitude)
    assert np.all(np.isfinite(draw(1.0)))
    with pytest.raises(Exception, match="sigma"):
        jax.block_until_ready(draw(-1.0))
