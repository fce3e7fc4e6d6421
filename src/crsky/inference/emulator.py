"""Smooth, differentiable emulator of the simulated spectrum shape ``Ĉ_l/Ĉ_1`` over ``σ`` and
``r_L/Lc``.

The relative-diffusion paper's back-tracking ensembles give ``Ĉ_l = ⟨C_l⟩ − N`` (eq. 3.1) for one
turbulence level ``σ`` (and ``r_L/Lc``) per run. An emulator table collects, on a grid of
``σ`` (and optionally ``r_L/Lc``), the ratio ``Ĉ_l/Ĉ_1`` with its simulation error (standard
error over field realisations). :func:`evaluate` reads it between grid points in one of two ways,
chosen by :attr:`Emulator.degree`:

- ``degree=None``: interpolation by a monotone piecewise-cubic Hermite spline (PCHIP, Fritsch &
  Carlson 1980) in ``ln σ`` and ``ln(r_L/Lc)``: C¹, no overshoot between grid points, exact at
  the nodes. Right for tables whose noise is small against their σ dependence.
- ``degree=d``: per ``ℓ``, a weighted least-squares polynomial of total degree ``d`` in
  ``x = ln σ`` and ``y = ln(r_L/Lc)`` (monomials ``x^i y^j``, ``i + j ≤ d``; in ``x`` alone for a
  table with one ``r_L/Lc``), weights 1/error², through all the noisy nodes at once, with the
  error of the fitted mean propagated from its covariance. Right for simulated tables, whose
  realisation noise an interpolant would pass through (a one-axis table of 16 realisations per
  node made the σ posterior bimodal that way). :func:`fit_quality` gives the fit's χ² to check
  the degree; :func:`leave_one_out` validates it on held-out nodes.

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
    interpolation) or the total degree ``d`` of the weighted least-squares polynomial in
    ``ln σ`` and ``ln(r_L/Lc)`` (module docstring; it must leave the fit at least one degree of
    freedom). Arrays are numpy: loading a table does not start JAX (so a caller can still set
    the CPU device count, e.g. for parallel chains).

    A fit needs, per ``ℓ`` column, errors that are all > 0 (fitted) or all 0 (an exact column
    such as ``ℓ = 1``, interpolated).
    """

    sigma: np.ndarray
    rl_over_lc: np.ndarray
    ell: np.ndarray
    ratio: np.ndarray
    error: np.ndarray
    meta: dict = field(default_factory=dict)
    degree: int | None = None
    fit: "PolynomialFit | None" = field(init=False, repr=False, compare=False, default=None)
    """The polynomial fit (:class:`PolynomialFit`) when ``degree`` is set, made and checked at
    construction."""

    def __post_init__(self):
        if self.degree is not None:
            object.__setattr__(self, "fit", _fit_polynomial(self))

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
class PolynomialFit:
    """Weighted least-squares polynomials per ``ℓ`` column in centred ``x = ln σ − x0`` and
    ``y = ln(r_L/Lc) − y0``.

    ``powers`` (n_terms, 2) the exponents ``(i, j)`` of the monomials ``x^i y^j``;
    ``coefficients`` (n_l, n_terms); ``covariance`` (n_l, n_terms, n_terms) from the table's
    errors (zero for exact columns); ``chi2`` (n_l,) of each column (zero for exact ones);
    ``exact`` (n_l,) columns with zero errors; ``x0``, ``y0`` the centres (conditioning);
    ``dof`` per fitted column, ``n_nodes − n_terms``.
    """

    powers: np.ndarray
    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: np.ndarray
    exact: np.ndarray
    x0: float
    y0: float
    dof: int


def _monomial_powers(degree: int, two_axes: bool) -> np.ndarray:
    """Exponents ``(i, j)`` with ``i + j ≤ degree`` (``j = 0`` for one axis), shape (n, 2)."""
    return np.array([(i, j) for i in range(degree + 1)
                     for j in range(degree + 1 - i if two_axes else 1)])


def _fit_polynomial(emulator: Emulator, keep=None) -> PolynomialFit:
    """The polynomial fits for ``emulator.degree`` (numpy, no JAX); checks the degree.

    Per ``ℓ`` column: minimise ``Σ_nodes (ratio − P(x, y))² / error²`` over polynomials ``P`` of
    total degree ``d``; normal equations ``(Vᵀ W V) c = Vᵀ W y`` with ``V`` the design matrix of
    the monomials at the nodes and ``W = diag(1/error²)``; ``Cov(c) = (Vᵀ W V)⁻¹``.
    ``keep``: (n_s, n_r) boolean mask of the nodes to fit (default all; held-out validation).
    """
    degree = emulator.degree
    n_s, n_r = emulator.sigma.shape[0], emulator.rl_over_lc.shape[0]
    two_axes = n_r > 1
    keep = np.ones((n_s, n_r), bool) if keep is None else np.asarray(keep, bool)
    n_nodes = int(keep.sum())
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0:
        raise ValueError(f"degree must be an integer >= 0, got {degree!r}")
    if degree >= n_s or (two_axes and degree >= n_r):
        raise ValueError(
            f"degree must be below the number of values on each axis ({n_s} sigma"
            f"{f', {n_r} r_L/Lc' if two_axes else ''}), got {degree}"
        )
    powers = _monomial_powers(int(degree), two_axes)
    if n_nodes <= powers.shape[0]:
        raise ValueError(
            f"degree must leave at least one degree of freedom: a polynomial of degree {degree} "
            f"in {'ln sigma and ln r_L/Lc' if two_axes else 'ln sigma'} has {powers.shape[0]} "
            f"terms and the table {n_nodes} nodes"
        )
    x_nodes, y_nodes = np.log(emulator.sigma), np.log(emulator.rl_over_lc)
    x0, y0 = float(np.mean(x_nodes)), float(np.mean(y_nodes))
    x, y = np.meshgrid(x_nodes - x0, y_nodes - y0, indexing="ij")
    design = x[keep][:, None] ** powers[:, 0] * y[keep][:, None] ** powers[:, 1]  # (nodes, T)
    ratio, error = emulator.ratio[keep].T, emulator.error[keep].T  # (n_l, nodes)
    exact = np.all(error == 0, axis=-1)
    mixed = ~(exact | np.all(error > 0, axis=-1))
    if np.any(mixed):
        raise ValueError(
            f"degree: a fit needs the errors of each column all > 0 or all 0; at "
            f"ell = {emulator.ell[np.argmax(mixed)]} some are 0"
        )
    if np.all(exact):
        raise ValueError("degree: every error in the table is 0, there is nothing to fit")
    weight = np.where(exact[:, None], 1.0, 1.0 / np.where(error > 0, error, 1.0) ** 2)
    normal = np.einsum("ni,ln,nj->lij", design, weight, design)
    covariance = np.linalg.inv(normal)
    coefficients = np.einsum("lij,nj,ln,ln->li", covariance, design, weight, ratio)
    residual = ratio - coefficients @ design.T
    chi2 = np.where(exact, 0.0, np.sum(weight * residual**2, axis=-1))
    covariance = np.where(exact[:, None, None], 0.0, covariance)
    return PolynomialFit(powers, coefficients, covariance, chi2, exact, x0, y0,
                         n_nodes - powers.shape[0])


def fit_quality(emulator: Emulator, ell=None) -> dict:
    """χ² of the polynomial fit summed over the fitted columns of the multipoles ``ell``
    (default all).

    Returns ``degree``, ``chi2``, ``dof`` and ``p_value`` (the χ² survival probability; a small
    value says the degree is too low for the table's dependence on the parameters, or its
    errors too small; ``None`` when those multipoles have nothing fitted, e.g. ``ell = [1]``).
    The columns and nodes are treated as independent: the jackknife errors of different ``ℓ``
    share realisations and ``Ĉ_1``, and nodes simulated with the same seed share their fields,
    so the p-value is approximate.
    """
    from scipy.stats import chi2 as chi2_distribution

    fit = emulator.fit
    if fit is None:
        raise ValueError("degree: the emulator interpolates (degree=None); set a degree to fit")
    index = emulator.ell_index(emulator.ell if ell is None else np.unique(ell))
    fitted = ~fit.exact[index]
    total, dof = float(np.sum(fit.chi2[index])), int(np.sum(fitted)) * fit.dof
    return {"degree": emulator.degree, "chi2": total, "dof": dof,
            "p_value": float(chi2_distribution.sf(total, dof)) if dof else None}


def _polynomial(fit: PolynomialFit, emulator: Emulator, sigma, rl_over_lc):
    """``(ratio, error)`` of shape (n_l,) of the fitted polynomials at ``(σ, r_L/Lc)`` clamped
    to the grid; ``error`` is the standard error of the fitted mean, ``vᵀ Cov(c) v``."""
    x_nodes, y_nodes = np.log(emulator.sigma), np.log(emulator.rl_over_lc)
    x = jnp.clip(jnp.log(sigma), x_nodes[0], x_nodes[-1]) - fit.x0
    y = 0.0 if rl_over_lc is None else (
        jnp.clip(jnp.log(rl_over_lc), y_nodes[0], y_nodes[-1]) - fit.y0)
    monomials = jnp.stack([x**i * y**j for i, j in fit.powers])
    ratio = jnp.asarray(fit.coefficients) @ monomials
    variance = jnp.einsum("i,lij,j->l", monomials, jnp.asarray(fit.covariance), monomials)
    # exact columns have zero variance: keep sqrt away from 0 there (its derivative is infinite)
    error = jnp.where(fit.exact, 0.0, jnp.sqrt(jnp.where(fit.exact, 1.0, variance)))
    return ratio, error


def _interpolated(emulator: Emulator, sigma, rl_over_lc):
    """``(ratio, error)`` of shape (n_l,) by PCHIP in ``ln(r_L/Lc)``, then in ``ln σ``."""
    values = jnp.moveaxis(jnp.stack([emulator.ratio, emulator.error]), 0, -1)  # (s, r, l, 2)
    if emulator.rl_over_lc.shape[0] > 1:
        along_r = jnp.moveaxis(values, 1, 0)  # (n_r, n_s, n_l, 2)
        values = pchip(jnp.log(emulator.rl_over_lc), along_r, jnp.log(rl_over_lc))
    else:
        values = values[:, 0]
    out = pchip(jnp.log(emulator.sigma), values, jnp.log(sigma))
    return out[..., 0], out[..., 1]


def evaluate(emulator: Emulator, sigma, rl_over_lc=None):
    """``(ratio, error)`` at ``σ`` (and ``r_L/Lc``), each of shape (n_l,) over ``emulator.ell``.

    ``degree=None``: PCHIP in ``ln σ`` and ``ln(r_L/Lc)``; ``degree=d``: the polynomial fit
    (:attr:`Emulator.fit`; ``error`` is then the error of the fitted mean; exact columns such as
    ``ℓ = 1`` by PCHIP). Clamped to the grid (callers keep their priors inside it, see
    :func:`crsky.inference.models.spectrum_sigma_parameters`). ``rl_over_lc`` is ignored when
    the table has a single ``r_L/Lc``.
    """
    if emulator.rl_over_lc.shape[0] == 1:
        rl_over_lc = None
    interpolated = _interpolated(emulator, sigma, rl_over_lc)
    if emulator.fit is None:
        return interpolated
    ratio, error = _polynomial(emulator.fit, emulator, sigma, rl_over_lc)
    return jnp.where(emulator.fit.exact, interpolated[0], ratio), error


def leave_one_out(emulator: Emulator) -> np.ndarray:
    """Held-out validation of the polynomial fit: for each node, refit without it and compare.

    Returns ``pull`` of shape (n_s, n_r, n_l): ``(ratio_node − P_without(node)) /
    sqrt(error_node² + error_P²)``, the simulated value against the prediction of the fit that
    did not see it, in units of their combined error (0 for exact columns). Well-calibrated
    errors and an adequate degree give pulls of unit spread.
    """
    if emulator.fit is None:
        raise ValueError("degree: the emulator interpolates (degree=None); set a degree to fit")
    n_s, n_r = emulator.sigma.shape[0], emulator.rl_over_lc.shape[0]
    pull = np.zeros(emulator.ratio.shape)
    for a in range(n_s):
        for b in range(n_r):
            keep = np.ones((n_s, n_r), bool)
            keep[a, b] = False
            fit = _fit_polynomial(emulator, keep)
            ratio, error = _polynomial(fit, emulator, emulator.sigma[a], emulator.rl_over_lc[b])
            total = np.hypot(emulator.error[a, b], np.asarray(error))
            pull[a, b] = np.divide(emulator.ratio[a, b] - np.asarray(ratio), total,
                                   out=np.zeros(total.shape), where=total > 0)
    return pull
