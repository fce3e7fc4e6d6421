"""Spherical-harmonic analysis of HEALPix maps: a_lm, angular power spectra and cross-spectra.

Two back-ends behind one signature (``method=``):

- ``"healpy"`` calls ``healpy.map2alm`` (libsharp): fast, numpy in / numpy out, not traceable.
- ``"jax"`` is a pure-JAX transform that works under ``jit``, ``vmap`` and ``grad``. It uses the
  iso-latitude ring structure of HEALPix: a phase table ``cos(m phi), sin(m phi)`` per ring (rings
  zero-padded to ``4 nside`` pixels), a per-ring sum, and a table of normalised associated Legendre
  functions ``lambda_lm(theta_ring)`` built once in float64 numpy. The tables live in an explicit
  :class:`SHTPlan` made by :func:`make_plan`. Memory: ``~16 nside (lmax + 1)^2`` floats for the
  Legendre table (9.5 MB at nside 32, lmax 96), so the JAX path is meant for nside <= 64.

Both back-ends compute exactly what HEALPix defines (map2alm with unit ring weights and Jacobi
iterations ``alm <- alm + analysis(map - synthesis(alm))``, healpy's default ``iter=3``) and agree
to ~1e-13 relative in float64 (the JAX path needs ``jax_enable_x64`` for better than ~1e-6).

Conventions (HEALPix/healpy): maps in RING ordering, shape ``(..., Npix)`` with
``Npix = 12 nside^2``; complex ``alm`` in healpy's m-major layout (``healpy.Alm.getidx``), shape
``(..., (lmax + 1)(lmax + 2)/2)``, ``mmax = lmax``; ``C_l = sum_m |a_lm|^2 / (2l + 1)``
(rel.-diffusion paper eq. (2.2)). Leading axes (realisations, times, maps) are batch axes.
"""

import equinox as eqx
import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np

from crsky import _validate

METHODS = ("jax", "healpy")


class SHTPlan(eqx.Module):
    """Precomputed kernels of the JAX spherical-harmonic transform for one (nside, lmax).

    Attributes:
        nside: HEALPix resolution (static).
        lmax: largest multipole, ``mmax = lmax`` (static).
        ring_pixels: ``(nrings, 4 nside)`` int, RING pixel index of each padded ring slot
            (padding slots point at pixel 0 and carry zero phase weight).
        ring_slots: ``(Npix,)`` int, flat padded slot of each RING pixel (for synthesis).
        cos_mphi, sin_mphi: ``(nrings, 4 nside, lmax + 1)`` ``cos(m phi_p)``, ``sin(m phi_p)``,
            zero on padding slots.
        legendre: ``(lmax + 1, nrings, lmax + 1)`` ``lambda_lm(theta_ring)`` indexed
            ``[m, ring, l]``, zero for ``l < m``.
        alm_m, alm_l: ``(nalm,)`` int, (m, l) of each entry of the healpy alm layout.
    """

    nside: int = eqx.field(static=True)
    lmax: int = eqx.field(static=True)
    ring_pixels: jax.Array
    ring_slots: jax.Array
    cos_mphi: jax.Array
    sin_mphi: jax.Array
    legendre: jax.Array
    alm_m: jax.Array
    alm_l: jax.Array


def _legendre_table(cos_theta: np.ndarray, sin_theta: np.ndarray, lmax: int) -> np.ndarray:
    """Normalised ``lambda_lm(theta) = Y_lm(theta, 0)`` (Condon-Shortley phase), ``[m, ring, l]``.

    Standard three-term recursion in ``l`` at fixed ``m`` from ``lambda_mm``, run for all ``m`` at
    once, with a per-(m, ring) log scale so ``sin(theta)^m`` never underflows mid-recursion.
    """
    m = np.arange(lmax + 1, dtype=float)[:, None]
    # log|lambda_mm| = 0.5 log((2m+1)/(4 pi) prod_k (2k-1)/(2k)) + m log sin(theta)
    log_ratio = np.concatenate([[0.0], np.cumsum(np.log((2 * m[1:, 0] - 1) / (2 * m[1:, 0])))])
    scale = 0.5 * (np.log((2 * m + 1) / (4 * np.pi)) + log_ratio[:, None]) + m * np.log(sin_theta)
    value = np.where(m % 2 == 0, 1.0, -1.0) * np.ones_like(scale)
    previous = np.zeros_like(scale)
    a_prev = np.full_like(m, np.inf)
    table = np.zeros((lmax + 1, cos_theta.size, lmax + 1))
    for k in range(lmax + 1):
        ms = np.arange(lmax + 1 - k)
        if k > 0:
            l = m + k
            a = np.sqrt((4 * l**2 - 1) / (k * (2 * m + k)))
            # lambda_lm = a_lm (x lambda_{l-1,m} - lambda_{l-2,m} / a_{l-1,m})
            value, previous, a_prev = a * (cos_theta * value - previous / a_prev), value, a
            shift = np.where(np.abs(value) > 1e150, 1e-150, 1.0)
            value, previous, scale = value * shift, previous * shift, scale - np.log(shift)
        table[ms, :, ms + k] = (value * np.exp(scale))[ms]
    return table


def plan_bytes(nside: int, lmax: int) -> int:
    """Peak bytes of :func:`make_plan` (host temporaries and device copies, float64).

    The Legendre table holds ``(lmax + 1)² (4 nside − 1)`` values, each of ``cos(mφ)`` and
    ``sin(mφ)`` ``(4 nside − 1) 4 nside (lmax + 1)``; they exist on the host (with about four
    temporaries of the second kind) and on the device.
    """
    rings = 4 * nside - 1
    legendre = (lmax + 1) ** 2 * rings
    phases = rings * 4 * nside * (lmax + 1)
    return 8 * (2 * legendre + 6 * phases)


def make_plan(nside: int, lmax: int | None = None) -> SHTPlan:
    """Build the JAX transform kernels for ``nside`` and ``lmax`` (default ``3 nside - 1``).

    Array dtypes follow JAX's default float (float64 only with ``jax_enable_x64``). The kernels
    grow as nside³ (:func:`plan_bytes`); a plan that cannot fit in the available memory is
    refused before anything is allocated.
    """
    _validate.power_of_two("nside", nside)
    lmax = _check_lmax(lmax, nside)
    _validate.fits_in_memory(f"nside={nside}, lmax={lmax}", plan_bytes(nside, lmax),
                             "the spherical-harmonic transform kernels")
    nrings, width = 4 * nside - 1, 4 * nside
    start, count, cos_theta, sin_theta, _ = hp.ringinfo(nside, np.arange(1, nrings + 1))
    slot = np.arange(width)
    in_ring = slot[None, :] < count[:, None]
    ring_pixels = np.where(in_ring, start[:, None] + slot[None, :], 0)
    phi = np.where(in_ring, hp.pix2ang(nside, ring_pixels)[1], 0.0)
    mphi = phi[..., None] * np.arange(lmax + 1)
    l_of, m_of = hp.Alm.getlm(lmax)
    return SHTPlan(
        nside=nside,
        lmax=lmax,
        ring_pixels=jnp.asarray(ring_pixels),
        ring_slots=jnp.asarray(np.flatnonzero(in_ring)),
        cos_mphi=jnp.asarray(np.cos(mphi) * in_ring[..., None]),
        sin_mphi=jnp.asarray(np.sin(mphi) * in_ring[..., None]),
        legendre=jnp.asarray(_legendre_table(cos_theta, sin_theta, lmax)),
        alm_m=jnp.asarray(m_of),
        alm_l=jnp.asarray(l_of),
    )


def _check_lmax(lmax, nside: int) -> int:
    if lmax is None:
        return 3 * nside - 1
    if isinstance(lmax, bool) or not isinstance(lmax, int | np.integer) or lmax < 0:
        raise ValueError(f"lmax must be an integer >= 0, got {lmax!r}")
    if lmax > 3 * nside - 1:
        raise ValueError(f"lmax must be <= 3 nside - 1 = {3 * nside - 1}, got {lmax}")
    return lmax


def nside_from_npix(npix: int, name: str = "maps") -> int:
    """HEALPix nside of ``npix = 12 nside^2`` pixels (nside a power of two), else ValueError."""
    nside = int(round(np.sqrt(npix / 12)))
    if nside < 1 or 12 * nside**2 != npix or nside & (nside - 1):
        raise ValueError(
            f"{name} must have a pixel axis of length 12 nside^2 (nside a power of two), got {npix}"
        )
    return nside


def _analysis(maps: jax.Array, plan: SHTPlan) -> tuple[jax.Array, jax.Array]:
    """One quadrature pass: real and imaginary ``a_lm`` as dense ``(..., m, l)`` arrays."""
    rings = maps[..., plan.ring_pixels]
    # Ring Fourier sums F_m(ring) = sum_p f_p e^{-i m phi_p}
    f_re = jnp.einsum("...rj,rjm->...rm", rings, plan.cos_mphi)
    f_im = -jnp.einsum("...rj,rjm->...rm", rings, plan.sin_mphi)
    # HEALPix quadrature a_lm = (4 pi / Npix) sum_rings lambda_lm(theta_r) F_m(r)
    weight = 4 * jnp.pi / (12 * plan.nside**2)
    a_re = weight * jnp.einsum("...rm,mrl->...ml", f_re, plan.legendre)
    a_im = weight * jnp.einsum("...rm,mrl->...ml", f_im, plan.legendre)
    return a_re, a_im


def _synthesis(a_re: jax.Array, a_im: jax.Array, plan: SHTPlan) -> jax.Array:
    """Real map ``f = sum_lm a_lm Y_lm`` from dense ``(..., m, l)`` coefficients (m >= 0)."""
    # Real field: f = sum_m w_m Re(G_m e^{i m phi}), G_m(ring) = sum_l a_lm lambda_lm, w = 1, 2, 2..
    w = jnp.where(jnp.arange(plan.lmax + 1) == 0, 1.0, 2.0)
    g_re = jnp.einsum("...ml,mrl->...rm", a_re, plan.legendre) * w
    g_im = jnp.einsum("...ml,mrl->...rm", a_im, plan.legendre) * w
    rings = jnp.einsum("...rm,rjm->...rj", g_re, plan.cos_mphi) - jnp.einsum(
        "...rm,rjm->...rj", g_im, plan.sin_mphi
    )
    return rings.reshape(*rings.shape[:-2], -1)[..., plan.ring_slots]


def _map2alm_jax(maps: jax.Array, plan: SHTPlan, iter: int) -> jax.Array:
    a_re, a_im = _analysis(maps, plan)
    for _ in range(iter):
        # Jacobi iteration of HEALPix map2alm: alm <- alm + analysis(map - synthesis(alm))
        d_re, d_im = _analysis(maps - _synthesis(a_re, a_im, plan), plan)
        a_re, a_im = a_re + d_re, a_im + d_im
    return (a_re + 1j * a_im)[..., plan.alm_m, plan.alm_l]


def map2alm(
    maps,
    lmax: int | None = None,
    *,
    method: str = "jax",
    plan: SHTPlan | None = None,
    iter: int = 3,
):
    """Spherical-harmonic coefficients of real RING-ordered HEALPix maps.

    Args:
        maps: ``(..., Npix)`` real maps, ``Npix = 12 nside^2``; leading axes are batch axes.
        lmax: largest multipole, ``<= 3 nside - 1`` (default ``plan.lmax`` or ``3 nside - 1``).
        method: ``"jax"`` (jit/vmap/grad-able) or ``"healpy"`` (numpy, not traceable).
        plan: :func:`make_plan` kernels for the JAX path (built on the fly when omitted; pass one
            when calling repeatedly or under ``jit``).
        iter: number of HEALPix Jacobi iterations (healpy's default 3).

    Returns:
        Complex ``(..., (lmax + 1)(lmax + 2)/2)`` in healpy's layout (``healpy.Alm.getidx``).
    """
    nside, lmax = _check_inputs(maps, lmax, method, plan, iter)
    if method == "healpy":
        flat = np.asarray(maps, dtype=float).reshape(-1, 12 * nside**2)
        alm = [hp.map2alm(m, lmax=lmax, iter=iter, pol=False) for m in flat]
        return np.stack(alm).reshape(*np.shape(maps)[:-1], -1)
    plan = make_plan(nside, lmax) if plan is None else plan
    return _map2alm_jax(jnp.asarray(maps), plan, iter)


def alm2map(alm, plan: SHTPlan) -> jax.Array:
    """Real RING map ``(..., Npix)`` from complex healpy-layout ``alm`` ``(..., nalm)`` (JAX).

    Equals ``healpy.alm2map(alm, nside, pol=False)`` for ``lmax = plan.lmax``.
    """
    nalm = (plan.lmax + 1) * (plan.lmax + 2) // 2
    if np.shape(alm)[-1:] != (nalm,):
        raise ValueError(f"alm must have a last axis of length {nalm} (plan.lmax = {plan.lmax})")
    alm = jnp.asarray(alm)
    dense = jnp.zeros((*alm.shape[:-1], plan.lmax + 1, plan.lmax + 1), dtype=alm.dtype)
    dense = dense.at[..., plan.alm_m, plan.alm_l].set(alm)
    return _synthesis(dense.real, dense.imag, plan)


def alm2cl(alm1, alm2=None):
    """(Cross-)power spectrum ``C_l = sum_m Re(a1_lm a2_lm^*) / (2l + 1)`` over ``-l <= m <= l``.

    Rel.-diffusion paper eq. (2.2). ``alm1``, ``alm2``: complex healpy-layout ``(..., nalm)``
    (broadcast against each other); returns ``(..., lmax + 1)``.
    """
    alm1 = jnp.asarray(alm1)
    alm2 = alm1 if alm2 is None else jnp.asarray(alm2)
    nalm = alm1.shape[-1]
    lmax = int(round((np.sqrt(8 * nalm + 1) - 3) / 2))
    if (lmax + 1) * (lmax + 2) // 2 != nalm or alm2.shape[-1] != nalm:
        raise ValueError(f"alm must have a last axis of length (lmax+1)(lmax+2)/2, got {nalm}")
    l_of, m_of = hp.Alm.getlm(lmax)
    # Real maps: a_{l,-m} = (-1)^m a_lm^*, so m > 0 counts twice
    weight = np.where(m_of == 0, 1.0, 2.0)
    prod = jnp.real(alm1 * jnp.conj(alm2)) * weight
    cl = jnp.zeros((*prod.shape[:-1], lmax + 1), dtype=prod.dtype).at[..., l_of].add(prod)
    return cl / (2 * np.arange(lmax + 1) + 1)


def power_spectrum(
    maps,
    lmax: int | None = None,
    *,
    method: str = "jax",
    plan: SHTPlan | None = None,
    iter: int = 3,
):
    """Angular power spectrum ``C_l`` of real RING maps ``(..., Npix)`` -> ``(..., lmax + 1)``.

    Rel.-diffusion paper eq. (2.2); same as ``healpy.anafast(map, lmax=lmax, iter=iter)``.
    Arguments as in :func:`map2alm`.
    """
    alm = map2alm(maps, lmax, method=method, plan=plan, iter=iter)
    cl = alm2cl(alm)
    return np.asarray(cl) if method == "healpy" else cl


def cross_spectra(
    maps,
    lmax: int | None = None,
    *,
    method: str = "jax",
    plan: SHTPlan | None = None,
    iter: int = 3,
):
    """All cross-spectra of ``k`` maps: ``(..., k, Npix)`` -> ``(..., lmax + 1, k, k)``.

    ``X_l^{ab} = sum_m Re(a^a_lm a^b_lm^*) / (2l + 1)`` (rel.-diffusion paper eq. (2.2)), symmetric
    in ``a, b``; the spectrum of ``sum_a c_a map_a`` is ``c^T X_l c``. Arguments as in
    :func:`map2alm`.
    """
    if np.ndim(maps) < 2:
        raise ValueError("maps must have shape (..., k, Npix) for cross-spectra")
    x = alm_cross_spectra(map2alm(maps, lmax, method=method, plan=plan, iter=iter))
    return np.asarray(x) if method == "healpy" else x


def alm_cross_spectra(alm) -> jax.Array:
    """All cross-spectra of ``k`` alm sets: ``(..., k, nalm)`` -> ``(..., lmax + 1, k, k)``."""
    alm = jnp.asarray(alm)
    return jnp.moveaxis(alm2cl(alm[..., :, None, :], alm[..., None, :, :]), -1, -3)


def _check_inputs(maps, lmax, method, plan, iter) -> tuple[int, int]:
    """Validate before compute; return (nside, lmax)."""
    _validate.one_of("method", method, METHODS)
    if isinstance(iter, bool) or not isinstance(iter, int | np.integer) or iter < 0:
        raise ValueError(f"iter must be an integer >= 0, got {iter!r}")
    if np.ndim(maps) == 0:
        raise ValueError("maps must have a last axis of length 12 nside^2, got a scalar")
    nside = nside_from_npix(np.shape(maps)[-1])
    _validate.finite("maps", maps)
    if method == "healpy":
        if isinstance(maps, jax.core.Tracer):
            raise ValueError("method='healpy' cannot be traced (jit/vmap/grad): use method='jax'")
        if plan is not None:
            raise ValueError("plan is only used by method='jax'")
        return nside, _check_lmax(lmax, nside)
    if plan is None:
        return nside, _check_lmax(lmax, nside)
    if plan.nside != nside:
        raise ValueError(f"plan has nside {plan.nside} but maps have nside {nside}")
    if lmax is not None and lmax != plan.lmax:
        raise ValueError(f"lmax {lmax} differs from plan.lmax {plan.lmax}")
    return nside, plan.lmax
