"""Input validation at the public boundary: raise ``ValueError`` naming the bad parameter.

Concrete values are checked at once. Traced values (inside ``jit``, ``grad``, ``vmap``) cannot
be compared in Python, so the range checks return them wrapped in :func:`equinox.error_if`: the
check then runs with the computation and raises when an out-of-domain value reaches it, with a
message naming the parameter (``equinox.EquinoxRuntimeError`` under ``equinox.filter_jit``; under
``jax.jit`` the runtime's callback error carrying that message). A caller keeps the check by
using the returned value: ``p = _validate.open_interval("p", p, 0.0, 1.0)``.
"""

from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def _concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def concrete(*values) -> bool:
    """Whether every value is concrete (not traced by a JAX transformation)."""
    return all(_concrete(v) for v in values)


def _traced_check(name: str, value, ok, message: str):
    """``value`` carrying a run-time check that raises unless ``ok`` holds everywhere."""
    return eqx.error_if(value, ~jnp.all(ok), f"{name} {message}")


def finite(name: str, value):
    """``value`` (scalar or array) must be finite. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value), "must be finite")
    if not np.all(np.isfinite(np.asarray(value, dtype=float))):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def positive(name: str, value):
    """``value`` must be finite and > 0. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value > 0),
                             "must be finite and > 0")
    finite(name, value)
    if not np.all(np.asarray(value, dtype=float) > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def non_negative(name: str, value):
    """``value`` must be finite and >= 0. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value >= 0),
                             "must be finite and >= 0")
    finite(name, value)
    if not np.all(np.asarray(value, dtype=float) >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def open_interval(name: str, value, lo: float, hi: float):
    """``value`` must be finite and lie strictly between ``lo`` and ``hi``. Returns ``value``
    (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value > lo) & (value < hi),
                             f"must lie in ({lo:g}, {hi:g})")
    finite(name, value)
    v = np.asarray(value, dtype=float)
    if not np.all((v > lo) & (v < hi)):
        raise ValueError(f"{name} must lie in ({lo:g}, {hi:g}), got {value!r}")
    return value


def positive_int(name: str, value) -> None:
    """``value`` must be an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def non_negative_int(name: str, value) -> None:
    """``value`` must be an integer >= 0 (a seed, an index)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def power_of_two(name: str, value) -> None:
    """``value`` must be a positive integer power of two (HEALPix nside)."""
    positive_int(name, value)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, got {value!r}")


def one_of(name: str, value, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def increasing(name: str, values) -> None:
    """``values`` must be finite, > 0 and strictly increasing (concrete values only: these are
    static grids such as the saved times)."""
    positive(name, values)
    if not _concrete(values):
        return
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0 or np.any(np.diff(v) <= 0):
        raise ValueError(f"{name} must be a non-empty, strictly increasing 1-d sequence")


def float64_enabled(what: str) -> None:
    """``what`` needs float64: raise unless ``jax_enable_x64`` is on (crsky never flips it)."""
    if not jax.config.jax_enable_x64:
        raise ValueError(
            f"{what} needs float64: call jax.config.update('jax_enable_x64', True) first "
            "(the crsky command line does)"
        )
