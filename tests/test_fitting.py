"""MAP + Laplace fits.

References: (1) a conjugate Gaussian model, whose posterior is exactly the Laplace Gaussian
(mode and variance to 1e-8 relative: BFGS tolerance 1e-9); (2) scipy.optimize.minimize (BFGS) on
the same unconstrained negative log density written independently in numpy (mode to 1e-5);
(3) for the self-consistent fiducial, the same scipy minimisation at the returned fiducial, whose
argmin must be that fiducial (the fixed-point property, to the iteration's tolerance).
"""

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from crsky.inference.fitting import fit_laplace, iterate_fiducial

Y = np.array([1.2, 0.7, 1.9, 1.4, 0.3, 1.1])


def conjugate(y, s=0.5):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    numpyro.deterministic("two_mu", 2 * mu)
    numpyro.sample("y", dist.Normal(mu, s), obs=y)


def test_laplace_is_exact_for_a_conjugate_gaussian():
    fit = fit_laplace(conjugate, {"y": Y}, draws=20000)
    precision = 1 / 2.0**2 + Y.size / 0.5**2
    mean, var = (Y.sum() / 0.5**2) / precision, 1 / precision
    assert float(fit.mode["mu"]) == pytest.approx(mean, rel=1e-8)
    assert fit.covariance[0, 0] == pytest.approx(var, rel=1e-8)
    assert fit.unconstrained_names == ("mu",)
    summary = fit.summary()
    # 20000 draws: the median's Monte-Carlo error is ~1.25 sd/sqrt(n) = 0.0017; allow 4 of them.
    assert summary["mu"]["median"] == pytest.approx(mean, abs=4 * 1.25 * var**0.5 / 20000**0.5)
    assert summary["two_mu"]["mode"] == pytest.approx(2 * mean, rel=1e-8)
    lo, hi = summary["mu"]["q68"]
    assert (hi - lo) / 2 == pytest.approx(var**0.5, rel=0.03)


def scale_model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    s = numpyro.sample("s", dist.LogUniform(0.05, 20.0))
    numpyro.sample("y", dist.Normal(mu, s), obs=y)


def test_map_matches_scipy_in_unconstrained_space():
    fit = fit_laplace(scale_model, {"y": Y})

    def potential(x):
        # NumPyro maps the LogUniform's interval support by s = a + (b - a) sigmoid(z):
        # density 1/s (up to a constant) times the Jacobian (b - a) g (1 - g).
        g = expit(x[1])
        mu, s = x[0], 0.05 + 19.95 * g
        log_prior = -(mu**2) / 8 - np.log(s) + np.log(g * (1 - g))
        return -log_prior + Y.size * np.log(s) + np.sum((Y - mu) ** 2) / (2 * s**2)

    ref = minimize(potential, [0.0, -3.0], method="BFGS", options={"gtol": 1e-10})
    assert float(fit.mode["mu"]) == pytest.approx(ref.x[0], rel=1e-5)
    assert float(fit.mode["s"]) == pytest.approx(0.05 + 19.95 * expit(ref.x[1]), rel=1e-5)
    # Central finite-difference Hessian of the numpy potential (step 1e-4: error ~1e-7).
    h, eye = 1e-4, np.eye(2)
    fd = np.array([[(potential(ref.x + h * (i + j)) - potential(ref.x + h * (i - j))
                     - potential(ref.x - h * (i - j)) + potential(ref.x - h * (i + j))) / (4 * h**2)
                    for j in eye] for i in eye])
    np.testing.assert_allclose(np.linalg.inv(fit.covariance), fd, rtol=1e-5)


def test_non_convergence_is_an_error():
    with pytest.raises(ValueError, match="did not converge in 1 BFGS steps"):
        fit_laplace(scale_model, {"y": Y}, max_steps=1)


T = np.linspace(0.0, 2.0, 12)
Y_DECAY = np.array([2.11, 1.52, 1.46, 1.13, 0.83, 0.92, 0.61, 0.55, 0.49, 0.38, 0.36, 0.22])


def decay_model(y, fiducial=None):
    """y ~ a e^{-b t} with 20 % errors, at the model or held at a fiducial (a, b)."""
    a = numpyro.sample("a", dist.LogUniform(0.05, 20.0))
    b = numpyro.sample("b", dist.LogUniform(0.05, 20.0))
    at = (a, b) if fiducial is None else (fiducial["a"], fiducial["b"])
    numpyro.sample("y", dist.Normal(a * jnp.exp(-b * T), 0.2 * at[0] * jnp.exp(-at[1] * T)),
                   obs=y)


def _decay_map(fiducial) -> np.ndarray:
    """Independent reference: scipy's BFGS on the unconstrained potential of ``decay_model``
    with the covariance held at ``fiducial`` (both priors LogUniform(0.05, 20) mapped by
    a + (b - a) sigmoid(z), as in the test above)."""
    sd = 0.2 * fiducial[0] * np.exp(-fiducial[1] * T)

    def potential(x):
        g = expit(x)
        a, b = 0.05 + 19.95 * g
        log_prior = -np.log(a) - np.log(b) + np.sum(np.log(g * (1 - g)))
        return -log_prior + np.sum((Y_DECAY - a * np.exp(-b * T)) ** 2 / (2 * sd**2))

    ref = minimize(potential, [-3.0, -3.0], method="BFGS", options={"gtol": 1e-10})
    return 0.05 + 19.95 * expit(ref.x)


def test_iterated_fiducial_is_a_fixed_point_of_the_map():
    found = iterate_fiducial(decay_model, {"y": Y_DECAY}, names=("a", "b"), rtol=1e-6)
    theta = np.array([found.fiducial["a"], found.fiducial["b"]])
    np.testing.assert_allclose(_decay_map(theta), theta, rtol=1e-5)
    first = np.array([found.history[0]["a"], found.history[0]["b"]])
    moving = fit_laplace(decay_model, {"y": Y_DECAY}).mode  # covariance at the model
    np.testing.assert_allclose(first, [moving["a"], moving["b"]], rtol=1e-6)
    assert np.max(np.abs(theta / first - 1)) > 1e-2  # the held covariance moved the MAP
    assert found.iterations == len(found.history) - 1 >= 2


def test_iterated_fiducial_bad_input():
    with pytest.raises(ValueError, match="names"):
        iterate_fiducial(decay_model, {"y": Y_DECAY}, names=("a", "c"))
    with pytest.raises(ValueError, match="rtol"):
        iterate_fiducial(decay_model, {"y": Y_DECAY}, names=("a", "b"), rtol=0.0)
    with pytest.raises(ValueError, match="did not settle in max_iterations = 1"):
        iterate_fiducial(decay_model, {"y": Y_DECAY}, names=("a", "b"), rtol=1e-12,
                         max_iterations=1)
