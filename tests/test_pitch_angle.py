"""Pitch-angle eigenproblem, beam paper eq. (8): crsky.physics.pitch_angle.

References: the converged eigenvalues of docs/physics.md (B7) (Legendre–Galerkin and finite
elements),
the Frobenius relations at μ = 1, the μ → −μ symmetry of eq. (8), a refined grid of the same
solver (convergence) and central finite differences (gradients).
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky.physics import pitch_angle as pa

EPS, DELTA = 2.1e-3, 1e-4


@pytest.fixture(scope="module")
def flat():
    return pa.solve(EPS, DELTA, 0.0, "flat", n_eigen=3, negative=True)


def test_flat_eigenvalues_match_physics_md(flat):
    # docs/physics.md (B7) quotes 4 decimals: agree to half a unit of the last digit
    np.testing.assert_allclose(flat.lambdas, [14.5280, 42.0485, 83.3044], atol=5e-5)
    # eq. (8) with u = 0 is odd under μ → −μ, λ → −λ: the negative branch mirrors the positive
    np.testing.assert_allclose(flat.neg_lambdas, -flat.lambdas, rtol=1e-10)
    np.testing.assert_allclose(flat.neg_psi[:, ::-1], flat.psi, atol=1e-8)


def test_flat_bulk_speed_matches_physics_md():
    lam = pa.solve(EPS, DELTA, 0.01, "flat", n_eigen=1).lambdas[0]
    assert abs(float(lam) - 14.1999) < 1e-4  # docs/physics.md (B7): λ1 = 14.1999 for u = 0.01


def test_frobenius_relations_at_mu_one(flat):
    # Beam paper, (B8): Φ'(1) = λΦ(1)/2, Φ''(1) = λΦ'(1)/4. Derivatives of the degree-P polynomial
    # on the last element: Φ' to 1e-6; Φ'' of the discrete eigenfunction is good to ~5e-6.
    p = flat.degree
    mu, lam = np.asarray(flat.mu[-p - 1 :]), np.asarray(flat.lambdas)
    for k in range(3):
        poly = np.polynomial.Polynomial.fit(mu, np.asarray(flat.psi[k, -p - 1 :]), p)
        f0, f1, f2 = poly(1.0), poly.deriv(1)(1.0), poly.deriv(2)(1.0)
        assert f1 == pytest.approx(lam[k] * f0 / 2, rel=1e-6)
        assert f2 == pytest.approx(lam[k] * f1 / 4, rel=3e-5)


def test_normalisation_and_w_orthogonality(flat):
    w = np.asarray(flat.weights)
    psi = np.asarray(flat.psi)
    np.testing.assert_allclose(psi**2 @ w, 1.0, rtol=1e-12)
    assert np.all(psi[:, -1] > 0)
    # eigenfunctions of distinct λ are orthogonal in the indefinite weight (u + μ)
    gram = (psi * (w * np.asarray(flat.mu))) @ psi.T
    assert np.max(np.abs(gram - np.diag(np.diag(gram)))) < 1e-9


def test_mirror_symmetry_with_bulk_speed():
    # μ → −μ maps (u, λ) to (−u, −λ); the matched profile has both peaks
    a = pa.solve(1e-3, DELTA, 0.05, "matched", n_eigen=2, negative=True)
    b = pa.solve(1e-3, DELTA, -0.05, "matched", n_eigen=2, negative=True)
    np.testing.assert_allclose(a.lambdas, -b.neg_lambdas, rtol=1e-9)
    np.testing.assert_allclose(a.neg_lambdas, -b.lambdas, rtol=1e-9)


def test_zero_mode_excluded_continuously_across_u_zero():
    # the convective mode (λ ≈ −6u) changes sign at u = 0; λ1 must not jump there
    lam = [float(pa.solve(EPS, DELTA, u, "flat", 1).lambdas[0]) for u in (-1e-6, 0.0, 1e-6)]
    assert lam[0] > lam[1] > lam[2]
    assert abs(lam[0] - lam[2]) < 1e-4


@pytest.mark.parametrize("profile", ["flat", "matched", "gs"])
def test_converged_against_refined_grid(profile):
    # default grid (n = 226) against degree 11 / 8 layers (n = 364): the eigenvalues agree to
    # 1e-7 relative, well below the 1e-6 the beam observables need
    coarse = pa.solve(EPS, DELTA, 0.0, profile, n_eigen=2)
    fine = pa.solve(EPS, DELTA, 0.0, profile, n_eigen=2, degree=11, layers=8)
    np.testing.assert_allclose(coarse.lambdas, fine.lambdas, rtol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["flat", "matched", "gs"])
@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-4, 1e-5])
def test_convergence_study(profile, eps):
    # p- and layer-refinement: successive grids agree to 1e-8 relative
    lams = [
        pa.solve(eps, DELTA, 0.01, profile, n_eigen=1, degree=d, layers=k).lambdas[0]
        for d, k in ((9, 6), (11, 8), (13, 10))
    ]
    assert abs(lams[1] / lams[2] - 1) < 1e-8
    assert abs(lams[0] / lams[2] - 1) < 1e-7


def test_peak_profiles_are_narrow_and_normalised():
    mu = jnp.array([0.0, 0.5, 1 - 2e-2])
    np.testing.assert_allclose(pa.scattering_profile(mu, EPS, DELTA, "matched"), 1.0)
    b = float(pa.peak_width(EPS))
    # docs/physics.md (B5): D(w = 0) = 1 + F(0)/a, F(0) = π/8
    tip = pa.scattering_profile(jnp.array(1 - 1e-12), EPS, DELTA, "matched")
    assert float(tip) == pytest.approx(1 + np.pi / 8 / float(pa.rate_ratio(EPS, DELTA)), rel=1e-6)
    # F(1) = 0 (J1(j1) = 0): D is continuous at the peak edge
    edge = pa.scattering_profile(jnp.array([1 - b * (1 - 1e-9), 1 - b * (1 + 1e-9)]), EPS, DELTA)
    np.testing.assert_allclose(edge, 1.0, atol=1e-9)
    # gs outside the peak: eq. (3)/eq. (5), e.g. at μ = 0 δ ln(1/ε) / (δ ln(1/ε) + ε^{3/2})
    d0 = pa.scattering_profile(jnp.array(0.0), EPS, DELTA, "gs")
    ln = np.log(1 / EPS)
    assert float(d0) == pytest.approx(DELTA * ln / (DELTA * ln + EPS**1.5), rel=1e-12)


@pytest.mark.parametrize("profile", ["matched", "gs"])
def test_gradients_match_finite_differences(profile):
    def lam1(e, d, u):
        return pa.solve(e, d, u, profile, n_eigen=1).lambdas[0]

    x0 = np.array([EPS, DELTA, 0.02])
    grad = jax.jit(jax.grad(lam1, argnums=(0, 1, 2)))(*x0)
    for i, g in enumerate(grad):
        h = 1e-5 * abs(x0[i])
        xp, xm = x0.copy(), x0.copy()
        xp[i] += h
        xm[i] -= h
        fd = (float(lam1(*xp)) - float(lam1(*xm))) / (2 * h)
        # central differences: truncation ~h², rounding ~1e-15 λ/h; 1e-5 relative covers both
        assert float(g) == pytest.approx(fd, rel=1e-5), (profile, i)


def test_jit_and_vmap():
    eps = jnp.array([1e-3, 2e-3, 4e-3])
    batched = jax.jit(jax.vmap(lambda e: pa.solve(e, DELTA, 0.0, "matched", 1).lambdas[0]))(eps)
    single = [float(pa.solve(float(e), DELTA, 0.0, "matched", 1).lambdas[0]) for e in eps]
    np.testing.assert_allclose(batched, single, rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.0, "profile": "flat"}, "eps"),
        ({"eps": 0.05}, "eps"),  # peaked profiles need eps < EPS_MAX
        ({"eps": float("nan")}, "eps"),
        ({"delta": -1e-4}, "delta"),
        ({"delta": 0.0, "profile": "gs"}, "delta"),
        ({"u": 1.0}, "u"),
        ({"u": -1.5}, "u"),
        ({"u": float("inf")}, "u"),
        ({"profile": "kolmogorov"}, "profile"),
        ({"n_eigen": 0}, "n_eigen"),
        ({"degree": 8}, "degree"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    args = {"eps": EPS, "delta": DELTA, "u": 0.0, "profile": "matched"} | kwargs
    with pytest.raises(ValueError, match=name):
        pa.solve(**args)


def test_no_deadlock_under_the_concurrency_optimised_scheduler():
    # Regression (jaxlib 0.10.2): with XLA:CPU's concurrency-optimised scheduler on, the
    # solver hung in 5 of 16 runs while it decomposed the same matrix once per branch (0 of
    # 18 since); 6 fresh processes catch that rate with probability ~0.9. A hang is a
    # timeout, not a stuck test run.
    code = (
        "import jax; jax.config.update('jax_enable_x64', True);"
        "from crsky import pitch_angle;"
        "s = pitch_angle.solve(2e-3, 1e-4, negative=True);"
        "print(float(s.lambdas[0]) + float(s.neg_lambdas[0]))"
    )
    env = os.environ | {"XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    for _ in range(6):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert abs(float(done.stdout)) < 1e-9  # λ1 of the two branches: symmetric at u = 0
