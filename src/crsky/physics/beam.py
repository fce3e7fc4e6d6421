"""Beam observables of the beam paper: width, fractional excess, eigenvalue shift, cut-off.

The numerical side solves beam paper eq. (8) with :mod:`crsky.physics.pitch_angle` for the peaked
profile and for D ≡ 1 on the same grid; each observable sits beside its matched-asymptotic
formula (beam paper, eqs. (10)–(12) and "Beam characteristics"; docs/physics.md (B9)–(B14)).
Everything is differentiable in (ε, δ, u) through the implicit eigen-derivatives (float64
required).

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
"""First positive eigenvalue of beam paper eq. (9) (D ≡ 1, u = 0), converged: 14.5280; the
paper quotes 14.54 (docs/physics.md (B7))."""

Q_C_DEFAULT = 4.6
"""Power-law index of the CR background ``F_C ∝ p^{−q_c}`` (beam paper: 4.6–4.7)."""


class BeamObservables(eqx.Module):
    """Beam characteristics (dimensionless unless stated); ``obs.name`` or ``obs["name"]``.

    Attributes:
        lambda1: first positive eigenvalue of eq. (8) with the chosen profile.
        lambda1_flat: same for D ≡ 1 and the same u (eq. 9 for u = 0).
        delta_lambda: ``lambda1 − lambda1_flat``.
        delta_lambda_asymptotic: ``b² λ² Φ²(1) / (4 U(1))`` (docs/physics.md (B9); summed over both
            peaks, with ``λ → λ(1 ± u)`` for u ≠ 0).
        beam_width_mu: ``b = j1² ε / 2`` (width in μ).
        beam_width_deg: ``Δϑ = √(2b) = j1 √ε`` in degrees.
        fractional_excess: ``1 − Ψ(1) / Ψ_outer(1)`` from the numerical eigenfunction Ψ, where
            ``Ψ_outer = c Φ`` is the large-scale (D ≡ 1) solution fitted to Ψ in L².
        fractional_excess_asymptotic: ``x / (1 + x)``, ``x = λ1 (1 + u) b / 2`` (docs/physics.md
            (B9): ``Ψ_i(1) ≈ Φ(1) / (1 + λ b / 2)``).
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
    # Beam paper: δλ = b² λ² Φ²(1) / (4 U(1)), Frobenius Φ'(±1) = λ (1 ± u) Φ(±1) / 2 for u ≠ 0;
    # docs/physics.md (B8), (B9)
    tips = (1.0 + u) ** 2 * phi[-1] ** 2 + (1.0 - u) ** 2 * phi[0] ** 2
    x = lam0 * (1.0 + u) * b / 2.0  # Beam paper: δΦ(1)/Φ(1) ≈ λ1 b / 2; docs/physics.md (B11)
    return BeamObservables(
        lambda1=sol.lambdas[0],
        lambda1_flat=lam0,
        delta_lambda=sol.lambdas[0] - lam0,
        delta_lambda_asymptotic=peaked * b**2 * lam0**2 * tips / (4.0 * u_total),
        beam_width_mu=b,
        beam_width_deg=jnp.degrees(J1_ZERO * jnp.sqrt(eps)),  # Δϑ = j1 √ε; docs/physics.md (B10)
        fractional_excess=1.0 - psi[-1] / outer_at_tip,
        fractional_excess_asymptotic=peaked * x / (1.0 + x),
        fractional_excess_leading=peaked * x,
    )


class ExcessTable(eqx.Module):
    """Chebyshev interpolant of the eigen fractional excess over (ln ε, ln δ), u = 0, matched.

    It stores ``r(ε, δ) = excess/(x/(1 + x))``, ``x = λ1 b/2`` (the ratio of the eigen value to
    the matched asymptotics, between ~0.9 and ~1.03, smooth in the logarithms), on a
    tensor product of Chebyshev coefficients; :func:`table_fractional_excess` evaluates it.

    Attributes:
        coefficients: (n_eps, n_delta) Chebyshev coefficients in the scaled logarithms.
        log_eps, log_delta: ``(ln lo, ln hi)`` of the tabulated ranges (static).
        max_rel_error: largest relative error against the direct solver at the check points
            of :func:`tabulate_excess` (midpoints between the nodes), float.
    """

    coefficients: jax.Array
    log_eps: tuple = eqx.field(static=True)
    log_delta: tuple = eqx.field(static=True)
    max_rel_error: float = eqx.field(static=True)


def _chebyshev_nodes(n: int):
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)  # roots of T_n, descending


def _chebyshev_basis(x, n: int):
    """``T_0..T_{n−1}`` at ``x`` (last axis), by the recurrence (smooth up to ``|x| = 1``)."""
    t = [jnp.ones_like(x), x]
    for _ in range(n - 2):
        t.append(2.0 * x * t[-1] - t[-2])
    return jnp.stack(t[:n], axis=-1)


def _scaled(value, log_range):
    lo, hi = log_range
    return jnp.clip((2.0 * jnp.log(value) - lo - hi) / (hi - lo), -1.0, 1.0)


def _asymptotic_excess(eps):
    x = LAMBDA1_FLAT * pitch_angle.peak_width(eps) / 2.0  # Beam paper: δΦ(1)/Φ(1) ≈ λ1 b/2
    return x / (1.0 + x)  # matched asymptotics: Ψ_i(1) ≈ Φ(1)/(1 + λ1 b/2)


def table_fractional_excess(table: ExcessTable, eps, delta):
    """The fractional excess from :class:`ExcessTable` (differentiable; microseconds).

    ``ε`` and ``δ`` outside the tabulated ranges are clamped to their edges in ``r`` (the
    asymptotic factor still follows ``ε``); :func:`tabulate_excess` documents the ranges.
    """
    n_eps, n_delta = table.coefficients.shape
    t_eps = _chebyshev_basis(_scaled(eps, table.log_eps), n_eps)
    t_delta = _chebyshev_basis(_scaled(delta, table.log_delta), n_delta)
    return _asymptotic_excess(eps) * (t_eps @ table.coefficients @ t_delta)


def tabulate_excess(
    eps_range=(1e-6, pitch_angle.EPS_MAX),
    delta_range=(1e-5, 1e-3),
    n_eps: int = 24,
    n_delta: int = 8,
    *,
    degree: int = pitch_angle.DEFAULT_DEGREE,
    layers: int = pitch_angle.DEFAULT_LAYERS,
) -> ExcessTable:
    """Tabulate :attr:`BeamObservables.fractional_excess` (u = 0, matched) over ε and δ.

    Solves eq. (8) at ``n_eps × n_delta`` Chebyshev nodes in (ln ε, ln δ) (resolution
    ``degree``/``layers``), fits the coefficients (exact at the nodes), then measures the
    interpolation error at the ``(n_eps − 1) × (n_delta − 1)`` midpoints between the nodes,
    where a Chebyshev interpolant's error is largest, and stores the maximum in
    ``max_rel_error``. Float64 required; about ``2 n_eps n_delta`` eigen solves.
    """
    _validate.increasing("eps_range", eps_range)
    _validate.increasing("delta_range", delta_range)
    if len(eps_range) != 2 or len(delta_range) != 2 or eps_range[1] > pitch_angle.EPS_MAX:
        raise ValueError(f"eps_range must be (lo, hi) with hi <= {pitch_angle.EPS_MAX} and "
                         "delta_range (lo, hi)")
    for name, n in (("n_eps", n_eps), ("n_delta", n_delta)):
        _validate.positive_int(name, n)
        if n < 2:
            raise ValueError(f"{name} must be >= 2, got {n}")
    log_eps = tuple(float(v) for v in np.log(eps_range))
    log_delta = tuple(float(v) for v in np.log(delta_range))
    ratio = jax.jit(lambda e, d: observables(e, d, 0.0, "matched", degree=degree,
                                            layers=layers).fractional_excess
                    / _asymptotic_excess(e))

    def unscale(x, log_range):
        return np.exp(0.5 * (log_range[0] + log_range[1] + x * (log_range[1] - log_range[0])))

    def values(x_eps, x_delta):
        return np.array([[float(ratio(unscale(a, log_eps), unscale(b, log_delta)))
                          for b in x_delta] for a in x_eps])

    x_eps, x_delta = _chebyshev_nodes(n_eps), _chebyshev_nodes(n_delta)
    # discrete Chebyshev transform in each direction: f = T_eps c T_deltaᵀ at the nodes
    t_eps = np.asarray(_chebyshev_basis(jnp.asarray(x_eps), n_eps))
    t_delta = np.asarray(_chebyshev_basis(jnp.asarray(x_delta), n_delta))
    coefficients = np.linalg.solve(t_eps, np.linalg.solve(t_delta, values(x_eps, x_delta).T).T)
    mid_eps, mid_delta = 0.5 * (x_eps[1:] + x_eps[:-1]), 0.5 * (x_delta[1:] + x_delta[:-1])
    direct = values(mid_eps, mid_delta)
    t_mid_eps = np.asarray(_chebyshev_basis(jnp.asarray(mid_eps), n_eps))
    t_mid_delta = np.asarray(_chebyshev_basis(jnp.asarray(mid_delta), n_delta))
    error = np.max(np.abs(t_mid_eps @ coefficients @ t_mid_delta.T / direct - 1.0))
    return ExcessTable(jnp.asarray(coefficients), log_eps, log_delta, float(error))


# --------------------------------------------------------------------------------------------
# units and the paper's chain of estimates


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

    docs/physics.md (B10): ε = Δϑ²/j1², the inverse of the beam paper's Δϑ = j1 √ε (the paper
    prints Δϑ²/j1, which contradicts its own ε ≈ 2.1e-3); 10° gives ε ≈ 2.07e-3.
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
# the beam at a given scale l: observables, energy dependence, the knee


KNEE_PEV = 3.0
"""Knee energy (PeV): the beam paper's Summary suggests it as the beam source's maximum energy."""

FORWARDS = ("eigen", "asymptotic")
"""How :func:`predict` evaluates the fractional excess (the width and cut-off are closed forms)."""


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def knee_scale_pc(b0_ugauss, knee_pev=KNEE_PEV):
    """``l = r_g(E_knee, B0)`` in pc: the beam paper's (unproven) identification of ``l`` with the
    gyro-radius of a particle at the knee (Summary); 3 PeV in 3 μG gives 1.08 pc."""
    _validate.positive("knee_pev", knee_pev)
    return larmor_radius_pc(1e3 * knee_pev, b0_ugauss)


def predict(
    l_pc,
    b0_ugauss,
    energy_tev,
    va_over_c,
    alpha,
    q_c=Q_C_DEFAULT,
    forward: str = "eigen",
    *,
    degree: int = pitch_angle.DEFAULT_DEGREE,
    layers: int = pitch_angle.DEFAULT_LAYERS,
) -> dict:
    """The three beam observables for a turbulence scale ``l``; differentiable in every number.

    Args:
        l_pc: scale ``l`` (pc); ``ε = r_g(E, B0)/l`` must stay below
            :data:`crsky.physics.pitch_angle.EPS_MAX` (the validated solver range).
        b0_ugauss: regular field ``B0`` (μG).
        energy_tev: proton energy ``E`` (TeV), scalar.
        va_over_c: ``δ = V_A/c``.
        alpha: ``α = F0/F_C``, amplitude of the large-scale anisotropic part at μ = 1 relative to
            the isotropic background (the role ``α`` plays in beam paper eq. 15; the paper does
            not define it in the text we could read).
        q_c: background index, ``F_C ∝ p^{−q_c}``.
        forward: ``"eigen"`` (excess from the eigenfunction of eq. 8, matched profile, resolution
            ``degree``/``layers``) or ``"asymptotic"`` (``x/(1 + x)``, ``x = λ1 b/2``, no solve).

    Returns:
        ``{"eps", "width_deg", "fractional_excess", "p_bmax_tev"}`` (float64 needed for eigen).
    """
    _validate.one_of("forward", forward, FORWARDS)
    _validate.positive("va_over_c", va_over_c)
    eps = eps_from_scale(l_pc, energy_tev, b0_ugauss)
    if _is_concrete(eps) and not np.all(np.asarray(eps) < pitch_angle.EPS_MAX):
        raise ValueError(
            f"l_pc={l_pc!r} gives eps = r_g/l = {np.max(eps):.3g} >= {pitch_angle.EPS_MAX} at "
            f"energy_tev={energy_tev!r}, b0_ugauss={b0_ugauss!r}: outside the validated range "
            "of the eigen solver (the theory needs eps << 1)"
        )
    if forward == "eigen":
        excess = observables(eps, va_over_c, 0.0, "matched", degree=degree,
                             layers=layers).fractional_excess
    else:
        # Beam paper, matched asymptotics: Ψ_i(1) ≈ Φ(1)/(1 + λ1 b/2), so δΦ(1)/Φ(1) = x/(1 + x)
        x = LAMBDA1_FLAT * pitch_angle.peak_width(eps) / 2.0
        excess = x / (1.0 + x)
    return {
        "eps": eps,
        "width_deg": jnp.degrees(J1_ZERO * jnp.sqrt(eps)),  # Beam paper: Δϑ = √(2b) = j1 √ε
        "fractional_excess": excess,
        "p_bmax_tev": p_bmax_tev(l_pc, b0_ugauss, va_over_c, alpha, q_c),
    }


@jax.jit
def _log_observables_jvp(l_pc, b0_ugauss, log_e, va_over_c, alpha, q_c):
    """Width, excess and their derivatives in ``ln E`` at one energy (one compilation reused
    over energies: a vmap over the eigen solver compiles far slower than a loop runs)."""

    def logs(t):
        out = predict(l_pc, b0_ugauss, jnp.exp(t), va_over_c, alpha, q_c, "eigen")
        return jnp.log(jnp.stack([out["width_deg"], out["fractional_excess"]]))

    values, slopes = jax.jvp(logs, (log_e,), (jnp.ones_like(log_e),))
    return jnp.exp(values[0]), jnp.exp(values[1]), slopes[0], slopes[1]


def energy_dependence(l_pc, b0_ugauss, energies_tev, va_over_c, alpha, q_c=Q_C_DEFAULT) -> dict:
    """Width and fractional excess over energy at fixed ``l``, with their local power-law indices.

    The paper's Summary states width ∝ √p and excess ∝ p at fixed ``l``; the indices
    ``d ln(width)/d ln E`` (exactly 1/2 by construction) and ``d ln(excess)/d ln E`` (from the
    eigen solver, forward-mode derivative) show where the second scaling holds.

    Args:
        energies_tev: 1-d increasing energies (TeV); every ``ε = r_g(E)/l`` must stay below
            ``EPS_MAX``. Other arguments as in :func:`predict`.

    Returns:
        ``{"energy_tev", "eps", "width_deg", "fractional_excess", "fractional_excess_leading",
        "width_index", "excess_index"}``, arrays of the length of ``energies_tev``;
        ``fractional_excess_leading`` is the paper's ``λ1 b/2`` (∝ p exactly).
    """
    _validate.increasing("energies_tev", energies_tev)
    energies = np.asarray(energies_tev, dtype=float)
    predict(l_pc, b0_ugauss, energies[-1], va_over_c, alpha, q_c, "asymptotic")  # checks
    width, excess, width_index, excess_index = (
        jnp.stack(column) for column in zip(*(
            _log_observables_jvp(l_pc, b0_ugauss, np.log(e), va_over_c, alpha, q_c)
            for e in energies), strict=True)
    )
    eps = eps_from_scale(l_pc, energies, b0_ugauss)
    return {
        "energy_tev": energies,
        "eps": eps,
        "width_deg": width,
        "fractional_excess": excess,
        # Beam paper: δΦ(1)/Φ(1) ≈ λ1 b/2 ≈ 53.4 ε
        "fractional_excess_leading": LAMBDA1_FLAT * pitch_angle.peak_width(eps) / 2.0,
        "width_index": width_index,
        "excess_index": excess_index,
    }


# --------------------------------------------------------------------------------------------
# distance to the source along the flux tube


OBSERVED_ANISOTROPY = 1e-3
"""Large-scale anisotropy at the Earth, ~1e-3 (beam paper, 'Particle propagation')."""


def scattering_length_pc(l_pc, eps, va_over_c):
    """Pitch-angle scattering length ``c/ν_ϑ = l/a`` (pc), ``a = (δ ln(1/ε) + ε^{3/2})/6``.

    The unit of ``z`` in beam paper eq. (6), with ``ν_ϑ`` of eq. (5).
    """
    _validate.positive("l_pc", l_pc)
    _validate.open_interval("eps", eps, 0.0, 1.0)
    _validate.non_negative("va_over_c", va_over_c)
    return l_pc / pitch_angle.rate_ratio(eps, va_over_c)  # Beam paper eq. (5): ν_ϑ = (v/l) a


class SourceDistance(eqx.Module):
    """Distance along the flux tube over which the first eigenmode decays by a given factor.

    Attributes:
        distance_pc: ``L = (c/ν_ϑ) z`` (pc).
        z: ``ln(A_src/A_obs)/λ1``, in units of the scattering length.
        scattering_length_pc: ``c/ν_ϑ`` (pc), :func:`scattering_length_pc`.
        lambda1, lambda2: first two positive eigenvalues of eq. (8) (matched profile, u = 0).
        mode_separation: ``(λ2 − λ1) z``; the paper needs ≳ 1 for the first mode to dominate.
    """

    distance_pc: jax.Array
    z: jax.Array
    scattering_length_pc: jax.Array
    lambda1: jax.Array
    lambda2: jax.Array
    mode_separation: jax.Array


def source_distance(
    l_pc, eps, va_over_c, source_anisotropy, observed_anisotropy=OBSERVED_ANISOTROPY
) -> SourceDistance:
    """How far a source may lie for its anisotropy to decay to the observed level.

    Far from the source ``Ψ ≈ C Ψ_λ1(μ) e^{−λ1 z}`` (beam paper eqs. 7-8), so an anisotropy
    ``A_src`` at the source (z = 0) falls to ``A_obs`` at ``z = ln(A_src/A_obs)/λ1``, i.e.
    ``L = (c/ν_ϑ) ln(A_src/A_obs)/λ1``. The paper states only that ``λ1 z ≫ 1`` ("not so small"
    at the source); ``A_src`` is an assumption of the caller. Differentiable; float64 required.

    Args:
        l_pc: scale ``l`` (pc). eps: ``ε = r_g/l`` in (0, EPS_MAX). va_over_c: ``δ = V_A/c > 0``.
        source_anisotropy: ``A_src``, the first-mode anisotropy at the source, > ``A_obs``.
        observed_anisotropy: ``A_obs`` at the Earth (default 1e-3), > 0.
    """
    _validate.positive("va_over_c", va_over_c)
    _validate.positive("observed_anisotropy", observed_anisotropy)
    _validate.positive("source_anisotropy", source_anisotropy)
    if _is_concrete(source_anisotropy) and _is_concrete(observed_anisotropy) and not np.all(
        np.asarray(source_anisotropy) > np.asarray(observed_anisotropy)
    ):
        raise ValueError(
            f"source_anisotropy={source_anisotropy!r} must exceed observed_anisotropy="
            f"{observed_anisotropy!r} (the anisotropy decays away from the source)"
        )
    length = scattering_length_pc(l_pc, eps, va_over_c)
    sol = pitch_angle.solve(eps, va_over_c, 0.0, "matched", 2)
    lam1, lam2 = sol.lambdas[0], sol.lambdas[1]
    z = jnp.log(source_anisotropy / observed_anisotropy) / lam1  # Beam paper eq. (7): e^{−λ1 z}
    return SourceDistance(distance_pc=length * z, z=z, scattering_length_pc=length,
                          lambda1=lam1, lambda2=lam2, mode_separation=(lam2 - lam1) * z)


def first_mode_attenuation(distance_pc, l_pc, eps, va_over_c):
    """``e^{−λ1 z}``, ``z = L ν_ϑ/c``: the factor by which the first mode (the large-scale
    anisotropic part) decays over ``distance_pc`` along the flux tube (beam paper eq. 7);
    the inverse of :func:`source_distance`. Float64 required."""
    _validate.positive("distance_pc", distance_pc)
    length = scattering_length_pc(l_pc, eps, va_over_c)
    lam1 = pitch_angle.solve(eps, va_over_c, 0.0, "matched", 1).lambdas[0]
    return jnp.exp(-lam1 * distance_pc / length)  # Beam paper eq. (7)


# --------------------------------------------------------------------------------------------
# beam sustainability against self-generated waves


def beam_content_ratio(eps, alpha, lambda1=LAMBDA1_FLAT):
    """``F_B/F_C = (1/8) λ1 j1⁴ ε² α``: beam paper eq. (13) with ``F0 = α F_C`` (the large-scale
    part at μ = 1 scaling like the background, the paper's assumption behind eq. 15)."""
    _validate.positive("eps", eps)
    _validate.positive("alpha", alpha)
    return lambda1 * J1_ZERO**4 * eps**2 * alpha / 8.0  # Beam paper eq. (13)


def threshold_ratio(va_over_c, q_c=Q_C_DEFAULT):
    """``F_th/F_C = δ/(q_c − 2)``: the beam instability threshold relative to the background
    (beam paper, 'Beam sustainability'); independent of momentum."""
    _validate.positive("va_over_c", va_over_c)
    _validate.open_interval("q_c", q_c, 2.0, np.inf)
    return va_over_c / (q_c - 2.0)  # Beam paper: F_th = δ F_C/(q_c − 2)
