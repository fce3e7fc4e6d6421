"""Input validation at the public boundary: raise ``ValueError`` naming the bad parameter.

Concrete values are checked at once. Traced values (inside ``jit``, ``grad``, ``vmap``) cannot
be compared in Python, so the range checks return them wrapped in :func:`equinox.error_if`: the
check then runs with the computation and raises when an out-of-domain value reaches it, with a
message naming the parameter (``equinox.EquinoxRuntimeError`` under ``equinox.filter_jit``; under
``jax.jit`` the runtime's callback error carrying that message). A caller keeps the check by
using the returned value: ``p = _validate.open_interval("p", p, 0.0, 1.0)``.
"""

import os
import resource
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


def _floats(name: str, value) -> np.ndarray:
    """``value`` as a float array; a string, a table or a ragged list names ``name``."""
    if isinstance(value, str | bytes | dict):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number (or an array of numbers), got {value!r}"
        ) from None


def finite(name: str, value):
    """``value`` (scalar or array) must be finite. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value), "must be finite")
    if not np.all(np.isfinite(_floats(name, value))):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def number(name: str, value) -> float:
    """``value`` must be a single finite real number (not a bool, string, list or table)."""
    if isinstance(value, bool) or np.ndim(_floats(name, value)) != 0:
        raise ValueError(f"{name} must be a single number, got {value!r}")
    finite(name, value)
    return float(value)


def positive(name: str, value):
    """``value`` must be finite and > 0. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value > 0),
                             "must be finite and > 0")
    finite(name, value)
    if not np.all(_floats(name, value) > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def non_negative(name: str, value):
    """``value`` must be finite and >= 0. Returns ``value`` (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value >= 0),
                             "must be finite and >= 0")
    finite(name, value)
    if not np.all(_floats(name, value) >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def open_interval(name: str, value, lo: float, hi: float):
    """``value`` must be finite and lie strictly between ``lo`` and ``hi``. Returns ``value``
    (checked when traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value > lo) & (value < hi),
                             f"must lie in ({lo:g}, {hi:g})")
    finite(name, value)
    v = _floats(name, value)
    if not np.all((v > lo) & (v < hi)):
        raise ValueError(f"{name} must lie in ({lo:g}, {hi:g}), got {value!r}")
    return value


def closed_interval(name: str, value, lo: float, hi: float):
    """``value`` must be finite and lie in ``[lo, hi]``. Returns ``value`` (checked when
    traced)."""
    if not _concrete(value):
        return _traced_check(name, value, jnp.isfinite(value) & (value >= lo) & (value <= hi),
                             f"must lie in [{lo:g}, {hi:g}]")
    finite(name, value)
    if not np.all((_floats(name, value) >= lo) & (_floats(name, value) <= hi)):
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")
    return value


def below(name: str, value, hi: float, what: str = ""):
    """``value`` must be finite and < ``hi`` (``what``: the quantity's name in the message).
    Returns ``value`` (checked when traced)."""
    label = f"{name} = {what}" if what else name
    if not _concrete(value):
        return _traced_check(label, value, jnp.isfinite(value) & (value < hi),
                             f"must be < {hi:g}")
    finite(name, value)
    if not np.all(_floats(name, value) < hi):
        raise ValueError(f"{label} must be < {hi:g}, got {value!r}")
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
    v = _floats(name, values)
    if v.ndim != 1 or v.size == 0 or np.any(np.diff(v) <= 0):
        raise ValueError(f"{name} must be a non-empty, strictly increasing 1-d sequence")


def float64_enabled(what: str) -> None:
    """``what`` needs float64: raise unless ``jax_enable_x64`` is on (crsky never flips it)."""
    if not jax.config.jax_enable_x64:
        raise ValueError(
            f"{what} needs float64: call jax.config.update('jax_enable_x64', True) first "
            "(the crsky command line does)"
        )


def available_memory() -> int:
    """Bytes this process may still allocate: the operating system's available memory
    (``MemAvailable`` of ``/proc/meminfo``, else the physical memory), capped by the
    address-space limit (``ulimit -v``) when one is set."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        available = min(available, soft)
    return int(available)


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units (``"1.5 GiB"``)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = 0
    while abs(n) >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.3g} {units[power]}"


def fits_in_memory(names: str, nbytes: float, what: str) -> None:
    """Refuse a request whose arrays need more memory than is available, before allocating.

    Args:
        names: the parameter(s) that set the size, as the user wrote them (``"nside=4096"``).
        nbytes: an estimate of the bytes the request allocates at its peak (a lower bound is
            fine: the check is there to refuse the impossible at once, not to budget exactly).
        what: what the memory holds, for the message.
    """
    available = available_memory()
    if nbytes > available:
        raise ValueError(
            f"{names} needs about {format_bytes(nbytes)} of memory for {what}, more than the "
            f"{format_bytes(available)} available; choose a smaller value"
        )
