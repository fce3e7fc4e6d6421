"""Beam observables of the beam paper: width, fractional excess, eigenvalue shift, cut-off.

The numerical side solves beam paper eq. (8) with :mod:`crsky.physics.pitch_angle` for the peaked
profile
and for D ≡ 1 on the same grid; each observable sits beside its matched-asymptotic formula
(PHYSICS.md §A). Everything is differentiable in (ε, δ, u) through the implicit eigen-derivatives
(float64 required).

Units of the conversions: CR proton energies ``E`` in TeV (ultra-relativistic, ``p c = E``),
magnetic field ``B0`` in μG, lengths in pc. Constants (exact SI definitions or CODATA 2018):
``c = 299 792 458 m/s``, ``1 pc = 3.085 677 581 491 367e16 m`` (IAU 2015), ``1 μG = 1e-10 T``,
``e = 1.602 176 634e-19 C``, ``m_p c² = 938.272 088 16 MeV``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from crsky import _validate
from crsky.physics import pitch_angle
from crsky.physics.pitch_angle import J1_ZERO

C_LIGHT_M_S = 299_792_458.0
PARSEC_M = 3.0856775814913673e16
TESLA_PER_MICROGAUSS = 1e-10
PROTON_MASS_TEV = 938.27208816e-6  # m_p c² in TeV (CODATA 2018)

LAMBDA1_FLAT = 14.52800341
"""First positive eigenvalue of eq. (9) (D ≡ 1, u = 0); PHYSICS.md §A: 14.5280 (seed: 14.54)."""

Q_C_DEFAULT = 4.6
"""Power-law index of the CR background ``F_C ∝ p^{−q_c}`` (beam paper: 4.6–4.7)."""


class BeamObservables(eqx.Module):
    """Beam characteristics (dimensionless unless stated); ``obs.name`` or ``obs["name"]``.

    Attributes:
        lambda1: first positive eigenvalue of eq. (8) with the chosen profile.
        lambda1_flat: same for D ≡ 1 and the same u (eq. 9 for u = 0).
        delta_lambda: ``lambda1 − lambda1_flat``.
        delta_lambda_asymptotic: PHYSICS.md §A ``b² λ² Φ²(1) / (4 U(1))`` (summed over both
            peaks, with ``λ → λ(1 ± u)`` for u ≠ 0).
        beam_width_mu: ``b = j1² ε / 2`` (width in μ).
        beam_width_deg: ``Δϑ = √(2b) = j1 √ε`` in degrees.
        fractional_excess: ``1 − Ψ(1) / Ψ_outer(1)`` from the numerical eigenfunction Ψ, where
            ``Ψ_outer = c Φ`` is the large-scale (D ≡ 1) solution fitted to Ψ in L².
        fractional_excess_asymptotic: ``x / (1 + x)``, ``x = λ1 (1 + u) b / 2`` (PHYSICS.md §A:
            ``Ψ_i(1) ≈ Φ(1) / (1 + λ b / 2)``).
        fractional_excess_leading: ``λ1 (1 + u) b / 2`` (the paper's ``≈ 53.4 ε``).

    The excess is positive when the flattened tip lies below the outer solution; the paper's beam
    is this feature where the large-scale anisotropy has its minimum along the field.
    """

    lambda1: jax.Array
    lambda1_flat: jax.Array
    delta_lambda: jax.Array
    delta_lambda_asymptotic: jax.Array
    beam_width_mu: jax.Array
    beam_width_deg: jax.Array
    fractional_excess: jax.Array
    fractional_excess_asymptotic: jax.Array
    fractional_excess_leading: jax.Array

    def __getitem__(self, name: str):
        return getattr(self, name)

    def to_dict(self) -> dict:
        """The observables as a ``{name: value}`` dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def observables(
    eps,
    delta,
    u=0.0,
    profile: str = "matched",
    *,
    degree: int = pitch_angle.DEFAULT_DEGREE,
    layers: int = pitch_angle.DEFAULT_LAYERS,
) -> BeamObservables:
    """Beam observables for ``(ε, δ, u)``; differentiable (``jax.grad`` of any field works).

    Args:
        eps: ``ε = r_g / l`` (scalar, see :func:`crsky.physics.pitch_angle.solve` for the range).
        delta: ``δ = V_A / c`` (scalar ≥ 0).
        u: bulk speed in units of c (``|u| < 1``).
        profile: scattering profile (:data:`crsky.physics.pitch_angle.PROFILES`); ``flat`` has no
            peak,
            so its shifts and excesses are zero.
        degree, layers: resolution (see :func:`crsky.physics.pitch_angle.solve`).

    Returns:
        :class:`BeamObservables`. Float64 required.
    """
    sol = pitch_angle.solve(eps, delta, u, profile, 1, degree=degree, layers=layers)
    flat = pitch_angle.solve(
        eps, delta, u, "flat", 1, degree=degree, layers=layers, mesh_profile=profile
    )
    psi, phi, lam0 = sol.psi[0], flat.psi[0], flat.lambdas[0]
    b = pitch_angle.peak_width(eps)
    peaked = 0.0 if profile == "flat" else 1.0
    outer_at_tip = jnp.sum(sol.weights * psi * phi) * phi[-1]  # L² fit c Φ, both ∫ . ² = 1
    u_total = jnp.sum(sol.weights * (u + sol.mu) * phi**2)  # U(1) = ∫ (u + μ) Φ² dμ
    # PHYSICS.md §A: δλ = b² λ² Φ²(1) / (4 U(1)); Frobenius Φ'(±1) = λ (1 ± u) Φ(±1) / 2 for u ≠ 0
    tips = (1.0 + u) ** 2 * phi[-1] ** 2 + (1.0 - u) ** 2 * phi[0] ** 2
    x = lam0 * (1.0 + u) * b / 2.0  # PHYSICS.md §A: δΦ(1)/Φ(1) ≈ λ1 b / 2
    return BeamObservables(
        lambda1=sol.lambdas[0],
        lambda1_flat=lam0,
        delta_lambda=sol.lambdas[0] - lam0,
        delta_lambda_asymptotic=peaked * b**2 * lam0**2 * tips / (4.0 * u_total),
        beam_width_mu=b,
        beam_width_deg=jnp.degrees(J1_ZERO * jnp.sqrt(eps)),  # PHYSICS.md §A: Δϑ = j1 √ε
        fractional_excess=1.0 - psi[-1] / outer_at_tip,
        fractional_excess_asymptotic=peaked * x / (1.0 + x),
        fractional_excess_leading=peaked * x,
    )


# --------------------------------------------------------------------------------------------
# units and the seed's chain


def larmor_radius_pc(energy_tev, b0_ugauss):
    """Gyro-radius ``r_g = p c / (e B0)`` in pc of a proton of energy ``E`` (TeV) in ``B0`` (μG).

    Ultra-relativistic (``p c = E``); ``r_g ≈ 1.0810e-3 pc × E/TeV / (B0/μG)``.
    """
    energy_tev = _validate.positive("energy_tev", energy_tev)
    b0_ugauss = _validate.positive("b0_ugauss", b0_ugauss)
    # r_g = E / (e c B0): E = E_TeV 1e12 e J cancels e
    return energy_tev * 1e12 / (C_LIGHT_M_S * b0_ugauss * TESLA_PER_MICROGAUSS) / PARSEC_M


def eps_from_scale(l_pc, energy_tev, b0_ugauss):
    """``ε = r_g / l`` for turbulence scale ``l`` (pc), energy (TeV) and ``B0`` (μG)."""
    l_pc = _validate.positive("l_pc", l_pc)
    return larmor_radius_pc(energy_tev, b0_ugauss) / l_pc  # Beam paper: ε = r_g(p)/l


def scale_from_eps(eps, energy_tev, b0_ugauss):
    """Turbulence scale ``l = r_g / ε`` in pc."""
    eps = _validate.positive("eps", eps)
    return larmor_radius_pc(energy_tev, b0_ugauss) / eps


def eps_from_width(width_deg):
    """``ε = Δϑ² / j1²`` for a beam of angular width ``Δϑ`` in degrees.

    PHYSICS.md §A: ε = Δϑ²/j1² (corrects the seed's Δϑ²/j1); 10° gives ε ≈ 2.07e-3.
    """
    width_deg = _validate.positive("width_deg", width_deg)
    return np.radians(width_deg) ** 2 / J1_ZERO**2


def k_parameter(l_pc, b0_ugauss):
    """``K = c / (l ω_c)`` with ``ω_c = e B0 / m_p`` (beam paper eq. 15); ``K = ε m_p c / p``."""
    l_pc = _validate.positive("l_pc", l_pc)
    return larmor_radius_pc(PROTON_MASS_TEV, b0_ugauss) / l_pc  # c/(l ω_c) = r_g(p = m_p c)/l


def constant_a(q_c=Q_C_DEFAULT, lambda1=LAMBDA1_FLAT):
    """``A = 8 / (λ1 j1⁴ (q_c − 2))`` (beam paper eq. 14); ≈ 9.8e-4 for q_c = 4.6."""
    q_c = _validate.open_interval("q_c", q_c, 2.0, np.inf)
    lambda1 = _validate.positive("lambda1", lambda1)
    return 8.0 / (lambda1 * J1_ZERO**4 * (q_c - 2.0))  # Beam paper eq. (14)


def p_bmax_over_mc(k, va_over_c, a, alpha):
    """``p_Bmax / (m c) = (1/K) √((V_A/c) A / α)`` (beam paper eq. 15)."""
    k = _validate.positive("k", k)
    va_over_c = _validate.positive("va_over_c", va_over_c)
    a = _validate.positive("a", a)
    alpha = _validate.positive("alpha", alpha)
    return jnp.sqrt(va_over_c * a / alpha) / k  # Beam paper eq. (15)


def p_bmax_tev(l_pc, b0_ugauss, va_over_c, alpha, q_c=Q_C_DEFAULT):
    """Maximum beam energy (TeV) for scale ``l`` (pc), ``B0`` (μG), ``V_A/c``, ``α`` and ``q_c``.

    Eq. (15) with ``A`` from :func:`constant_a`; equivalently ``r_g(p_Bmax) = l √(δ A / α)``.
    """
    k = k_parameter(l_pc, b0_ugauss)
    return PROTON_MASS_TEV * p_bmax_over_mc(k, va_over_c, constant_a(q_c), alpha)


# --------------------------------------------------------------------------------------------
# figure


