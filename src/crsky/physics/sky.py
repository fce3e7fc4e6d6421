"""Sky maps of the relative intensity from back-tracked trajectories (Liouville mapping).

Rel.-diffusion paper eq. (2.1): with a quasi-stationary ``4 pi <f> = n - 3 p.K grad n`` at
``t = -T``, Liouville's theorem gives the relative intensity in the arrival direction of each
trajectory,

    dI = (4 pi f - n) / n = (r(-T) - 3 p(-T) K) . g,        g = grad n / n,

(the uncorrelated ``delta f(-T)`` term is dropped). ``dI`` is linear in the six *basis maps*
``b = (r_x, r_y, r_z, p_x, p_y, p_z)`` with coefficients ``c = (g, -3 K g)``, so every spectrum of
``dI`` for any gradient and any ``K`` follows from the 6x6 cross-spectra ``X_l^{ab}`` of the basis
maps: ``C_l = c^T X_l c``. :func:`realisation_summary` stores exactly these per realisation.

Units (package convention): r in Lc, p a unit vector, T in Lc/c, K in Lc c (c = 1 in ``3 p.K g``),
g in 1/Lc; dI is dimensionless. Maps are HEALPix RING-ordered over the trajectories' arrival
directions (the pixel centres; the initial momentum is minus the arrival direction), shape
``(..., Npix)``.
"""


import healpy as hp
import jax.numpy as jnp
import numpy as np

from crsky import _validate
from crsky.physics import spectra

BASIS = ("r_x", "r_y", "r_z", "p_x", "p_y", "p_z")
"""Names of the six basis maps, in the order of the last-but-one axis of :func:`basis_maps`."""

ORIENTATIONS = {"parallel": (0.0, 0.0, 1.0), "perpendicular": (1.0, 0.0, 0.0)}
"""Unit gradient directions of the paper's two cases: ``grad n || B0 = z`` and ``grad n _|_ B0``."""

ALM_LOW = ((0, 0), (1, 0), (1, 1))
"""(l, m) of the entries of ``alm_low`` (``a_{1,-1} = -a_11^*`` for real maps)."""


def reference_gradient(orientation: str, strength: float = 1.0) -> jnp.ndarray:
    """``g = grad n / n`` (1/Lc), shape (3,): ``strength`` along ``z`` (parallel) or ``x``."""
    _validate.one_of("orientation", orientation, ORIENTATIONS)
    _validate.finite("strength", strength)
    return strength * jnp.asarray(ORIENTATIONS[orientation])


def liouville_coefficients(grad_n_over_n, K) -> jnp.ndarray:
    """Coefficients ``c = (g, -3 K g)`` of the basis maps, shape ``(..., 6)``.

    Args:
        grad_n_over_n: ``g`` in 1/Lc, shape ``(..., 3)``.
        K: diffusion tensor in Lc c, shape ``(..., 3, 3)``.
    """
    _check_vector("grad_n_over_n", grad_n_over_n)
    _check_tensor("K", K)
    g, K = jnp.asarray(grad_n_over_n), jnp.asarray(K)
    # Rel.-diffusion paper eq. (2.1): dI = r.g - 3 p.(K g)
    kg = jnp.einsum("...ij,...j->...i", K, g)
    g, kg = jnp.broadcast_arrays(g, kg)
    return jnp.concatenate([g, -3 * kg], axis=-1)


def liouville_spectrum(cross_spectra, grad_n_over_n, K) -> jnp.ndarray:
    """``C_l = c^T X_l c`` of ``dI`` from basis cross-spectra ``(..., lmax + 1, 6, 6)``.

    ``c = (g, -3 K g)`` with ``g`` of shape (3,) and ``K`` (3, 3) as in
    :func:`liouville_coefficients`; returns ``(..., lmax + 1)``.
    """
    if np.shape(cross_spectra)[-2:] != (6, 6):
        raise ValueError(
            f"cross_spectra must be (..., lmax + 1, 6, 6), got {np.shape(cross_spectra)}"
        )
    c = liouville_coefficients(grad_n_over_n, K)
    # Rel.-diffusion paper eqs. (2.1)-(2.2): C_l of c.b is c^T X_l c (X_l bilinear in the maps)
    return jnp.einsum("...a,...lab,...b->...l", c, jnp.asarray(cross_spectra), c)


def basis_maps(r, p) -> jnp.ndarray:
    """Basis maps :data:`BASIS` from ``r, p`` of shape ``(..., Npix, 3)``: ``(..., 6, Npix)``."""
    _check_trajectories(r, p)
    return jnp.moveaxis(jnp.concatenate([jnp.asarray(r), jnp.asarray(p)], axis=-1), -1, -2)


def relative_intensity(r, p, grad_n_over_n, K) -> jnp.ndarray:
    """Relative intensity ``dI`` per pixel, rel.-diffusion paper eq. (2.1).

    Args:
        r: positions ``r(-T)`` in Lc, shape ``(..., Npix, 3)`` (RING pixel order).
        p: momentum directions ``p(-T)``, same shape.
        grad_n_over_n: ``g = grad n / n`` in 1/Lc, shape (3,) (or broadcastable ``(..., 3)``).
        K: diffusion tensor of the quasi-stationary state at ``-T``, Lc c, shape ``(..., 3, 3)``.

    Returns:
        ``dI`` of shape ``(..., Npix)``; pure, jit/vmap/grad-able.
    """
    _check_trajectories(r, p)
    c = liouville_coefficients(grad_n_over_n, K)
    # Rel.-diffusion paper eq. (2.1): dI = (r - 3 p K) . grad n / n
    return jnp.einsum("...pa,...a->...p", jnp.concatenate([r, p], axis=-1), c)


def realisation_summary(
    r, p, plan: spectra.SHTPlan | None = None, *, lmax: int | None = None, method="jax", iter=3
) -> dict:
    """Everything the ensemble statistics need from one field realisation.

    Args:
        r: positions ``r(-T)`` in Lc, shape ``(n_times, Npix, 3)`` (any leading axes), RING order.
        p: momentum directions ``p(-T)``, same shape.
        plan: :func:`crsky.physics.spectra.make_plan` kernels for ``method="jax"`` (pass one when
            called
            per realisation; built when omitted).
        lmax: largest multipole (default ``plan.lmax`` or ``3 nside - 1``); must be >= 1.
        method, iter: back-end and HEALPix Jacobi iterations, as in
            :func:`crsky.physics.spectra.map2alm`.

    Returns:
        dict of JAX arrays (real float unless stated), basis maps ordered as :data:`BASIS`:

        - ``cross_spectra``: ``(n_times, lmax + 1, 6, 6)`` ``X_l^{ab}``; ``C_l = c^T X_l c``.
        - ``alm_low``: complex ``(n_times, 6, 3)``, the basis maps' ``(a_00, a_10, a_11)``
          (:data:`ALM_LOW`).
        - ``mean``: ``(n_times, 6)`` pixel mean of each basis map (sky mean ``int dp/4pi``).
        - ``second_moments``: ``(n_times, 6, 6)`` pixel mean of ``b_a b_b`` (exact sky mean of
          ``dI^2 = c^T S c``, free of the ``lmax`` truncation).
    """
    _check_trajectories(r, p)
    if (lmax if lmax is not None else plan.lmax if plan is not None else 1) < 1:
        raise ValueError(f"lmax must be >= 1 (the dipole is needed), got {lmax}")
    basis = basis_maps(r, p)
    alm = jnp.asarray(spectra.map2alm(basis, lmax, method=method, plan=plan, iter=iter))
    lmax = hp.Alm.getlmax(alm.shape[-1])
    return {
        "cross_spectra": spectra.alm_cross_spectra(alm),
        "alm_low": alm[..., [hp.Alm.getidx(lmax, l, m) for l, m in ALM_LOW]],
        "mean": jnp.mean(basis, axis=-1),
        "second_moments": jnp.einsum("...ap,...bp->...ab", basis, basis) / basis.shape[-1],
    }




def _check_vector(name: str, value) -> None:
    if np.shape(value)[-1:] != (3,):
        raise ValueError(f"{name} must have shape (..., 3), got {np.shape(value)}")
    _validate.finite(name, value)


def _check_tensor(name: str, value) -> None:
    if np.shape(value)[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {np.shape(value)}")
    _validate.finite(name, value)


def _check_trajectories(r, p) -> None:
    _check_vector("r", r)
    _check_vector("p", p)
    if np.shape(r) != np.shape(p):
        raise ValueError(f"r and p must have the same shape, got {np.shape(r)} and {np.shape(p)}")
    if len(np.shape(r)) < 2:
        raise ValueError(f"r must have shape (..., Npix, 3), got {np.shape(r)}")
    spectra.nside_from_npix(np.shape(r)[-2], "r")
