"""Synthetic Kolmogorov turbulence: a regular field plus a sum of random plane waves.

Relative-diffusion paper, section 3 (docs/physics.md (R1), (R2)):

    B(x) = B0 ẑ + δB(x),   δB(x) = Σ_n δB_n cos(k_n·x + β_n)

with isotropically random directions k̂_n, δB_n ⊥ k_n (random polarisation angle in the plane
perpendicular to k̂_n), random phases β_n, |k_n| log-spaced from 2π/λmax to 2π/λmin,
|δB_n|² ∝ k_n³ / (1 + (k_n Lc)^γ) and Σ_n |δB_n|² = 2σ²B0², so that ⟨δB²⟩ = σ²B0².

Units: lengths in ``Lc`` (so ``lc`` is 1 unless the user measures lengths in something else),
wave numbers in 1/Lc, fields in B0.
"""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from crsky import _validate

KOLMOGOROV_GAMMA = 11.0 / 3.0
# Peak bytes per plane wave of sample_modes: about 25 float64 values (k, δB, β and the random
# numbers, directions and polarisation basis they are built from).
MODE_BYTES = 200


class Modes(eqx.Module):
    """One realisation of the turbulent field: ``N`` plane waves (a pytree).

    R realisations stack along a leading axis (shapes (R, N, 3) and (R, N)), which
    :func:`turbulent_field` and :func:`crsky.physics.tracing.backtrack` evaluate in one pass.

    Attributes:
        k: wave vectors k_n, shape (N, 3), units 1/Lc.
        amplitude: δB_n, shape (N, 3), units B0; δB_n · k_n = 0.
        phase: β_n, shape (N,), radians.
    """

    k: Float[Array, "*r n 3"]
    amplitude: Float[Array, "*r n 3"]
    phase: Float[Array, "*r n"]


def stack_modes(realisations: Sequence[Modes]) -> Modes:
    """R realisations stacked along a leading axis: the form in which :func:`turbulent_field`
    and :func:`crsky.physics.tracing.backtrack` take several fields at once."""
    if not realisations:
        raise ValueError("realisations must hold at least one Modes")
    return jax.tree.map(lambda *a: jnp.stack(a), *realisations)


def check_modes(modes: Modes) -> None:
    """Raise ``ValueError`` unless ``modes`` holds one field (k: (N, 3)) or R stacked ones
    (k: (R, N, 3)), with amplitude of k's shape and phase of its shape less the last axis."""
    k, a, b = (jnp.shape(v) for v in (modes.k, modes.amplitude, modes.phase))
    if len(k) not in (2, 3) or k[-1] != 3:
        raise ValueError(f"modes.k must have shape (N, 3) or (R, N, 3), got {k}")
    if a != k:
        raise ValueError(f"modes.amplitude must have the shape of modes.k {k}, got {a}")
    if b != k[:-1]:
        raise ValueError(f"modes.phase must have shape {k[:-1]}, got {b}")


class TurbulenceSpectrum(eqx.Module):
    """The turbulence spectrum of the synthetic field (rel.-diffusion paper, section 3): a pytree.

    ``|δB_n|² ∝ k_n³ / (1 + (k_n lc)^γ)`` over ``n_modes`` wave numbers log-spaced from
    ``2π/lambda_max`` to ``2π/lambda_min``, normalised to ``⟨δB²⟩ = σ² B0²``.

    Attributes:
        sigma: turbulence level σ = sqrt(⟨δB²⟩)/B0, dimensionless, >= 0 (differentiable: the
            amplitudes are linear in σ).
        lambda_min, lambda_max: shortest and longest wavelength, units Lc, 0 < λmin < λmax.
        lc: bend-over (correlation) length of the spectrum, units Lc, > 0.
        gamma: spectral index, > 0 (11/3: Kolmogorov).
        n_modes: number of plane waves N, an integer >= 1 (static; more than ~100 are needed
            for correct diffusion).

    Construction raises ``ValueError`` naming the first bad field (concrete values); traced
    values are checked when the computation runs (``equinox.error_if``).
    """

    sigma: float | Array = 1.0
    lambda_min: float | Array = 0.01
    lambda_max: float | Array = 100.0
    lc: float | Array = 1.0
    gamma: float | Array = KOLMOGOROV_GAMMA
    n_modes: int = eqx.field(static=True, default=128)

    def __check_init__(self):
        _validate.positive_int("n_modes", self.n_modes)
        _validate.fits_in_memory(f"n_modes={self.n_modes}", MODE_BYTES * self.n_modes,
                                 "the plane waves")
        _validate.non_negative("sigma", self.sigma)
        validate_scales(self.lambda_min, self.lambda_max, self.lc, self.gamma)


def validate_scales(lambda_min: float, lambda_max: float, lc: float, gamma: float) -> None:
    """Raise ``ValueError`` naming the first bad length scale or slope of the spectrum."""
    _validate.positive("lambda_min", lambda_min)
    _validate.positive("lambda_max", lambda_max)
    if _validate.concrete(lambda_min, lambda_max) and float(lambda_min) >= float(lambda_max):
        raise ValueError(f"lambda_min ({lambda_min}) must be < lambda_max ({lambda_max})")
    _validate.positive("lc", lc)
    _validate.positive("gamma", gamma)


def sample_modes(key: jax.Array, spectrum: TurbulenceSpectrum, dtype=jnp.float64) -> Modes:
    """Draw one field realisation of ``spectrum`` (rel.-diffusion paper, section 3).

    Args:
        key: JAX PRNG key; the same key gives the same realisation.
        spectrum: the :class:`TurbulenceSpectrum` (σ, wavelengths in Lc, slope, N). The
            amplitudes are linear in ``spectrum.sigma``, so the realisation is differentiable
            in σ at fixed ``key``.
        dtype: float dtype of the returned arrays (float64 needs ``jax_enable_x64``).

    Returns:
        :class:`Modes` with arrays of ``dtype``.
    """
    if not isinstance(spectrum, TurbulenceSpectrum):
        raise ValueError(
            f"spectrum must be a TurbulenceSpectrum, got {type(spectrum).__name__}"
        )
    # traced fields are checked when the computation runs (concrete ones were at construction)
    n_modes = spectrum.n_modes
    sigma = _validate.non_negative("sigma", spectrum.sigma)
    lambda_min = _validate.positive("lambda_min", spectrum.lambda_min)
    lambda_max = _validate.positive("lambda_max", spectrum.lambda_max)
    lc = _validate.positive("lc", spectrum.lc)
    gamma = _validate.positive("gamma", spectrum.gamma)
    k_dir, k_pol, k_phase = jax.random.split(key, 3)
    # |k_n| log-spaced from 2π/λmax to 2π/λmin (rel.-diffusion paper, section 3)
    k_abs = jnp.logspace(
        jnp.log10(2 * jnp.pi / lambda_max), jnp.log10(2 * jnp.pi / lambda_min), n_modes,
        dtype=dtype,
    )
    # Random numbers are drawn in float32 whatever ``dtype`` and whatever jax_enable_x64, so
    # that float32 and float64 runs, and processes with and without x64, share one field for
    # one key (to rounding): like-for-like accuracy checks, hosts that agree on realisation i.
    # isotropic k̂_n: cos θ uniform in [-1, 1], φ uniform in [0, 2π)
    u = jax.random.uniform(k_dir, (n_modes, 2), jnp.float32).astype(dtype)
    cos_t, phi = 2 * u[:, 0] - 1, 2 * jnp.pi * u[:, 1]
    sin_t = jnp.sqrt(1 - cos_t**2)
    k_hat = jnp.stack([sin_t * jnp.cos(phi), sin_t * jnp.sin(phi), cos_t], axis=-1)
    # orthonormal basis of the plane ⊥ k̂_n, and a random polarisation angle in it
    e1 = jnp.stack([cos_t * jnp.cos(phi), cos_t * jnp.sin(phi), -sin_t], axis=-1)
    e2 = jnp.stack([-jnp.sin(phi), jnp.cos(phi), jnp.zeros_like(phi)], axis=-1)
    psi = 2 * jnp.pi * jax.random.uniform(k_pol, (n_modes, 1), jnp.float32).astype(dtype)
    polarisation = jnp.cos(psi) * e1 + jnp.sin(psi) * e2
    # |δB_n|² ∝ k_n³ / (1 + (k_n Lc)^γ), Σ|δB_n|² = 2σ²B0² (rel.-diffusion paper, section 3)
    weight = k_abs**3 / (1 + (k_abs * lc) ** gamma)
    norm = jnp.sqrt(2 * weight / jnp.sum(weight))
    amplitude = jnp.asarray(sigma, dtype) * norm[:, None] * polarisation
    phase = 2 * jnp.pi * jax.random.uniform(k_phase, (n_modes,), jnp.float32).astype(dtype)
    return Modes(k=k_abs[:, None] * k_hat, amplitude=amplitude, phase=phase)


def _sin_taylor_coefficients(dtype) -> tuple[float, ...]:
    """Odd Taylor coefficients of sin(2πv), |v| ≤ 1/4, truncated below half an ulp of ``dtype``.

    The first omitted term bounds the error: (π/2)^(2n+1)/(2n+1)! < eps/2 gives n = 6 terms
    for float32 (5.7e-8) and n = 11 for float64 (1.3e-18).
    """
    eps = float(jnp.finfo(dtype).eps)
    n = 1
    while (np.pi / 2) ** (2 * n + 1) / math.factorial(2 * n + 1) >= eps / 2:
        n += 1
    # sin(2πv) = Σ_j (−1)^j (2π)^(2j+1) v^(2j+1) / (2j+1)!
    return tuple(
        (-1) ** j * (2 * np.pi) ** (2 * j + 1) / math.factorial(2 * j + 1) for j in range(n)
    )


def cos_turns(u: Float[Array, "..."]) -> Float[Array, "..."]:
    """cos(2πu) for phases ``u`` in turns, accurate to ~1 ulp of ``u.dtype`` (float32/float64).

    XLA:CPU evaluates ``jnp.cos`` one element at a time (~1e8/s per core), 10-20x slower than
    this vectorisable form: the reduction r = u − round(u) ∈ [−1/2, 1/2] is exact in floating
    point, then cos(2πr) = sin(2π(1/4 − |r|)) with the argument in [−π/2, π/2], where a Taylor
    polynomial in Horner form converges fast and without cancellation. Measuring phases in
    turns also avoids the rounding of the product 2π·u, which for |u| ~ 1e3 costs ~1e-3 rad in
    float32. Differentiable (round has zero derivative almost everywhere).
    """
    r = u - jnp.round(u)
    v = 0.25 - jnp.abs(r)
    v2 = v * v
    coefficients = _sin_taylor_coefficients(u.dtype)
    # Horner evaluation of the odd Taylor polynomial of sin(2πv)
    poly = jnp.asarray(coefficients[-1], u.dtype)
    for c in coefficients[-2::-1]:
        poly = poly * v2 + c
    return poly * v


def turbulent_field(modes: Modes, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
    """δB(x) = Σ_n δB_n cos(k_n·x + β_n) in units of B0.

    One realisation (``modes.k`` of shape (N, 3)): points ``x`` of any shape (..., 3). R stacked
    realisations (``modes.k`` of shape (R, N, 3)): points of shape (R, M, 3), row r in field r.

    The phases are formed in turns, (k_n/2π)·x + β_n/2π, and the cosine by :func:`cos_turns`.
    They reach ~1e3 turns; both products run at full precision on every backend (a TF32
    matmul on GPUs would ruin them). Cost: 2 small matmuls and one cosine per point and mode.
    """
    if modes.k.ndim == 3 and (jnp.ndim(x) != 3 or jnp.shape(x)[0] != modes.k.shape[0]):
        raise ValueError(
            f"x must have shape (R, M, 3) = ({modes.k.shape[0]}, M, 3) for {modes.k.shape[0]} "
            f"stacked realisations, got {jnp.shape(x)}"
        )
    turns = 1 / (2 * np.pi)
    k_turns = jnp.swapaxes(modes.k, -1, -2) * turns
    phase = modes.phase if modes.k.ndim == 2 else modes.phase[..., None, :]
    # rel.-diffusion paper, section 3: δB(x) = Σ δB_n cos(k_n·x + β_n), phase in turns
    u = jnp.matmul(x, k_turns, precision=jax.lax.Precision.HIGHEST) + phase * turns
    return jnp.matmul(cos_turns(u), modes.amplitude, precision=jax.lax.Precision.HIGHEST)


def magnetic_field(modes: Modes, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
    """B(x)/B0 = ẑ + δB(x)/B0 (docs/physics.md (R1)), x in Lc, shapes as :func:`turbulent_field`."""
    return turbulent_field(modes, x).at[..., 2].add(1.0)
