"""From the simulated sky to what a ground-based or in-ice observatory measures.

The simulation frame has the regular field ``B0`` along ``ẑ``; an experiment sees the sky in
equatorial coordinates (HEALPix ``θ = 90° − δ``, ``φ = α``), over part of it, and with a
reference map estimated from its own data. This module holds, as pure functions:

- **frames**: the rotation ``R`` whose columns are the simulation axes written in equatorial
  coordinates (``R ẑ = B̂0``), from the ``B0`` direction (default: the HAWC + IceCube boundary
  fit, RA 229.2°, Dec 11.4°; Abeysekara et al. 2019, ApJ 871, 96, abstract), its sign and a
  roll about it; gradients given on the sky or relative to ``B0``;
- **map rotation** ``m_eq(n̂) = m_sim(Rᵀ n̂)``: healpy's ``rotate_alm`` as the reference and a
  JAX path (:func:`alm_to_map_rotated`: the ``a_ℓm`` synthesised at the rotated pixel
  directions), differentiable in the ``a_ℓm`` and ``R``;
- **the observation** (:func:`observe_map`): the field of view (a declination band), event
  counts with the exposure (Poisson), the data-driven reference map (per declination ring, the
  right-ascension mean within the field of view) and the relative intensity it implies; its
  pseudo-``C_ℓ`` (:func:`pseudo_cl`: ``anafast`` of the map with zeros outside the field of
  view, **no** division by ``f_sky``, no monopole or dipole removed);
- **the expected pseudo-spectrum** of a statistically isotropic sky: because the mask depends
  on declination only and the reference map removes the ring means (the ``m = 0`` part of every
  ring), the operator is diagonal in ``m``; its kernels ``K^m_{ℓL}`` (:func:`coupling_kernels`)
  give the mixing matrix (:func:`mixing_matrix`, MASTER-like with the ``m = 0`` term removed)
  and the Gaussian covariance of the pseudo-``C_ℓ`` (:func:`pseudo_cl_moments`);
- **the check** of that isotropic prediction on an ensemble of maps (:func:`mixing_check`:
  paired differences of pseudo-``C_ℓ`` and ``M C`` per realisation).

Why the ``m = 0`` term goes: a reference map built from the data (time scrambling, direct
integration, the likelihood method of Ahlers et al. 2016, ApJ 823, 10) normalises every
declination ring to its own mean, so structure that depends on declination only (the ``m = 0``
harmonics in equatorial coordinates, e.g. the dipole component along the Earth's axis) is not
measured (the "missing vertical dipole" of Abeysekara et al. 2019).

Units: angles in degrees at the interface, maps dimensionless (relative intensity), spectra in
the units of the map squared. Maps are HEALPix RING ordered.
"""

import functools
import math

import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from scipy.spatial.transform import Rotation

from crsky import _validate
from crsky.physics import spectra

B0_RA_DEG, B0_DEC_DEG = 229.2, 11.4
"""ISMF direction of the HAWC + IceCube fit (Abeysekara et al. 2019, ApJ 871, 96, abstract:
RA 229.2° ± 3.5°, Dec 11.4° ± 3.0°). It is an axis (the normal of the boundary between excess
and deficit), not an arrow: the sign of ``B0`` is a separate choice (``field_sign``)."""


# --------------------------------------------------------------------------- frames


def radec_to_vector(ra_deg, dec_deg) -> np.ndarray:
    """Unit vector (equatorial Cartesian) of right ascension / declination in degrees.

    ``ValueError`` if either is not finite or ``dec_deg`` lies outside [−90°, 90°].
    """
    _validate.finite("ra_deg", ra_deg)
    _validate.finite("dec_deg", dec_deg)
    if not np.all(np.abs(np.asarray(dec_deg, dtype=float)) <= 90):
        raise ValueError(f"dec_deg must lie in [-90, 90], got {dec_deg!r}")
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def as_direction(name: str, vector) -> np.ndarray:
    """``vector`` (3,) normalised; ``ValueError`` naming ``name`` if it is not a direction
    (wrong shape, not finite, or of zero length)."""
    v = np.asarray(vector, dtype=float)
    if v.shape != (3,):
        raise ValueError(f"{name} must be a 3-vector, got shape {v.shape}")
    _validate.finite(name, v)
    norm = float(np.linalg.norm(v))
    if norm < 1e-12:
        raise ValueError(f"{name} must be a direction (non-zero length), got {vector!r}")
    return v / norm


def simulation_frame(b0=None, *, field_sign: int = 1, roll_deg: float = 0.0,
                     reference=None) -> np.ndarray:
    """Rotation ``R`` (3, 3) from the simulation frame to equatorial coordinates.

    Columns of ``R`` are the simulation axes ``x̂, ŷ, ẑ`` in equatorial Cartesian coordinates,
    ``ẑ`` along ``field_sign · b0``. A vector ``v_sim`` is ``R @ v_sim`` on the sky and a sky map
    is ``m_eq(n̂) = m_sim(Rᵀ n̂)``.

    Args:
        b0: direction of the field axis, equatorial 3-vector; default
            :data:`B0_RA_DEG`, :data:`B0_DEC_DEG`.
        field_sign: ``+1`` or ``−1``: which end of the axis ``B0`` points to.
        roll_deg: rotation of ``x̂`` about ``ẑ`` (deg) from the reference direction.
        reference: equatorial 3-vector whose part perpendicular to ``B0`` fixes ``x̂`` (e.g. the
            CR gradient on the sky); default the north celestial pole (``x̂`` then points north
            along the great circle through ``B0``; the equatorial ``x`` axis if ``B0`` is polar).
    """
    b0 = radec_to_vector(B0_RA_DEG, B0_DEC_DEG) if b0 is None else as_direction("b0", b0)
    if field_sign not in (1, -1):
        raise ValueError(f"field_sign must be +1 or -1, got {field_sign!r}")
    _validate.finite("roll_deg", roll_deg)
    z = field_sign * b0
    ref = np.array([0.0, 0.0, 1.0]) if reference is None else as_direction("reference",
                                                                            reference)
    x = ref - (ref @ z) * z
    if np.linalg.norm(x) < 1e-8:
        if reference is not None:
            raise ValueError("reference must not be parallel to b0 (it fixes the x axis)")
        x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    roll = np.radians(roll_deg)
    x, y = np.cos(roll) * x + np.sin(roll) * y, -np.sin(roll) * x + np.cos(roll) * y
    return np.stack([x, y, z], axis=1)


def gradient_from_b0(angle_deg: float, azimuth_deg: float = 0.0, strength: float = 1.0):
    """Gradient ``g = ∇n/n`` in the simulation frame, at ``angle_deg`` from ``B0 = ẑ`` and
    ``azimuth_deg`` from ``x̂`` about it (1/Lc for ``strength`` in 1/Lc); shape (3,)."""
    for name, value in (("angle_deg", angle_deg), ("azimuth_deg", azimuth_deg)):
        _validate.finite(name, value)
    _validate.finite("strength", strength)
    a, b = np.radians(angle_deg), np.radians(azimuth_deg)
    return strength * np.array([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)])


def gradient_from_sky(rotation, ra_deg: float, dec_deg: float, strength: float = 1.0):
    """Gradient pointing to (``ra_deg``, ``dec_deg``) on the sky, in the simulation frame of
    ``rotation`` (:func:`simulation_frame`): ``g_sim = Rᵀ n̂ · strength``; shape (3,)."""
    _validate.finite("strength", strength)
    return strength * np.asarray(rotation).T @ radec_to_vector(ra_deg, dec_deg)


def zyz_angles(rotation) -> tuple[float, float, float]:
    """Euler angles (rad) of ``rotation`` for ``healpy.rotate_alm(alm, *angles)``, which then
    turns simulation-frame ``a_ℓm`` into those of ``m_eq(n̂) = m_sim(Rᵀ n̂)``."""
    r = np.asarray(rotation, dtype=float)
    if r.shape != (3, 3) or not np.allclose(r @ r.T, np.eye(3), atol=1e-8) or np.linalg.det(r) < 0:
        raise ValueError("rotation must be a proper 3x3 rotation matrix")
    return tuple(float(a) for a in Rotation.from_matrix(r).as_euler("zyz"))


def rotate_map_healpy(sim_map, rotation, lmax: int | None = None) -> np.ndarray:
    """Reference rotation with healpy: ``a_ℓm`` (``map2alm``, ``iter=3``), ``rotate_alm``,
    ``alm2map`` at the same nside (numpy; band-limited to ``lmax``, default ``3 nside − 1``)."""
    m = np.asarray(sim_map, dtype=float)
    nside = hp.npix2nside(m.shape[-1])
    lmax = 3 * nside - 1 if lmax is None else lmax
    alm = hp.map2alm(m, lmax=lmax, iter=3)
    hp.rotate_alm(alm, *zyz_angles(rotation), lmax=lmax)
    return hp.alm2map(alm, nside, lmax=lmax)


def _legendre_rows(cos_theta, sin_theta, lmax: int):
    """Yield ``(k, λ_{m+k, m}(θ))`` for ``k = 0..lmax``, arrays ``(lmax + 1 − k, n)`` over ``m``.

    Normalised associated Legendre functions ``λ_ℓm = Y_ℓm(θ, 0)`` (Condon–Shortley phase) by the
    standard three-term recursion in ``ℓ`` at fixed ``m`` (JAX; fine for ``lmax ≲ 150`` in
    float64, where ``sin^m θ`` does not underflow to a harmful degree).
    """
    m = np.arange(lmax + 1, dtype=float)
    log_ratio = np.concatenate([[0.0], np.cumsum(np.log((2 * m[1:] - 1) / (2 * m[1:])))])
    # λ_mm = (−1)^m sqrt((2m+1)/(4π) Π_k (2k−1)/(2k)) sin^m θ
    norm = np.where(m % 2 == 0, 1.0, -1.0) * np.exp(
        0.5 * (np.log((2 * m + 1) / (4 * np.pi)) + log_ratio)
    )
    value = norm[:, None] * sin_theta[None, :] ** m[:, None]
    previous = value * 0.0
    a_prev = np.full(lmax + 1, np.inf)
    yield 0, value
    for k in range(1, lmax + 1):
        mm = m[: lmax + 1 - k]
        l = mm + k
        a = np.sqrt((4 * l**2 - 1) / (k * (2 * mm + k)))
        # λ_ℓm = a_ℓm (x λ_{ℓ−1,m} − λ_{ℓ−2,m} / a_{ℓ−1,m})
        new = a[:, None] * (cos_theta[None, :] * value[: lmax + 1 - k]
                            - previous[: lmax + 1 - k] / a_prev[: lmax + 1 - k, None])
        value, previous, a_prev = new, value[: lmax + 1 - k], a
        yield k, value


@functools.partial(jax.jit, static_argnames="lmax")
def alm_to_map_at(alm, directions, lmax: int):
    """Real field ``f(n̂) = Σ_ℓm a_ℓm Y_ℓm(n̂)`` at arbitrary unit vectors ``directions`` (n, 3).

    ``alm``: complex healpy layout, shape ``((lmax + 1)(lmax + 2)/2,)``. JAX, differentiable in
    ``alm`` and ``directions``; memory ``O((lmax + 1) n)``.
    """
    d = jnp.asarray(directions)
    cos_theta = jnp.clip(d[:, 2], -1.0, 1.0)
    sin_theta = jnp.sqrt(jnp.maximum(d[:, 0] ** 2 + d[:, 1] ** 2, 0.0))
    phi = jnp.arctan2(d[:, 1], d[:, 0])
    alm = jnp.asarray(alm)
    index = np.full((lmax + 1, lmax + 1), -1)
    ell, m = hp.Alm.getlm(lmax)
    index[m, ell] = np.arange(ell.size)
    g = jnp.zeros((lmax + 1, d.shape[0]), dtype=alm.dtype)
    for k, lam in _legendre_rows(cos_theta, sin_theta, lmax):
        ms = np.arange(lmax + 1 - k)
        g = g.at[ms].add(alm[index[ms, ms + k]][:, None] * lam)
    # f = Σ_m w_m Re(G_m e^{i m φ}), w_0 = 1, w_{m>0} = 2 (real field: a_{ℓ,−m} = (−1)^m a*_ℓm)
    w = jnp.where(jnp.arange(lmax + 1) == 0, 1.0, 2.0)[:, None]
    mphi = jnp.arange(lmax + 1)[:, None] * phi[None, :]
    return jnp.sum(w * (g.real * jnp.cos(mphi) - g.imag * jnp.sin(mphi)), axis=0)


def alm_to_map_rotated(alm, rotation, nside: int, lmax: int):
    """JAX map rotation: the simulation-frame ``alm`` evaluated at ``Rᵀ n̂`` of the equatorial
    pixel centres, i.e. ``m_eq(n̂) = m_sim(Rᵀ n̂)`` (RING, ``(12 nside²,)``).

    Agrees with :func:`rotate_map_healpy` for band-limited maps (``tests/test_observatory.py``).
    """
    _validate.power_of_two("nside", nside)
    pixels = np.stack(hp.pix2vec(nside, np.arange(12 * nside**2)), axis=-1)
    return alm_to_map_at(alm, jnp.asarray(pixels) @ jnp.asarray(rotation), lmax)


# --------------------------------------------------------------------------- field of view


def check_declination_range(dec_min_deg: float, dec_max_deg: float) -> None:
    """``ValueError`` unless ``−90 <= dec_min_deg < dec_max_deg <= 90`` (degrees)."""
    for name, value in (("dec_min_deg", dec_min_deg), ("dec_max_deg", dec_max_deg)):
        _validate.finite(name, value)
        if not -90 <= value <= 90:
            raise ValueError(f"{name} must lie in [-90, 90], got {value!r}")
    if not dec_min_deg < dec_max_deg:
        raise ValueError(f"dec_min_deg ({dec_min_deg!r}) must be < dec_max_deg ({dec_max_deg!r})")


def band_sky_fraction(dec_min_deg: float, dec_max_deg: float) -> float:
    """Sky fraction of the band ``dec_min <= δ <= dec_max``: ``(sin δmax − sin δmin)/2``."""
    check_declination_range(dec_min_deg, dec_max_deg)
    return 0.5 * (math.sin(math.radians(dec_max_deg)) - math.sin(math.radians(dec_min_deg)))


def ring_index(nside: int) -> np.ndarray:
    """Iso-latitude ring (0 = northernmost) of each RING pixel, int ``(12 nside²,)``."""
    _validate.power_of_two("nside", nside)
    start = hp.ringinfo(nside, np.arange(1, 4 * nside))[0]
    return np.searchsorted(start, np.arange(12 * nside**2), side="right") - 1


def field_of_view(nside: int, dec_min_deg: float, dec_max_deg: float) -> np.ndarray:
    """Boolean mask ``(12 nside²,)``: pixels whose centre's declination lies in the band."""
    check_declination_range(dec_min_deg, dec_max_deg)
    _validate.power_of_two("nside", nside)
    theta = hp.pix2ang(nside, np.arange(12 * nside**2))[0]
    dec = 90.0 - np.degrees(theta)
    return (dec >= dec_min_deg) & (dec <= dec_max_deg)


def remove_ring_mean(maps, mask, nside: int):
    """The data-driven reference map's effect, to first order in ``δI``: inside ``mask``
    subtract each ring's right-ascension mean (over its pixels in ``mask``); zero outside.

    JAX, linear in ``maps`` (``(..., Npix)``); removes every declination-only (``m = 0``)
    structure of the field of view.
    """
    rings = jnp.asarray(ring_index(nside))
    w = jnp.asarray(mask, dtype=jnp.result_type(float))
    n_rings = 4 * nside - 1
    total = jax.ops.segment_sum(jnp.moveaxis(jnp.asarray(maps) * w, -1, 0), rings, n_rings)
    count = jax.ops.segment_sum(w, rings, n_rings)
    mean = jnp.moveaxis(total, 0, -1) / jnp.maximum(count, 1.0)
    return w * (maps - mean[..., rings])


def observe_map(delta_i, mask, *, events: float | None = None, exposure=None,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """The relative-intensity map an experiment reconstructs from the true ``δI``.

    Expected counts ``μ_p = N_ev e_p (1 + δI_p) / Σ_q e_q (1 + δI_q)`` over the field of view
    (``e_p``: relative exposure, constant on a declination ring, default flat); counts
    ``n_p ~ Poisson(μ_p)`` (``events`` given) or ``n_p = μ_p`` (``events=None``: no shot noise);
    reference map per ring ``ref_p = e_p Σ_{q∈ring} n_q / Σ_{q∈ring} e_q`` (what time scrambling
    or direct integration estimate); observed ``δI_obs = n_p / ref_p − 1`` in the field of view,
    ``0`` outside. To first order in ``δI`` this is :func:`remove_ring_mean` plus noise of
    variance ``1/μ_p``. numpy (random), shape ``(Npix,)``.
    """
    d = np.asarray(delta_i, dtype=float)
    nside = hp.npix2nside(d.shape[-1])
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != d.shape or not mask.any():
        raise ValueError("mask must be a non-empty boolean map of the shape of delta_i")
    _validate.finite("delta_i", d)
    if np.any(1 + d[mask] <= 0):
        raise ValueError("delta_i must exceed -1 in the field of view (an intensity is >= 0); "
                         "scale the gradient down")
    e = np.ones_like(d) if exposure is None else np.asarray(exposure, dtype=float)
    if e.shape != d.shape or np.any(e[mask] <= 0):
        raise ValueError("exposure must be a map of the shape of delta_i, > 0 in the mask")
    rings = ring_index(nside)
    if events is None:
        counts = e * (1 + d)
    else:
        _validate.positive("events", events)
        mu = events * e * (1 + d) * mask / np.sum(e * (1 + d) * mask)
        counts = (rng or np.random.default_rng()).poisson(mu).astype(float)
    n_rings = 4 * nside - 1
    ring_counts = np.bincount(rings, weights=counts * mask, minlength=n_rings)
    ring_exposure = np.bincount(rings, weights=e * mask, minlength=n_rings)
    ref = e * ring_counts[rings] / np.where(ring_exposure > 0, ring_exposure, 1.0)[rings]
    return np.where(mask & (ref > 0), counts / np.where(ref > 0, ref, 1.0) - 1.0, 0.0)


def gaussian_sky(cl, nside: int, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian isotropic map with spectrum ``cl`` (``L = 0 .. len(cl) − 1``) at ``nside``:
    ``healpy.synalm`` (seeded from ``rng``) and ``alm2map`` (numpy, RING)."""
    cl = np.asarray(cl, dtype=float)
    _validate.non_negative("cl", cl)
    lmax = cl.size - 1
    check_ell_range(max(lmax, 1), max(lmax, 1), nside)
    std = np.sqrt(cl)
    # a_L0 real N(0, C_L); a_Lm (m > 0) complex with E|a|² = C_L
    ell, m = hp.Alm.getlm(lmax)
    re, im = rng.standard_normal((2, ell.size))
    alm = np.where(m == 0, re, (re + 1j * im) / np.sqrt(2)) * std[ell]
    return hp.alm2map(alm.astype(complex), nside, lmax=lmax)


def pseudo_cl(observed_map, lmax: int, *, method: str = "healpy"):
    """Pseudo-``C_ℓ`` as the experiments compute it: ``healpy.anafast`` (``iter=3``) of the
    relative-intensity map with zeros outside the field of view; **not** divided by ``f_sky``,
    nothing (monopole, dipole) removed. ``method="jax"`` is the same transform, traceable."""
    return spectra.power_spectrum(observed_map, lmax, method=method)


# --------------------------------------------------------------------------- expected spectrum


def normalised_legendre(lmax: int, theta) -> np.ndarray:
    """``λ_ℓm(θ) = Y_ℓm(θ, 0)`` (Condon–Shortley phase), shape
    ``(lmax + 1 [m], lmax + 1 [ℓ], n_θ)``, zero for ``ℓ < m`` (float64 numpy; the recursion of
    :func:`alm_to_map_at`, checked against ``scipy.special.sph_harm_y`` in the tests)."""
    theta = np.asarray(theta, dtype=float)
    table = np.zeros((lmax + 1, lmax + 1, theta.size))
    m = np.arange(lmax + 1)
    for k, lam in _legendre_rows(np.cos(theta), np.sin(theta), lmax):
        table[m[: lmax + 1 - k], m[: lmax + 1 - k] + k] = lam
    return table


def coupling_kernels(nside: int, mask, lmax: int, lmax_sky: int | None = None) -> np.ndarray:
    """Kernels ``K^m_{ℓL}`` of the observation operator for a mask that depends on
    declination only, followed by removal of each ring's mean, in HEALPix ring quadrature.

    For a sky ``Σ a_Lm Y_Lm`` the pseudo-``a_ℓm`` of the filtered masked map are
    ``ã_ℓm = Σ_L K^m_{ℓL} a_Lm`` with (the quadrature of ``anafast``)

        K^m_{ℓL} = (4π/N_pix) Σ_rings N_r W_r λ_ℓm(θ_r) λ_Lm(θ_r),   m ≥ 1;   K^0 = 0,

    ``W_r`` = 1 on rings in the field of view (MASTER coupling for an azimuthally symmetric
    mask, Hivon et al. 2002, ApJ 567, 2; the ring-mean removal zeroes every ring's ``m = 0``
    Fourier term, hence ``K^0``). Returns ``(lmax + 1 [m], lmax + 1 [ℓ], lmax_sky + 1 [L])``.

    ``lmax_sky`` (default ``3 nside − 1``): highest multipole of the sky that is coupled in.
    """
    _validate.power_of_two("nside", nside)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (12 * nside**2,):
        raise ValueError(f"mask must have 12 nside^2 = {12 * nside**2} pixels, got {mask.shape}")
    rings = ring_index(nside)
    per_ring = np.bincount(rings, weights=mask, minlength=4 * nside - 1)
    count = np.bincount(rings, minlength=4 * nside - 1)
    if np.any((per_ring > 0) & (per_ring < count)):
        raise ValueError("mask must contain whole declination rings (it must depend on "
                         "declination only)")
    lmax_sky = 3 * nside - 1 if lmax_sky is None else lmax_sky
    check_ell_range(lmax, lmax_sky, nside)
    theta = hp.ringinfo(nside, np.arange(1, 4 * nside))[2]
    keep = per_ring > 0
    lam = normalised_legendre(lmax_sky, np.arccos(theta[keep]))
    weight = 4 * np.pi / (12 * nside**2) * per_ring[keep]
    kernels = np.einsum("mlr,mLr,r->mlL", lam[: lmax + 1, : lmax + 1], lam[: lmax + 1], weight)
    kernels[0] = 0.0  # the ring-mean removal: no m = 0 term survives
    return kernels


def check_ell_range(lmax: int, lmax_sky: int, nside: int) -> None:
    """``ValueError`` unless ``1 <= lmax <= lmax_sky <= 3 nside − 1``."""
    _validate.positive_int("lmax", lmax)
    _validate.positive_int("lmax_sky", lmax_sky)
    if lmax_sky > 3 * nside - 1:
        raise ValueError(f"lmax_sky must be <= 3 nside - 1 = {3 * nside - 1}, got {lmax_sky}")
    if lmax > lmax_sky:
        raise ValueError(f"lmax ({lmax}) must be <= lmax_sky ({lmax_sky})")


def mixing_matrix(kernels) -> jnp.ndarray:
    """``M_{ℓL}`` with ``⟨C̃_ℓ⟩ = Σ_L M_{ℓL} C_L`` for an isotropic Gaussian sky:

        M_{ℓL} = 2/(2ℓ+1) Σ_{m ≥ 1} (K^m_{ℓL})²

    (real maps: ``m`` and ``−m`` count alike; ``K^0 = 0``). Shape ``(lmax + 1, lmax_sky + 1)``.
    """
    k = jnp.asarray(kernels)
    ell = jnp.arange(k.shape[1])
    return 2.0 / (2 * ell + 1.0)[:, None] * jnp.sum(k[1:] ** 2, axis=0)


def _moment_inputs(kernels, ell, noise_per_sr, noise_kernels):
    k = jnp.asarray(kernels)
    ell = np.asarray(ell) if not isinstance(ell, jax.core.Tracer) else ell
    noise_kernels = k[:, :, ell] if noise_kernels is None else jnp.asarray(noise_kernels)
    v = jnp.broadcast_to(jnp.asarray(noise_per_sr, dtype=k.dtype), (k.shape[1],))
    return k, ell, noise_kernels, v


def pseudo_cl_mean(kernels, ell, cl_sky, noise_per_sr=0.0, noise_kernels=None):
    """The mean ``⟨C̃_ℓ⟩`` of :func:`pseudo_cl_moments` alone, without the ``Σ^m`` matrices:
    ``2/(2ℓ+1) Σ_m (Σ_L (K^m_{ℓL})² C_L + v_ℓ Ω K^m_{ℓℓ})``, a cost of ``m n L`` instead of
    ``m n² L`` (for a likelihood whose covariance is held at a fiducial spectrum). Arguments
    as for :func:`pseudo_cl_moments`; returns ``(n,)``."""
    k, ell, noise_kernels, v = _moment_inputs(kernels, ell, noise_per_sr, noise_kernels)
    diagonal = jnp.einsum("mil,l->i", k * k, jnp.asarray(cl_sky))
    diagonal = diagonal + v * jnp.einsum("mii->i", noise_kernels)
    return 2.0 / (2.0 * jnp.asarray(ell) + 1.0) * diagonal


def pseudo_cl_moments(kernels, ell, cl_sky, noise_per_sr=0.0, noise_kernels=None):
    """Mean and Gaussian covariance of the pseudo-``C_ℓ`` of an isotropic Gaussian sky.

    ``ã_ℓm`` (``m ≥ 1``) are circular complex Gaussians with
    ``Σ^m_{ℓℓ'} = ⟨ã_ℓm ã*_ℓ'm⟩ = Σ_L K^m_{ℓL} K^m_{ℓ'L} C_L + v Ω K^m_{ℓℓ'}`` (white noise of
    per-pixel variance ``v`` in the field of view, ``noise_per_sr = v Ω_pix``; the ring-mean
    removal leaves its ``m ≥ 1`` part alone), so by Wick's theorem

        ⟨C̃_ℓ⟩ = 2/(2ℓ+1) Σ_m Σ^m_{ℓℓ},   Cov(C̃_ℓ, C̃_ℓ') = 4/((2ℓ+1)(2ℓ'+1)) Σ_m (Σ^m_{ℓℓ'})².

    This is the Gaussian approximation of the pseudo-``C_ℓ`` likelihood, exact in the ring
    quadrature for Gaussian skies and noise. Rows may stack several experiments that see the
    same sky (their cross-covariance follows from the shared ``C_L``; their noise is
    independent). JAX, differentiable in ``cl_sky`` and ``noise_per_sr``.

    Args:
        kernels: ``K^m_{ℓL}`` of the rows, ``(m, n, L)`` (:func:`coupling_kernels`, rows
            selected and stacked along axis 1).
        ell: multipole of each row, ``(n,)``.
        cl_sky: full-sky ``C_L``, ``L = 0..lmax_sky``, ``(L,)``.
        noise_per_sr: ``v Ω_pix`` per row (scalar or ``(n,)``); for a flat pseudo noise level
            ``Ñ`` (the masked map's, not divided by ``f_sky``) it is ``Ñ / f_sky``.
        noise_kernels: ``K^m_{ℓℓ'}`` between the rows, ``(m, n, n)``, zero between different
            experiments; default ``kernels[:, :, ell]`` (one experiment).

    Returns:
        ``(mean, covariance)``, shapes ``(n,)`` and ``(n, n)``.
    """
    k, ell, noise_kernels, v = _moment_inputs(kernels, ell, noise_per_sr, noise_kernels)
    # Σ^m = K^m diag(C) K^mᵀ + noise
    sigma = jnp.matmul(k * jnp.asarray(cl_sky), jnp.swapaxes(k, -1, -2))
    sigma = sigma + jnp.sqrt(v)[None, :, None] * noise_kernels * jnp.sqrt(v)[None, None, :]
    w = 2.0 / (2.0 * jnp.asarray(ell) + 1.0)
    mean = w * jnp.einsum("mii->i", sigma)
    cov = w[:, None] * w[None, :] * jnp.sum(sigma**2, axis=0)
    return mean, cov


# --------------------------------------------------------------------------- mixing check


def mixing_check(pseudo_spectra, full_sky_spectra, mixing) -> dict:
    """How well the isotropic mixing matrix predicts the mean pseudo-``C_ℓ`` of an ensemble.

    For each realisation ``r`` the pseudo-spectrum ``C̃_r`` (:func:`pseudo_cl` of its observed
    map) and the prediction ``M C_r`` from the same map's full-sky ``C_L`` (``anafast`` of the
    whole-sky map) give the paired difference ``d_r = C̃_r − M C_r``. For a statistically
    isotropic sky ``⟨d⟩ = 0`` (the MASTER relation ``⟨C̃⟩ = M ⟨C⟩``, Hivon et al. 2002, ApJ 567,
    2, eq. 3, with the ``m = 0`` term removed: :func:`mixing_matrix`); pairing the same maps
    cancels most of the cosmic variance, so the Monte Carlo error is that of ``d`` alone. A sky
    whose statistics depend on direction (a preferred axis ``B0``) need not satisfy it.

    Args:
        pseudo_spectra: ``C̃_ℓ`` per realisation, ``(R, lmax + 1)``, ``R >= 2``.
        full_sky_spectra: full-sky ``C_L`` of the same maps, ``(R, lmax_sky + 1)``.
        mixing: ``M_{ℓL}`` (:func:`mixing_matrix`), ``(lmax + 1, lmax_sky + 1)``.

    Returns:
        dict of arrays over ``ℓ = 0..lmax`` (spectra in the map's units squared): ``ell``,
        ``observed`` (ensemble-mean ``C̃_ℓ``), ``predicted`` (mean ``M C``), ``deviation``
        (``mean d``), ``error`` (its Monte Carlo standard error ``std(d)/√R``),
        ``relative`` (``mean d / predicted``), ``relative_error`` (``error / predicted``) and
        ``significance`` (``mean d / error``; NaN where ``error`` is 0, e.g. ``ℓ = 0``); and
        the joint test over ``ℓ = 1..lmax`` with the sample covariance ``S`` of ``d`` (the
        pulls are correlated through the mask): Hotelling's ``t2 = R d̄ᵀ S⁻¹ d̄`` and its
        ``p_value`` from ``(R − p) t2 / (p (R − 1)) ~ F(p, R − p)`` (``p = lmax`` multipoles;
        NaN unless ``R > lmax``).
    """
    pseudo = np.asarray(pseudo_spectra, dtype=float)
    full = np.asarray(full_sky_spectra, dtype=float)
    m = np.asarray(mixing, dtype=float)
    if pseudo.ndim != 2 or pseudo.shape[0] < 2:
        raise ValueError(f"pseudo_spectra must be (R >= 2, lmax + 1), got {pseudo.shape}")
    if full.ndim != 2 or full.shape[0] != pseudo.shape[0]:
        raise ValueError(f"full_sky_spectra must be (R = {pseudo.shape[0]}, lmax_sky + 1), got "
                         f"{full.shape}")
    if m.shape != (pseudo.shape[1], full.shape[1]):
        raise ValueError(f"mixing must be ({pseudo.shape[1]}, {full.shape[1]}), got {m.shape}")
    for name, value in (("pseudo_spectra", pseudo), ("full_sky_spectra", full), ("mixing", m)):
        _validate.finite(name, value)
    predicted = full @ m.T  # M C_r per realisation
    d = pseudo - predicted
    n = pseudo.shape[0]
    mean_d, error = d.mean(0), d.std(0, ddof=1) / np.sqrt(n)
    mean_pred = predicted.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(mean_pred != 0, mean_d / mean_pred, np.nan)
        relative_error = np.where(mean_pred != 0, error / mean_pred, np.nan)
        significance = np.where(error > 0, mean_d / error, np.nan)
    p = pseudo.shape[1] - 1
    t2 = p_value = math.nan
    if n > p:
        # Hotelling's T² test of ⟨d⟩ = 0 over ℓ = 1..lmax (Hotelling 1931)
        s_inv = np.linalg.pinv(np.cov(d[:, 1:], rowvar=False))
        t2 = float(n * mean_d[1:] @ s_inv @ mean_d[1:])
        p_value = float(stats.f.sf((n - p) * t2 / (p * (n - 1)), p, n - p))
    return {"ell": np.arange(pseudo.shape[1]), "observed": pseudo.mean(0),
            "predicted": mean_pred, "deviation": mean_d, "error": error, "relative": relative,
            "relative_error": relative_error, "significance": significance, "t2": t2,
            "p_value": p_value}
