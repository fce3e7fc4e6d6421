"""Closed-form BGK spectrum, rel.-diffusion paper eq. (4.7): crsky.physics.bgk.

References: adaptive quadrature of eq. (4.7) (scipy ``quad`` with the algebraic end-point weight,
and its log-weighted variant for d/dp), an independent product recurrence for the Legendre
moments up to ℓ = 1000, and the standard-diffusion dipole in the limit p → 0.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import IntegrationWarning, quad
from scipy.special import eval_legendre

from crsky.physics import bgk

P_VALUES = [0.05, 1 / 3, 0.5, 2 / 3, 0.95]
ELLS = [1, 2, 3, 5, 10, 30, 100]


def _quad(p, ell, weight):
    # ∫ x P_ℓ(x) (1 − x)^{−p} [ln(1 − x)] dx with the singularity in the weight
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        value, _ = quad(
            lambda x: x * eval_legendre(ell, x),
            -1,
            1,
            weight=weight,
            wvar=(0.0, -p),
            limit=800,
            epsabs=1e-15,
            epsrel=1e-13,
        )
    return 1.5 * value / (ell * (ell + 1))


@pytest.mark.parametrize("p", P_VALUES)
def test_closed_form_matches_quadrature(p):
    # quadrature reaches ~1e-13 relative here; 1e-10 leaves room for it (measured ≤ 7e-13)
    ref = np.array([_quad(p, ell, "alg") for ell in ELLS])
    np.testing.assert_allclose(bgk.cl_shape(p, jnp.array(ELLS)), ref, rtol=1e-10)


@pytest.mark.parametrize("p", [1 / 3, 0.5, 2 / 3])
def test_derivative_in_p_matches_quadrature(p):
    # d/dp (1 − x)^{−p} = −ln(1 − x)(1 − x)^{−p}: quad weight 'alg-logb'
    ref = np.array([-_quad(p, ell, "alg-logb") for ell in ELLS])
    jac = jax.jacfwd(lambda q: bgk.cl_shape(q, jnp.array(ELLS)))(p)
    np.testing.assert_allclose(jac, ref, rtol=1e-9)
    grad = jax.grad(lambda q: bgk.cl_shape(q, jnp.array(ELLS)).sum())(p)
    assert float(grad) == pytest.approx(ref.sum(), rel=1e-9)


@pytest.mark.parametrize("p", P_VALUES)
def test_large_ell_against_moment_recurrence(p):
    # I_0 = 2^{1−p}/(1−p), I_{n+1} = I_n (n + p)/(n + 2 − p): float64 products, independent of
    # gammaln; rounding grows like n ε ≈ 1e-13 at n = 1000
    n = np.arange(1002)
    moments = (
        2 ** (1 - p)
        / (1 - p)
        * np.concatenate([[1.0], np.cumprod((n[:-1] + p) / (n[:-1] + 2 - p))])
    )
    ell = np.arange(1, 1001)
    ref = (
        1.5
        * ((ell + 1) * moments[ell + 1] + ell * moments[ell - 1])
        / (2 * ell + 1)
        / (ell * (ell + 1))
    )
    np.testing.assert_allclose(bgk.cl_shape(p, ell), ref, rtol=1e-10)


def test_vectorised_shape_and_positive_decreasing():
    ell = np.arange(1, 13).reshape(3, 4)
    c = np.asarray(bgk.cl_shape(0.5, ell))
    assert c.shape == (3, 4)
    assert np.all(c > 0) and np.all(np.diff(c.ravel()) < 0)


def test_constant_rate_limit_is_the_standard_dipole():
    # ν_r → ν0 (p → 0): C_1 = Q1/(2 ν0); with ν0 = 1/(3κ), K = κ 1, (4π)² C_1 = 4π|K∇n/n|²
    kappa, g = 0.7, np.array([0.1, -0.2, 0.3])
    q1 = bgk.q1(kappa * np.eye(3), g)
    assert float(q1) == pytest.approx(kappa * g @ g / (6 * np.pi), rel=1e-14)
    c1 = bgk.cl(1e-9, np.array([1]), q1, nu0=1 / (3 * kappa))[0]
    assert (4 * np.pi) ** 2 * float(c1) == pytest.approx(4 * np.pi * kappa**2 * g @ g, rel=1e-8)


def test_cl_scales_with_amplitude():
    ell = np.arange(1, 6)
    np.testing.assert_allclose(bgk.cl(0.5, ell, 2.5), 2.5 * bgk.cl_shape(0.5, ell), rtol=1e-15)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: bgk.cl_shape(0.0, [1]), "p"),
        (lambda: bgk.cl_shape(1.0, [1]), "p"),
        (lambda: bgk.cl_shape(float("nan"), [1]), "p"),
        (lambda: bgk.cl_shape(0.5, [0, 1]), "ell"),
        (lambda: bgk.cl_shape(0.5, [1.5]), "ell"),
        (lambda: bgk.cl(0.5, [1], -1.0), "q1"),
        (lambda: bgk.q1(np.eye(2), np.ones(2)), "K"),
        (lambda: bgk.q1(np.eye(3), np.array([np.inf, 0, 0])), "grad_n_over_n"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
