"""Ensemble statistics of the small-scale anisotropy versus back-tracking time.

Input: the per-realisation summaries of :func:`crsky.physics.sky.realisation_summary` stacked over
``R``
realisations (leading axis), the saved times and the running diffusion tensor ``K(T)`` of the same
ensemble (:func:`crsky.physics.diffusion.diffusion_tensor`). Output, for one gradient ``g = grad n
/ n``
and one ``K`` in the Liouville map (rel.-diffusion paper eq. (2.1)): the ensemble-averaged
``<C_l>(T)`` (eq. (2.3)), the shot noise (eq. (3.1)), the estimator ``C^_l = <C_l> - N``, the
"standard dipole" of the ensemble-averaged intensity (eq. (2.3) with ``<r1 r2> -> <r1><r2>``), the
relative diffusion tensor (eq. (2.4)) and the sum rules (2.5)-(2.7) next to their right-hand sides.

Units: T = tOmega r_L in Lc/c, K in Lc c, g in 1/Lc; spectra are dimensionless. All functions are
pure jnp code, differentiable in ``g`` and ``K``.
"""

from collections.abc import Mapping

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from crsky import _validate
from crsky.physics import sky

SUMMARY_KEYS = ("cross_spectra", "alm_low", "mean", "second_moments")


class SumRules(eqx.Module):
    """The sum rules of the rel.-diffusion paper, eqs. (2.5)-(2.7): each left side next to its
    right side, dimensionless, shape (n_times,).

    Attributes:
        variance: pixel mean of ``dI²`` (exact on the grid); eq. (2.5).
        variance_spectrum: ``Σ_{ℓ≤lmax} (2ℓ+1) ⟨C_ℓ⟩ / 4π`` (the same, from the spectrum).
        variance_rhs: ``2T g·K^s·g``.
        monopole: ``⟨C_0⟩ / 4π``; eq. (2.6).
        monopole_rhs: ``2T g·(K^s − K̃^s)·g``.
        higher: ``Σ_{1≤ℓ≤lmax} (2ℓ+1) ⟨C_ℓ⟩ / 4π``; eq. (2.7).
        higher_rhs: ``2T g·K̃^s·g``.
    """

    variance: Float[Array, " n_times"]
    variance_spectrum: Float[Array, " n_times"]
    variance_rhs: Float[Array, " n_times"]
    monopole: Float[Array, " n_times"]
    monopole_rhs: Float[Array, " n_times"]
    higher: Float[Array, " n_times"]
    higher_rhs: Float[Array, " n_times"]


class SpectrumStatistics(eqx.Module):
    """Anisotropy statistics of an ensemble versus back-tracking time, for one gradient and
    one K in the Liouville map (``L = lmax + 1``; spectra dimensionless).

    Attributes:
        ell: multipoles 0..lmax, shape (L,).
        t_omega: saved times τ = tΩ, shape (n_times,).
        T: back-tracking times T = τ r_L in Lc/c, shape (n_times,).
        grad_n_over_n: the gradient g in 1/Lc, shape (3,).
        K_liouville: K in the Liouville map, Lc·c, shape (3, 3).
        cl_mean, cl_err: ``⟨C_ℓ⟩`` (eq. (2.3)) and its standard error over realisations
            (std / sqrt(R); NaN for R = 1), shape (n_times, L).
        noise: shot noise ``N = (4π / Npix) 2T g·K^s·g`` (eq. (3.1)), shape (n_times,).
        cl_hat, cl_hat_err: ``Ĉ_ℓ = ⟨C_ℓ⟩ − N`` and its error, shape (n_times, L).
        dipole_standard: ``C_1`` of the ensemble-averaged map ``⟨dI⟩``, shape (n_times,).
        dipole_diffusion: standard diffusion ``C_1 = 4π |K g|²`` (eq. (1.1)), shape (n_times,).
        K_relative: ``K̃^s`` of eq. (2.4) on the pixel grid, Lc·c, shape (n_times, 3, 3).
        sum_rules: :class:`SumRules`.
    """

    ell: Array
    t_omega: Float[Array, " n_times"]
    T: Float[Array, " n_times"]
    grad_n_over_n: Float[Array, "3"]
    K_liouville: Float[Array, "3 3"]
    cl_mean: Float[Array, "n_times ell"]
    cl_err: Float[Array, "n_times ell"]
    noise: Float[Array, " n_times"]
    cl_hat: Float[Array, "n_times ell"]
    cl_hat_err: Float[Array, "n_times ell"]
    dipole_standard: Float[Array, " n_times"]
    dipole_diffusion: Float[Array, " n_times"]
    K_relative: Float[Array, "n_times 3 3"]
    sum_rules: SumRules


def ensemble_statistics(
    summaries: Mapping,
    t_omega,
    r_larmor: float,
    K,
    grad_n_over_n,
    *,
    nside: int,
    K_liouville=None,
) -> SpectrumStatistics:
    """Anisotropy statistics of an ensemble versus back-tracking time.

    Args:
        summaries: :func:`crsky.physics.sky.realisation_summary` outputs stacked over realisations:
            ``cross_spectra`` (R, n_times, lmax + 1, 6, 6), ``alm_low`` complex (R, n_times, 6, 3),
            ``mean`` (R, n_times, 6), ``second_moments`` (R, n_times, 6, 6).
        t_omega: saved times ``tOmega``, shape (n_times,).
        r_larmor: Larmor radius in Lc; ``T = tOmega r_L`` in Lc/c.
        K: running diffusion tensor ``K(T)`` of the ensemble, Lc c, shape (n_times, 3, 3); its
            symmetric part is the ``K^s`` of eqs. (2.5)-(2.6) and (3.1).
        grad_n_over_n: ``g`` in 1/Lc, shape (3,) (:func:`crsky.physics.sky.reference_gradient`).
        nside: HEALPix nside of the maps (``Npix`` of the shot noise).
        K_liouville: ``K`` in the Liouville map, Lc c, shape (3, 3); default ``K[-1]`` (the
            ensemble value at the last time).

    Returns:
        :class:`SpectrumStatistics` over the saved times.
    """
    x, alm, mean, moments = _check_summaries(summaries)
    n_times = x.shape[1]
    t_omega = jnp.asarray(t_omega)
    if t_omega.shape != (n_times,):
        raise ValueError(f"t_omega must have shape ({n_times},), got {t_omega.shape}")
    _validate.positive("t_omega", t_omega)
    _validate.positive("r_larmor", r_larmor)
    if np.shape(K) != (n_times, 3, 3):
        raise ValueError(f"K must have shape ({n_times}, 3, 3), got {np.shape(K)}")
    _validate.finite("K", K)
    _validate.power_of_two("nside", nside)
    K = jnp.asarray(K)
    K_liouville = K[-1] if K_liouville is None else jnp.asarray(K_liouville)
    g = jnp.asarray(grad_n_over_n)
    c = sky.liouville_coefficients(g, K_liouville)  # validates g and K_liouville
    if g.shape != (3,) or K_liouville.shape != (3, 3):
        raise ValueError("grad_n_over_n must have shape (3,) and K_liouville shape (3, 3)")

    T = t_omega * r_larmor  # T = tOmega r_L in Lc/c
    n_real = x.shape[0]
    ell = jnp.arange(x.shape[2])
    cl = sky.liouville_spectrum(x, g, K_liouville)
    cl_mean = jnp.mean(cl, axis=0)
    cl_err = jnp.std(cl, axis=0, ddof=1) / np.sqrt(n_real) if n_real > 1 else jnp.nan * cl_mean
    Ks = 0.5 * (K + jnp.swapaxes(K, -1, -2))
    gKg = jnp.einsum("i,tij,j->t", g, Ks, g)
    # Rel.-diffusion paper eq. (3.1): N = (4 pi / Npix) 2T K^s_ij g_i g_j
    noise = 4 * jnp.pi / (12 * nside**2) * 2 * T * gKg
    # Eq. (2.3) with <r1 r2> -> <r1><r2>: C_1 of the ensemble-mean map, a_{1,-1} = -a_11^*
    a1 = jnp.einsum("a,tam->tm", c, jnp.mean(alm, axis=0))[:, 1:]
    dipole_standard = (jnp.abs(a1[:, 0]) ** 2 + 2 * jnp.abs(a1[:, 1]) ** 2) / 3
    # Rel.-diffusion paper eq. (1.1): C_1 / 4 pi = |K grad n / n|^2
    dipole_diffusion = 4 * jnp.pi * jnp.sum(jnp.einsum("tij,j->ti", K, g) ** 2, axis=-1)
    # Eq. (2.4) on the grid: K~^s = (<mean(r r)> - <mean(r) mean(r)>) / 2T
    r_bar = mean[..., :3]
    rr_bar = jnp.mean(r_bar[..., :, None] * r_bar[..., None, :], axis=0)
    K_relative = (jnp.mean(moments[..., :3, :3], axis=0) - rr_bar) / (2 * T[:, None, None])
    weight = (2 * ell + 1) / (4 * jnp.pi)
    sum_rules = SumRules(
        # Eq. (2.5): (1/4 pi) sum_l (2l+1) <C_l> = sky mean of dI^2 ~ 2T K^s g g
        variance=jnp.einsum("a,tab,b->t", c, jnp.mean(moments, axis=0), c),
        variance_spectrum=cl_mean @ weight,
        variance_rhs=2 * T * gKg,
        # Eq. (2.6): <C_0>/4 pi ~ 2T (K^s - K~^s) g g
        monopole=cl_mean[:, 0] / (4 * jnp.pi),
        monopole_rhs=2 * T * (gKg - jnp.einsum("i,tij,j->t", g, K_relative, g)),
        # Eq. (2.7): (1/4 pi) sum_{l>=1} (2l+1) <C_l> ~ 2T K~^s g g
        higher=cl_mean[:, 1:] @ weight[1:],
        higher_rhs=2 * T * jnp.einsum("i,tij,j->t", g, K_relative, g),
    )
    return SpectrumStatistics(
        ell=ell,
        t_omega=t_omega,
        T=T,
        grad_n_over_n=g,
        K_liouville=K_liouville,
        cl_mean=cl_mean,
        cl_err=cl_err,
        noise=noise,
        # Rel.-diffusion paper, section 3: the estimator C^_l = <C_l> - N
        cl_hat=cl_mean - noise[:, None],
        cl_hat_err=cl_err,
        dipole_standard=dipole_standard,
        dipole_diffusion=dipole_diffusion,
        K_relative=K_relative,
        sum_rules=sum_rules,
    )


def _check_summaries(summaries: Mapping):
    missing = [k for k in SUMMARY_KEYS if k not in summaries]
    if missing:
        raise ValueError(f"summaries is missing {', '.join(missing)}")
    x, alm, mean, moments = (jnp.asarray(summaries[k]) for k in SUMMARY_KEYS)
    if x.ndim != 5 or x.shape[-2:] != (6, 6) or x.shape[2] < 2:
        raise ValueError(
            f"summaries['cross_spectra'] must be (R, n_times, L>=2, 6, 6), got {x.shape}"
        )
    lead = x.shape[:2]
    expected = {"alm_low": (alm, (6, 3)), "mean": (mean, (6,)), "second_moments": (moments, (6, 6))}
    for key, (value, tail) in expected.items():
        if value.shape != lead + tail:
            raise ValueError(f"summaries[{key!r}] must have shape {lead + tail}, got {value.shape}")
    for key in SUMMARY_KEYS:
        _validate.finite(f"summaries[{key!r}]", jnp.abs(jnp.asarray(summaries[key])))
    return x, alm, mean, moments
