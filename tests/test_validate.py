"""Boundary validation: concrete bad values raise ValueError naming the parameter; traced
values carry the check into the computation (equinox.error_if) and raise when it runs, naming
the parameter, so jit and grad do not turn an out-of-domain input into numbers.

Reference for the physics functions: their eager call (the same value raises ValueError; an
in-range value gives the same number eagerly, under jit and, for derivatives, under grad)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky import _validate
from crsky.physics import beam, bgk, pitch_angle, tracing
from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes

# How a failed run-time check surfaces: equinox's error under equinox.filter_jit; under jax.jit
# XLA's callback error (a ValueError on CPU) whose message carries equinox's, naming the input.
RUNTIME = (eqx.EquinoxRuntimeError, ValueError, RuntimeError)


@pytest.mark.parametrize(
    "check, args",
    [
        (_validate.finite, (float("nan"),)),
        (_validate.positive, (0.0,)),
        (_validate.non_negative, (-1.0,)),
        (_validate.open_interval, (1.0, 0.0, 1.0)),
        (_validate.positive_int, (0,)),
        (_validate.non_negative_int, (-1,)),
        (_validate.non_negative_int, (True,)),
        (_validate.power_of_two, (6,)),
        (_validate.one_of, ("c", ("a", "b"))),
        (_validate.increasing, ([1.0, 1.0],)),
    ],
)
def test_concrete_bad_values_name_the_parameter(check, args):
    with pytest.raises(ValueError, match="^the_name"):
        check("the_name", *args)


@pytest.mark.parametrize(
    "check, extra",
    [
        (_validate.finite, ()),
        (_validate.positive, ()),
        (_validate.non_negative, ()),
        (_validate.open_interval, (0.0, 10.0)),
    ],
)
def test_traced_values_are_checked_when_they_run(check, extra):
    def f(x):
        return check("x", x, *extra) ** 2

    assert float(jax.jit(f)(2.0)) == 4.0
    assert float(jax.grad(f)(2.0)) == 4.0
    with pytest.raises(RUNTIME, match="x must"):
        jax.block_until_ready(jax.jit(f)(jnp.nan))
    with pytest.raises(eqx.EquinoxRuntimeError, match="x must"):
        jax.block_until_ready(eqx.filter_jit(f)(jnp.asarray(jnp.nan)))
    with pytest.raises(RUNTIME, match="x must"):
        jax.block_until_ready(jax.grad(f)(-20.0 if check is not _validate.finite else jnp.inf))
    _validate.increasing("t", jnp.array([1.0, 2.0]))
    jax.jit(lambda t: _validate.increasing("t", t) or t)(jnp.array([1.0, 2.0]))


ELL = np.arange(1, 6)


@pytest.mark.parametrize(
    "name, function, good, bad",
    [
        ("p", lambda p: bgk.cl_shape(p, ELL), 0.5, 1.2),
        ("p", lambda p: bgk.cl(p, ELL, 1.0), 0.5, -0.1),
        ("q1", lambda q: bgk.cl(0.5, ELL, q), 2.0, -1.0),
        ("nu0", lambda nu: bgk.cl(0.5, ELL, 1.0, nu), 2.0, 0.0),
        ("energy_tev", lambda e: beam.larmor_radius_pc(e, 3.0), 10.0, -10.0),
        ("l_pc", lambda l: beam.eps_from_scale(l, 10.0, 3.0), 1.0, 0.0),
        ("q_c", lambda q: beam.constant_a(q), 4.6, 1.5),
        ("r_larmor", lambda r: tracing.backtrack(
            sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(n_modes=4)),
            jnp.array([[0.0, 0.0, 1.0]]), np.array([0.1]), r, dt=0.05).r.sum(), 0.1, -0.1),
        ("sigma", lambda s: sample_modes(
            jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=s, n_modes=4)).amplitude.sum(),
            1.0, -1.0),
    ],
)
def test_physics_domain_checks_survive_jit_and_grad(name, function, good, bad):
    with pytest.raises(ValueError, match=name):
        function(bad)
    eager = function(good)
    np.testing.assert_allclose(jax.jit(function)(good), eager, rtol=1e-12)
    assert np.isfinite(float(jnp.sum(jax.grad(lambda x: jnp.sum(function(x)))(good))))
    with pytest.raises(RUNTIME, match=name):
        jax.block_until_ready(jax.jit(function)(bad))
    with pytest.raises(RUNTIME, match=name):
        jax.block_until_ready(jax.grad(lambda x: jnp.sum(function(x)))(bad))


def test_eigen_solver_checks_traced_eps():
    """pitch_angle.solve under jit: ε = 0.5 is beyond EPS_MAX of the matched profile."""
    solve = jax.jit(lambda eps: pitch_angle.solve(eps, 1e-4, n_eigen=1).lambdas[0])
    with pytest.raises(ValueError, match="eps"):
        pitch_angle.solve(0.5, 1e-4, n_eigen=1)
    with pytest.raises(RUNTIME, match="eps"):
        jax.block_until_ready(solve(0.5))


def test_float64_requirement_is_enforced_at_the_boundary():
    """Without jax_enable_x64 the eigen solver would silently return λ1 ≈ 504 instead of
    14.5 (float32); it must refuse instead."""
    from crsky.physics import pitch_angle

    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="float64"):
            pitch_angle.solve(2.1e-3, 1e-4)
    finally:
        jax.config.update("jax_enable_x64", True)
