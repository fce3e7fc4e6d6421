"""Input validation at the public boundary: raise ``ValueError`` naming the bad parameter.

Checks run only on concrete values; inside ``jit``/``grad`` traced values pass through unchecked
(validate before transforming).
"""

from collections.abc import Iterable

import jax
import numpy as np


def _concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def finite(name: str, value) -> None:
    """``value`` (scalar or array) must be finite."""
    if _concrete(value) and not np.all(np.isfinite(np.asarray(value, dtype=float))):
        raise ValueError(f"{name} must be finite, got {value!r}")


def positive(name: str, value) -> None:
    """``value`` must be finite and > 0."""
    finite(name, value)
    if _concrete(value) and not np.all(np.asarray(value, dtype=float) > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def non_negative(name: str, value) -> None:
    """``value`` must be finite and >= 0."""
    finite(name, value)
    if _concrete(value) and not np.all(np.asarray(value, dtype=float) >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def open_interval(name: str, value, lo: float, hi: float) -> None:
    """``value`` must be finite and lie strictly between ``lo`` and ``hi``."""
    finite(name, value)
    if not _concrete(value):
        return
    v = np.asarray(value, dtype=float)
    if not np.all((v > lo) & (v < hi)):
        raise ValueError(f"{name} must lie in ({lo:g}, {hi:g}), got {value!r}")


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
    """``values`` must be finite, > 0 and strictly increasing."""
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
