"""Boundary validation: concrete bad values raise ValueError naming the parameter; traced values
pass through (validation happens before jit/grad)."""

import jax
import jax.numpy as jnp
import pytest

from crsky import _validate


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
def test_traced_values_pass_under_jit_and_grad(check, extra):
    def f(x):
        check("x", x, *extra)
        return x**2

    assert float(jax.jit(f)(2.0)) == 4.0
    assert float(jax.grad(f)(2.0)) == 4.0
    _validate.increasing("t", jnp.array([1.0, 2.0]))
    jax.jit(lambda t: _validate.increasing("t", t) or t)(jnp.array([1.0, 2.0]))


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
