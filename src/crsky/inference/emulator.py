"""Smooth, differentiable emulator of the simulated spectrum shape ``Ĉ_l/Ĉ_1`` over ``σ``.

The relative-diffusion paper's back-tracking ensembles give ``Ĉ_l = ⟨C_l⟩ − N`` (eq. 3.1) for one
turbulence level ``σ`` (and ``r_L/Lc``) per run. An emulator table collects, on a grid of
``σ`` (and optionally ``r_L/Lc``), the ratio ``Ĉ_l/Ĉ_1`` with its simulation error (standard
error over field realisations). :func:`evaluate` reads it between grid points in one of two ways,
chosen by :attr:`Emulator.degree`:

- ``degree=None``: interpolation by a monotone piecewise-cubic Hermite spline (PCHIP, Fritsch &
  Carlson 1980) in ``ln σ`` and ``ln(r_L/Lc)``: C¹, no overshoot between grid points, exact at
  the nodes. Right for tables whose noise is small against their σ dependence.
- ``degree=d``: per ``ℓ`` (and ``r_L/Lc``), a weighted least-squares polynomial of degree ``d``
  in ``ln σ`` (weights 1/error²) through the noisy nodes, with the error of the fitted mean
  propagated from its covariance; PCHIP along ``ln(r_L/Lc)``. Right for simulated tables, whose
  realisation noise an interpolant would pass through (for the shipped table it made the σ
  posterior bimodal). :func:`fit_quality` gives the fit's χ² to check the degree.

Both are differentiable in σ and ``r_L/Lc``.

Table format (CSV, ``# key: value`` header lines first)::

    # kind: crsky emulator table
    # synthetic: false          # true only for test tables that were not simulated
    # config: ...               # the ensemble configuration(s) that made it
    # command: ...              # the command that rebuilds it
    sigma,rl_over_lc,ell,ratio,error

with one row per (sigma, rl_over_lc, ell) on a full grid; ``ratio = 1`` and ``error = 0`` at
``ell = 1``; ``error >= 0`` elsewhere.
"""

from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

EMULATOR_COLUMNS = ("sigma", "rl_over_lc", "ell", "ratio", "error")


@dataclass(frozen=True)
class Emulator:
    """An emulator table on a full grid.

    ``sigma``: (n_s,) turbulence levels ``σ = sqrt(⟨δB²⟩)/B0``, increasing;
    ``rl_over_lc``: (n_r,) Larmor radii in ``Lc``, increasing (n_r = 1: a fixed value);
    ``ell``: (n_l,) multipoles; ``ratio``, ``error``: (n_s, n_r, n_l) ``Ĉ_l/Ĉ_1`` and its
    simulation standard error; ``meta``: header lines; ``degree``: ``None`` (PCHIP
    interpolation in ``ln σ``) or the degree ``0 ≤ d ≤ n_s − 2`` of the weighted least-squares
    polynomial in ``ln σ`` (module docstring). Arrays are numpy: loading a table does not start
    JAX (so a caller can still set the CPU device count, e.g. for parallel chains).

    A fit needs, per (``r_L/Lc``, ``ℓ``) column, errors that are all > 0 (fitted) or all 0 (an
    exact column such as ``ℓ = 1``, interpolated).
    """

    sigma: np.ndarray
    rl_over_lc: np.ndarray
    ell: np.ndarray
    ratio: np.ndarray
    error: np.ndarray
    meta: dict = field(default_factory=dict)
    degree: int | None = None
    fit: "SigmaFit | None" = field(init=False, repr=False, compare=False, default=None)
    """The σ fit (:class:`SigmaFit`) when ``degree`` is set, made and checked at construction."""

    def __post_init__(self):
        if self.degree is not None:
            object.__setattr__(self, "fit", _fit_sigma(self))

    def ell_index(self, ell) -> np.ndarray:
        """Positions of the multipoles ``ell`` in the table; ``ValueError`` if one is missing."""
        ell = np.asarray(ell, dtype=int)
        missing = sorted(set(ell.tolist()) - set(self.ell.tolist()))
        if missing:
            raise ValueError(
                f"emulator table has no ell {missing} (it covers ell {self.ell.min()}.."
                f"{self.ell.max()}); restrict the data's ell range"
            )
        return np.searchsorted(self.ell, ell)


def pchip_slopes(x, y):
    """Node derivatives of the monotone cubic (PCHIP) through ``(x, y)`` along axis 0.

    ``x``: (n,) increasing; ``y``: (n, ...). Interior nodes: weighted harmonic mean of the
    neighbouring secants, zero at a local extremum; ends: the three-point formula limited to keep
    monotonicity (Fritsch & Carlson 1980; the choices of ``scipy.interpolate.PchipInterpolator``).
    """
    h = jnp.diff(x).reshape((-1,) + (1,) * (y.ndim - 1))
    delta = jnp.diff(y, axis=0) / h
    if x.shape[0] == 2:
        return jnp.concatenate([delta, delta], axis=0)
    h0, h1, d0, d1 = h[:-1], h[1:], delta[:-1], delta[1:]
    w1, w2 = 2 * h1 + h0, h1 + 2 * h0
    same_sign = d0 * d1 > 0
    safe0, safe1 = jnp.where(same_sign, d0, 1.0), jnp.where(same_sign, d1, 1.0)
    # Fritsch & Carlson (1980): weighted harmonic mean of secants at interior nodes.
    interior = jnp.where(same_sign, (w1 + w2) / (w1 / safe0 + w2 / safe1), 0.0)

    def edge(h0, h1, d0, d1):
        d = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        d = jnp.where(jnp.sign(d) != jnp.sign(d0), 0.0, d)
        return jnp.where((jnp.sign(d0) != jnp.sign(d1)) & (jnp.abs(d) > 3 * jnp.abs(d0)), 3 * d0, d)

    first = edge(h[:1], h[1:2], delta[:1], delta[1:2])
    last = edge(h[-1:], h[-2:-1], delta[-1:], delta[-2:-1])
    return jnp.concatenate([first, interior, last], axis=0)


def pchip(x, y, t):
    """Evaluate the PCHIP interpolant through ``(x, y)`` at scalar ``t`` (clamped to the grid).

    ``x``: (n,) increasing; ``y``: (n, ...); returns shape ``y.shape[1:]``. Differentiable in
    ``t`` and ``y``. With one node the value is ``y[0]``.
    """
    if x.shape[0] == 1:
        return y[0]
    slopes = pchip_slopes(x, y)
    t = jnp.clip(t, x[0], x[-1])
    k = jnp.clip(jnp.searchsorted(x, t, side="right") - 1, 0, x.shape[0] - 2)
    h = x[k + 1] - x[k]
    s = (t - x[k]) / h
    # Cubic Hermite basis on [x_k, x_{k+1}].
    h00, h10 = (1 + 2 * s) * (1 - s) ** 2, s * (1 - s) ** 2
    h01, h11 = s**2 * (3 - 2 * s), s**2 * (s - 1)
    return h00 * y[k] + h10 * h * slopes[k] + h01 * y[k + 1] + h11 * h * slopes[k + 1]


@dataclass(frozen=True)
class SigmaFit:
    """Weighted least-squares polynomials in ``x = ln σ − x0`` per (``r_L/Lc``, ``ℓ``) column.

    ``coefficients`` (n_r, n_l, d + 1) of ``1, x, …, x^d``; ``covariance`` (n_r, n_l, d + 1,
    d + 1) from the table's errors (zero for exact columns); ``chi2`` (n_r, n_l) of each column
    (zero for exact ones); ``exact`` (n_r, n_l) columns with zero errors; ``x0`` the centre of
    ``ln σ`` (conditioning); ``dof`` per fitted column, ``n_s − d − 1``.
    """

    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: np.ndarray
    exact: np.ndarray
    x0: float
    dof: int


def _fit_sigma(emulator: Emulator) -> SigmaFit:
    """The polynomial fits in ``ln σ`` for ``emulator.degree`` (numpy, no JAX); checks the degree.

    Per column: minimise ``Σ_s (ratio_s − P(x_s))² / error_s²`` over polynomials ``P`` of degree
    ``d``; normal equations ``(Vᵀ W V) c = Vᵀ W y`` with ``V`` the Vandermonde matrix of the
    centred ``x_s = ln σ_s − x0`` and ``W = diag(1/error²)``; ``Cov(c) = (Vᵀ W V)⁻¹``.
    """
    degree, n_s = emulator.degree, emulator.sigma.shape[0]
    if n_s < 2:
        raise ValueError(f"degree: a fit needs at least 2 sigma values, the table has {n_s}")
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or not (
        0 <= degree <= n_s - 2
    ):
        raise ValueError(
            f"degree must be an integer in [0, {n_s - 2}] (a fit through the table's {n_s} "
            f"sigma values with at least one degree of freedom), got {degree!r}"
        )
    y = np.moveaxis(emulator.ratio, 0, -1)  # (n_r, n_l, n_s)
    error = np.moveaxis(emulator.error, 0, -1)
    exact = np.all(error == 0, axis=-1)
    mixed = ~(exact | np.all(error > 0, axis=-1))
    if np.any(mixed):
        r, l = np.argwhere(mixed)[0]
        raise ValueError(
            f"degree: a fit needs the errors of each column all > 0 or all 0; at "
            f"rl_over_lc = {emulator.rl_over_lc[r]:g}, ell = {emulator.ell[l]} some are 0"
        )
    if np.all(exact):
        raise ValueError("degree: every error in the table is 0, there is nothing to fit")
    log_sigma = np.log(emulator.sigma)
    x0 = float(np.mean(log_sigma))
    vander = (log_sigma - x0)[:, None] ** np.arange(degree + 1)  # (n_s, d + 1)
    weight = np.where(exact[..., None], 1.0, 1.0 / np.where(error > 0, error, 1.0) ** 2)
    normal = np.einsum("si,rls,sj->rlij", vander, weight, vander)
    covariance = np.linalg.inv(normal)
    coefficients = np.einsum("rlij,sj,rls,rls->rli", covariance, vander, weight, y)
    residual = y - np.einsum("si,rli->rls", vander, coefficients)
    chi2 = np.where(exact, 0.0, np.sum(weight * residual**2, axis=-1))
    covariance = np.where(exact[..., None, None], 0.0, covariance)
    return SigmaFit(coefficients, covariance, chi2, exact, x0, n_s - degree - 1)


def fit_quality(emulator: Emulator, ell=None) -> dict:
    """χ² of the σ fit summed over the fitted columns of the multipoles ``ell`` (default all).

    Returns ``degree``, ``chi2``, ``dof`` and ``p_value`` (the χ² survival probability; a small
    value says the degree is too low for the table's σ dependence, or its errors too small;
    ``None`` when those multipoles have nothing fitted, e.g. ``ell = [1]``). The columns are
    treated as independent: the jackknife errors of different ``ℓ`` share realisations and
    ``Ĉ_1``, so the p-value is approximate.
    """
    from scipy.stats import chi2 as chi2_distribution

    fit = emulator.fit
    if fit is None:
        raise ValueError("degree: the emulator interpolates (degree=None); set a degree to fit")
    index = emulator.ell_index(emulator.ell if ell is None else np.unique(ell))
    fitted = ~fit.exact[:, index]
    total, dof = float(np.sum(fit.chi2[:, index])), int(np.sum(fitted)) * fit.dof
    return {"degree": emulator.degree, "chi2": total, "dof": dof,
            "p_value": float(chi2_distribution.sf(total, dof)) if dof else None}


def _fitted_along_sigma(emulator: Emulator, sigma):
    """``(ratio, error)`` of shape (n_r, n_l) at ``σ`` from :attr:`Emulator.fit` (exact columns
    by PCHIP), ``ln σ`` clamped to the grid."""
    fit = emulator.fit
    log_sigma = np.log(emulator.sigma)
    x = jnp.clip(jnp.log(sigma), log_sigma[0], log_sigma[-1]) - fit.x0
    powers = jnp.stack([x**k for k in range(emulator.degree + 1)])  # 1, x, …, x^d
    ratio = jnp.asarray(fit.coefficients) @ powers
    # variance of the fitted mean: vᵀ Cov(c) v
    variance = jnp.einsum("i,rlij,j->rl", powers, jnp.asarray(fit.covariance), powers)
    # exact columns have zero variance: keep sqrt away from 0 there (its derivative is infinite)
    error = jnp.where(fit.exact, 0.0, jnp.sqrt(jnp.where(fit.exact, 1.0, variance)))
    exact_ratio = pchip(jnp.asarray(log_sigma), jnp.asarray(emulator.ratio), jnp.log(sigma))
    return jnp.where(fit.exact, exact_ratio, ratio), error


def evaluate(emulator: Emulator, sigma, rl_over_lc=None):
    """``(ratio, error)`` at ``σ`` (and ``r_L/Lc``), each of shape (n_l,) over ``emulator.ell``.

    ``degree=None``: PCHIP in ``ln σ`` and ``ln(r_L/Lc)``; ``degree=d``: the polynomial fit in
    ``ln σ`` (:attr:`Emulator.fit`; ``error`` is then the error of the fitted mean), then PCHIP in
    ``ln(r_L/Lc)``. Clamped to the grid (callers keep their priors inside it, see
    :func:`crsky.inference.models.spectrum_sigma_model`). ``rl_over_lc`` is ignored when the table
    has a
    single ``r_L/Lc``.
    """
    if emulator.degree is not None:
        ratio, error = _fitted_along_sigma(emulator, sigma)  # (n_r, n_l)
        if emulator.rl_over_lc.shape[0] == 1:
            return ratio[0], error[0]
        out = pchip(jnp.log(emulator.rl_over_lc), jnp.stack([ratio, error], -1),
                    jnp.log(rl_over_lc))
        return out[..., 0], out[..., 1]
    values = jnp.stack([emulator.ratio, emulator.error])  # (2, n_s, n_r, n_l)
    values = jnp.moveaxis(values, 0, -1)  # (n_s, n_r, n_l, 2)
    if emulator.rl_over_lc.shape[0] > 1:
        along_r = jnp.moveaxis(values, 1, 0)  # (n_r, n_s, n_l, 2)
        values = pchip(jnp.log(emulator.rl_over_lc), along_r, jnp.log(rl_over_lc))
    else:
        values = values[:, 0]
    out = pchip(jnp.log(emulator.sigma), values, jnp.log(sigma))
    return out[..., 0], out[..., 1]








