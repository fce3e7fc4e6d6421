"""Steady-state angular power spectrum of the BGK-like closure (rel.-diffusion paper, section 4).

Rel.-diffusion paper eq. (4.7), with the relative scattering rate ``ν_r(x) = ν0 (1 − x)^p``
(``0 < p < 1``, ``x = p̂1·p̂2``):

    ⟨C_ℓ⟩ = (3/2) Q1 / (ℓ(ℓ+1)) ∫_{−1}^{1} x P_ℓ(x) / ν_r(x) dx,   Q1 = K_ij ∂_i n ∂_j n / (6π).

Closed form:
``I_n(p) = ∫_{−1}^{1} (1 − x)^{−p} P_n(x) dx = 2^{1−p} Γ(1−p) Γ(n+p) / (Γ(p) Γ(n+2−p))``
(Rodrigues' formula and n integrations by parts; positive for every n) and
``x P_ℓ = ((ℓ+1) P_{ℓ+1} + ℓ P_{ℓ−1}) / (2ℓ+1)``, evaluated through ``gammaln`` so that ℓ in the
thousands neither overflows nor loses precision. Exact and differentiable in ``p``.

Normalisation: with ``∇n/n`` in ``Q1`` (:func:`q1`) eq. (4.7) is the spectrum of ``f/n``
(phase-space density per steradian relative to n); the relative intensity
``δI = (4πf − n)/n`` of the simulations has ``(4π)²`` times this spectrum. Check: for
``p → 0`` (constant ν = 1/(3κ), K = κ 1), ``C_1 = Q1/(2ν) = κ² |∇n/n|² / (4π)``, and
``(4π)² C_1`` is the standard dipole ``4π |K∇n/n|²`` (eq. 1.1); docs/physics.md (R14).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from crsky import _validate


def _check_ell(ell) -> None:
    if isinstance(ell, jax.core.Tracer):
        return
    v = np.asarray(ell, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 1) or np.any(v != np.round(v)):
        raise ValueError(f"ell must hold integers >= 1, got {ell!r}")


def _log_moment(n, p):
    """``ln I_n(p)``, ``I_n = ∫ (1 − x)^{−p} P_n(x) dx`` (n ≥ 0, 0 < p < 1)."""
    # Rel.-diffusion paper, below eq. (4.7): closed form through Gamma functions
    return (
        (1.0 - p) * jnp.log(2.0)
        + gammaln(1.0 - p)
        - gammaln(p)
        + gammaln(n + p)
        - gammaln(n + 2.0 - p)
    )


def cl_shape(p, ell):
    """``⟨C_ℓ⟩`` of eq. (4.7) for ``Q1 = 1`` and ``ν_r = (1 − x)^p`` (dimensionless).

    Args:
        p: exponent of the relative scattering rate, scalar in (0, 1).
        ell: multipoles, integer array (any shape), ``ℓ ≥ 1``.

    Returns:
        Array with the shape of ``ell`` (float64 when x64 is enabled; needed for ℓ ≳ 100 to
        keep 1e-10 accuracy). ``jax.grad`` in ``p`` is exact (digamma functions).
    """
    p = _validate.open_interval("p", p, 0.0, 1.0)  # checked at run time when traced
    _check_ell(ell)
    ell = jnp.asarray(ell, dtype=jnp.result_type(float))
    # x P_ℓ = ((ℓ+1) P_{ℓ+1} + ℓ P_{ℓ−1}) / (2ℓ+1), both moments from the closed form
    up = jnp.log(ell + 1.0) + _log_moment(ell + 1.0, p)
    down = jnp.log(ell) + _log_moment(ell - 1.0, p)
    moment = jnp.exp(down) * (1.0 + jnp.exp(up - down)) / (2.0 * ell + 1.0)
    return 1.5 * moment / (ell * (ell + 1.0))  # Rel.-diffusion paper eq. (4.7)


def cl(p, ell, q1, nu0=1.0):
    """``⟨C_ℓ⟩ = (Q1/ν0) cl_shape(p, ℓ)`` for ``ν_r = ν0 (1 − x)^p`` (eq. 4.7).

    Args:
        p: scalar in (0, 1).
        ell: integer array, ``ℓ ≥ 1``.
        q1: amplitude ``Q1`` (units of 1/time, see :func:`q1`), ≥ 0.
        nu0: rate normalisation ``ν0`` (1/time, same time unit), > 0.
    """
    q1 = _validate.non_negative("q1", q1)
    nu0 = _validate.positive("nu0", nu0)
    return q1 / nu0 * cl_shape(p, ell)


def q1(K, grad_n_over_n):
    """``Q1 = K_ij g_i g_j / (6π)``, ``g = ∇n / n`` (rel.-diffusion paper, below eq. 4.6).

    Args:
        K: diffusion tensor, (3, 3), e.g. in ``Lc²/(Lc/c)`` = ``Lc c``.
        grad_n_over_n: (3,) logarithmic density gradient, in ``1/Lc``.

    Returns:
        Scalar ``Q1`` in ``c / Lc`` (1/time) for the units above.
    """
    K = _validate.finite("K", K)
    grad_n_over_n = _validate.finite("grad_n_over_n", grad_n_over_n)
    K, g = jnp.asarray(K), jnp.asarray(grad_n_over_n)
    if K.shape != (3, 3) or g.shape != (3,):
        raise ValueError(f"K must be (3, 3) and grad_n_over_n (3,), got {K.shape}, {g.shape}")
    return g @ K @ g / (6.0 * jnp.pi)  # Rel.-diffusion paper, eq. (4.6): Q1 = K_ij ∂n ∂n / 6π
