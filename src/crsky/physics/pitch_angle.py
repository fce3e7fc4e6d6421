"""Pitch-angle eigenproblem of the beam paper, eq. (8), solved exactly enough to differentiate.

    d/dμ [ (1 − μ²) D(μ) dΨ/dμ ] + λ (u + μ) Ψ = 0,   μ ∈ [−1, 1],  Ψ bounded at μ = ±1.

``μ`` is the pitch-angle cosine, ``u`` the bulk speed of the scattering centres in units of ``c``
(``|u| < 1``), ``λ`` the decay rate along the flux tube in units of ``ν_ϑ / c`` (beam paper
eqs. 6–7). The normalised scattering profile ``D(μ)`` (see :func:`scattering_profile`) is ≈ 1
except in peaks of width ``b = j1² ε / 2`` at ``|μ| → 1``.

Method (spectral elements, float64 required):

- Continuous Lagrange elements of odd degree ``degree`` on Gauss–Lobatto–Legendre (GLL) nodes,
  on a mesh that is geometrically graded towards the peak edges ``|μ| = μ_e`` (inside and
  outside) and towards the tips ``|μ| = 1``, so that peaks of width ~ε (and the √a-wide
  transition inside a matched peak) are resolved. The natural boundary condition of the weak
  form is the regularity condition at the singular ends. Stiffness ``A = Gᵀ G`` by Gauss
  quadrature (``G``: square-root-weighted derivatives at the Gauss points), weight ``W`` lumped
  on the GLL nodes (``W_ii = w_i (u + μ_i)``, indefinite).
- The weight is indefinite and, at ``u = 0``, λ = 0 is a 2×2 Jordan block (constant mode plus
  diffusion mode), so no definite pencil exists. The non-zero eigenvalues of ``W⁻¹ A = W⁻¹ Gᵀ G``
  are those of the symmetric matrix ``H = G W⁻¹ Gᵀ``, which ``jnp.linalg.eigh`` solves; the
  eigenvectors follow as ``Ψ = W⁻¹ Gᵀ φ / λ``. A central element is placed around ``μ = −u``
  (odd degree: no node there), so ``W`` stays invertible.
- The "zero mode" (λ = 0 at u = 0; otherwise the convective mode, λ ≈ −6u for D ≡ 1 and small
  u, the eigenvalue next to zero on the side −sign(u)) belongs to neither branch. The positive
  branch is the eigenvalues above it, the negative branch those below.
- Derivatives are implicit (:func:`jax.custom_jvp`), never through ``eigh``: Hellmann–Feynman
  ``dλ = Ψᵀ(dA − λ dW)Ψ / ΨᵀWΨ`` and, for Ψ, a bordered linear solve of
  ``(A − λW) dΨ = −(dA − λ dW − dλ W) Ψ`` with the normalisation constraint. Mesh and
  operators are plain differentiable functions of (ε, δ, u), so the rule gives the exact
  derivative of the discrete eigenpair.

The public entry point is :func:`solve`; it runs under ``jit`` and ``vmap`` (profile, counts and
resolution are static).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from crsky import _validate

J1_ZERO = 3.8317059702075125
"""First positive zero ``j1`` of the Bessel function J1 (beam paper eq. (4); docs/physics.md
(B5))."""

PROFILES = ("flat", "matched", "gs")
"""Profiles D(μ): ``flat`` D ≡ 1; ``matched`` the paper's inner form; ``gs`` eqs. (3)–(4)."""

EPS_MAX = 0.02
"""Largest ε accepted (peak width b = j1² ε / 2 ≤ 0.15; the mesh is graded towards the peak
edge for every profile, so ``flat`` shares the bound)."""

EPS_MIN = 1e-10
"""Smallest ε accepted: below it the peak width b = j1² ε / 2 approaches the rounding of μ near
1 in float64 and the graded mesh degenerates."""

DELTA_MAX = 1.0
"""``δ = V_A / c`` must stay below 1 (Alfvén waves are slower than light)."""

R_GS = 1e-2
"""The small constant ``r`` of beam paper eq. (4) (the paper: r ~ 1e-2; docs/physics.md (B3))."""

# Power series 2 J1(x)/x = Σ_k (−x²/4)^k / (k! (k+1)!); 24 terms reach 1e-17 for x ≤ j1
_J1_SERIES = np.array(
    [(-1.0) ** k / (math.factorial(k) * math.factorial(k + 1)) for k in range(24)]
)


def _j1_over_x_sq(t):
    """``(2 J1(x) / x)²`` as a function of ``t = x² / 4`` (power series, exact at x = 0)."""
    s = jnp.polyval(jnp.asarray(_J1_SERIES[::-1]), t)
    return s * s


def rate_ratio(eps, delta):
    """``a = ν_ϑ l / v = (δ ln(1/ε) + ε^{3/2}) / 6`` (dimensionless)."""
    return (delta * jnp.log(1.0 / eps) + eps**1.5) / 6.0  # Beam paper eq. (5)


def peak_width(eps):
    """``b = j1² ε / 2``: width of the peak of D in μ (dimensionless)."""
    return J1_ZERO**2 * eps / 2.0  # Beam paper, inner expansion: b = ε j1² / 2


def peak_edge(eps, profile: str):
    """``μ_e``: where the peak of D ends (``gs``: y = j1, i.e. 1 − μ² = j1² ε; else 1 − b)."""
    if profile == "gs":
        return jnp.sqrt(1.0 - J1_ZERO**2 * eps)  # Beam paper eq. (4): switch at y = j1
    return 1.0 - peak_width(eps)


def scattering_profile(mu, eps, delta, profile: str = "matched", r: float = R_GS):
    """Normalised scattering coefficient ``D(μ) = D_μμ / ((1 − μ²) ν_ϑ)`` (dimensionless).

    Args:
        mu: pitch-angle cosines, any shape, ``|μ| < 1``.
        eps: ``ε = r_g / l`` in (0, 1).
        delta: ``δ = V_A / c ≥ 0`` (``gs`` needs δ > 0).
        profile: ``"flat"`` (D ≡ 1), ``"matched"`` (docs/physics.md (B5): ``1 + F(w)/a`` for
            ``w = (1 − |μ|)/b ≤ 1``, else 1) or ``"gs"`` (eq. 4 for ``y < j1``, eq. 3 beyond).
        r: coefficient of the ``r y^{4/3}`` term of eq. (4) (``gs`` only). It keeps D > 0 at
            ``y → j1⁻``, where ``J1²`` has a double zero.

    Returns:
        ``D`` with the shape of ``mu``.
    """
    mu = jnp.asarray(mu)
    if profile == "flat":
        return jnp.ones_like(mu)
    a = rate_ratio(eps, delta)
    one_minus_mu2 = (1.0 - jnp.abs(mu)) * (1.0 + jnp.abs(mu))
    if profile == "matched":
        w = jnp.clip((1.0 - jnp.abs(mu)) / peak_width(eps), 0.0, 1.0)
        # Beam paper, inner expansion: F(w) = π/(2 j1² w) J1²(j1 √w) = (π/8) (2 J1(x)/x)²,
        # x = j1 √w; docs/physics.md (B5)
        f = jnp.pi / 8.0 * _j1_over_x_sq(J1_ZERO**2 * w / 4.0)
        return 1.0 + jnp.where(w < 1.0, f, 0.0) / a
    y2 = one_minus_mu2 / eps
    inside = y2 < J1_ZERO**2
    y2_in = jnp.where(inside, y2, 0.0)
    # Beam paper eq. (4): D_μμ = (π/2)(v/l)(1 − μ²)[J1²(y)/y² + r y^{4/3}]
    d_peak = (
        jnp.pi / 8.0 * _j1_over_x_sq(y2_in / 4.0) + jnp.pi / 2.0 * r * y2_in ** (2.0 / 3.0)
    ) / a
    log_term = jnp.log(jnp.where(inside, 1.0, one_minus_mu2))
    # Beam paper eq. (3): D_μμ = (1/6)(v/l) δ [ln(1/ε) − ½ ln(1 − μ²)](1 − μ²)
    d_outer = delta * (jnp.log(1.0 / eps) - 0.5 * log_term) / (6.0 * a)
    return jnp.where(inside, d_peak, d_outer)


# --------------------------------------------------------------------------------------------
# discretisation


@functools.lru_cache
def _reference_element(degree: int):
    """GLL nodes/weights, Gauss nodes/weights and Lagrange-basis derivatives at the Gauss nodes."""
    leg = np.polynomial.legendre
    c = np.zeros(degree + 1)
    c[-1] = 1.0
    x = np.concatenate([[-1.0], np.sort(leg.legroots(leg.legder(c))), [1.0]])
    w = 2.0 / (degree * (degree + 1) * leg.legval(x, c) ** 2)
    xg, wg = leg.leggauss(degree)
    vander = leg.legvander(x, degree)
    dvander = np.stack(
        [leg.legval(xg, leg.legder(np.eye(degree + 1)[j])) for j in range(degree + 1)], 1
    )
    dbasis = dvander @ np.linalg.inv(vander)  # (degree, degree + 1): φ_j'(ξ_q)
    return x, w, xg, wg, dbasis


def _graded(start, end, h0, m: int):
    """``m + 1`` element boundaries from ``start`` to ``end``, geometric, first size ≈ ``h0``.

    The ratio of neighbouring sizes is at least 2 (``h0`` is clipped) so boundaries never merge.
    """
    length = jnp.abs(end - start)
    z = jnp.clip(h0 / length, 1e-300, 0.5 ** (m - 1))
    offsets = length * z ** ((m - 1 - np.arange(m)) / (m - 1))
    return start + jnp.sign(end - start) * jnp.concatenate([jnp.zeros(1), offsets])


def _mesh(eps, delta, u, profile: str, layers: int):
    """Element boundaries on [−1, 1] (1-d, increasing) for the given parameters."""
    b = peak_width(eps)
    mu_e = peak_edge(eps, profile)
    mid = 0.5 * (1.0 + mu_e)
    h_tip = 1e-2 * (1.0 - mu_e)
    h_edge_in = 0.5 * jnp.sqrt(rate_ratio(eps, delta)) * (1.0 - mu_e)  # √a-wide edge layer
    h_edge_out = 0.5 * b
    half = 0.125  # central element [c − half, c + half] around μ = −u keeps W invertible
    centre = jnp.clip(-u, -0.5, 0.5)
    k_peak = max(layers // 2, 2)
    right = jnp.concatenate(
        [
            _graded(mu_e, centre + half, h_edge_out, layers)[::-1],
            _graded(mu_e, mid, h_edge_in, k_peak)[1:],
            _graded(1.0, mid, h_tip, k_peak)[::-1][1:],
        ]
    )
    left = jnp.concatenate(
        [
            _graded(-1.0, -mid, h_tip, k_peak),
            _graded(-mu_e, -mid, h_edge_in, k_peak)[::-1][1:],
            _graded(-mu_e, centre - half, h_edge_out, layers)[1:],
        ]
    )
    return jnp.concatenate([left, right])


class _Operators(eqx.Module):
    """Discrete operators on a mesh: A = GᵀG, W = diag(w) (indefinite), M = diag(m) (mass)."""

    mu: jax.Array  # (n,) GLL nodes
    g: jax.Array  # (n − 1, n)
    w: jax.Array  # (n,) lumped ∫ (u + μ) φ_i
    m: jax.Array  # (n,) lumped ∫ φ_i


def _operators(bounds, eps, delta, u, profile: str, degree: int) -> _Operators:
    xr, wr, xg, wg, dbasis = _reference_element(degree)
    n_el = bounds.shape[0] - 1
    lo, h = bounds[:-1, None], jnp.diff(bounds)[:, None]
    nodes = lo + 0.5 * (xr + 1.0) * h  # (E, P + 1)
    mu = jnp.concatenate([nodes[:, :-1].ravel(), bounds[-1:]])
    xq = lo + 0.5 * (xg + 1.0) * h  # (E, P) Gauss points
    # Beam paper eq. (8), weak form: ∫ (1 − μ²) D Ψ' χ' dμ = λ ∫ (u + μ) Ψ χ dμ
    p = (1.0 - jnp.abs(xq)) * (1.0 + jnp.abs(xq)) * scattering_profile(xq, eps, delta, profile)
    vals = jnp.sqrt(0.5 * wg * h * p)[:, :, None] * (2.0 / h)[:, :, None] * dbasis  # (E, P, P+1)
    e = np.arange(n_el)[:, None, None]
    rows = np.broadcast_to(e * degree + np.arange(degree)[None, :, None], vals.shape)
    cols = np.broadcast_to(e * degree + np.arange(degree + 1)[None, None, :], vals.shape)
    n = n_el * degree + 1
    g = jnp.zeros((n - 1, n), vals.dtype).at[rows.ravel(), cols.ravel()].set(vals.ravel())
    idx = (e[:, :, 0] * degree + np.arange(degree + 1)).ravel()
    mass = (0.5 * wr * h).ravel()
    m = jnp.zeros(n, mass.dtype).at[idx].add(mass)
    return _Operators(mu=mu, g=g, w=m * (u + mu), m=m)


# --------------------------------------------------------------------------------------------
# eigenpairs with implicit derivatives


def _branch_indices(lam_all, w, m, n_eigen: int, sign: int):
    """Indices (into ascending ``lam_all``) of the first ``n_eigen`` eigenvalues of a branch.

    The zero mode (λ = 0 at u = 0, the convective mode otherwise, with no sign change) is the
    eigenvalue next to zero on the side −sign(u) (Sturm ordering); for |u| < 1e-3 it is the
    eigenvalue closest to zero (|λ| ≲ 6|u| ≪ |λ1|), which is robust to its rounding at u → 0.
    """
    u = jnp.sum(w) / jnp.sum(m)  # Σ m (u + μ) / Σ m, GLL quadrature integrates μ exactly
    n_neg = jnp.sum(lam_all < 0)
    by_sign = jnp.where(u > 0, n_neg - 1, n_neg)
    i0 = jnp.where(jnp.abs(u) < 1e-3, jnp.argmin(jnp.abs(lam_all)), by_sign)
    return i0 + sign * (1 + jnp.arange(n_eigen))


def _rayleigh(g, w, psi):
    return jnp.sum((psi @ g.T) ** 2, 1) / jnp.sum(w * psi**2, 1)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _eigenpairs(g, w, m, n_eigen: int, signs: tuple[int, ...]):
    """First ``n_eigen`` eigenpairs of ``GᵀG Ψ = λ diag(w) Ψ`` on each branch in ``signs`` (±1).

    Returns ``λ`` (len(signs) · n_eigen,) ordered by |λ| within each branch and ``Ψ`` (same, n),
    ``Σ m Ψ² = 1``, with ``Ψ > 0`` at the end of the branch (μ = 1 for +1, μ = −1 for −1).
    Both branches come from one ``eigh`` and one batched solve: one decomposition instead of
    two, and no concurrent LAPACK calls (two were seen to deadlock XLA:CPU's concurrency-
    optimised scheduler, jaxlib 0.10.2).
    """
    lam_all, phi_all = jnp.linalg.eigh((g / w) @ g.T)
    idx = jnp.concatenate([_branch_indices(lam_all, w, m, n_eigen, sign) for sign in signs])
    lam = lam_all[idx]
    psi = (g.T @ phi_all[:, idx]).T / (lam[:, None] * w)
    # One step of inverse iteration at the Rayleigh quotient λ = |GΨ|²/ΣwΨ² (stationary): eigh
    # is accurate to ε_mach ‖H‖ only, and ‖H‖ is large on the graded mesh. The shift is moved
    # by 1e-9 λ so that the pencil is never exactly singular in floating point.
    lam = _rayleigh(g, w, psi)
    shift = lam * (1.0 + 1e-9)
    pencil = (g.T @ g)[None] - shift[:, None, None] * jnp.diag(w)[None]
    psi = jnp.linalg.solve(pencil, (w * psi)[..., None])[..., 0]
    lam = _rayleigh(g, w, psi)
    psi = psi / jnp.sqrt(jnp.sum(m * psi**2, axis=1, keepdims=True))
    end = jnp.where(jnp.repeat(jnp.asarray(signs), n_eigen) > 0, psi[:, -1], psi[:, 0])
    return lam, psi * jnp.sign(end)[:, None]


@_eigenpairs.defjvp
def _eigenpairs_jvp(n_eigen, signs, primals, tangents):
    g, w, m = primals
    dg, dw, dm = tangents
    lam, psi = _eigenpairs(g, w, m, n_eigen, signs)
    gpsi, dgpsi = psi @ g.T, psi @ dg.T  # (k, n − 1)
    # Hellmann–Feynman for A Ψ = λ W Ψ: dλ = Ψᵀ(dA − λ dW)Ψ / ΨᵀWΨ, dA = dGᵀG + GᵀdG
    dlam = (2.0 * jnp.sum(gpsi * dgpsi, 1) - lam * jnp.sum(dw * psi**2, 1)) / jnp.sum(w * psi**2, 1)
    # (A − λW) dΨ = −(dA − λ dW − dλ W) Ψ with Σ(2 m Ψ dΨ + dm Ψ²) = 0 (bordered, symmetric)
    rhs = -(dgpsi @ g + gpsi @ dg - (lam[:, None] * dw + dlam[:, None] * w) * psi)
    a = g.T @ g
    mpsi = m * psi
    n = psi.shape[1]
    k = jnp.zeros((lam.size, n + 1, n + 1), g.dtype)
    k = k.at[:, :n, :n].set(a[None] - lam[:, None, None] * jnp.diag(w)[None])
    k = k.at[:, :n, n].set(mpsi).at[:, n, :n].set(mpsi)
    b = jnp.concatenate([rhs, -0.5 * jnp.sum(dm * psi**2, 1, keepdims=True)], axis=1)
    dpsi = jnp.linalg.solve(k, b[..., None])[:, :n, 0]
    return (lam, psi), (dlam, dpsi)


class EigenSolution(eqx.Module):
    """Eigenpairs of beam paper eq. (8) on the spectral-element grid.

    Attributes:
        lambdas: (n_eigen,) first positive eigenvalues, ascending (units of ν_ϑ / c).
        psi: (n_eigen, n) eigenfunctions at ``mu``, normalised to ``∫ Ψ² dμ = 1`` (GLL
            quadrature, ``weights``) with ``Ψ(1) > 0``.
        mu: (n,) GLL nodes on [−1, 1], increasing; ``mu[0] = −1``, ``mu[-1] = 1``.
        weights: (n,) quadrature weights of ``mu`` (``∫ f dμ ≈ Σ weights f(mu)``).
        neg_lambdas: (n_eigen,) first negative eigenvalues ordered by |λ| (``negative=True``),
            else None.
        neg_psi: (n_eigen, n) their eigenfunctions, ``∫ Ψ² dμ = 1``, ``Ψ(−1) > 0``, else None.
        degree: polynomial degree of the elements (static); element ``e`` holds the nodes
            ``mu[e * degree : (e + 1) * degree + 1]``.
    """

    lambdas: jax.Array
    psi: jax.Array
    mu: jax.Array
    weights: jax.Array
    neg_lambdas: jax.Array | None
    neg_psi: jax.Array | None
    degree: int = eqx.field(static=True)


DEFAULT_DEGREE = 9
DEFAULT_LAYERS = 6


def _check(eps, delta, u, profile, n_eigen=1, degree=DEFAULT_DEGREE, layers=DEFAULT_LAYERS):
    """Validate the public arguments; returns ``(eps, delta, u)``, traced ones carrying their
    run-time range checks."""
    _validate.float64_enabled("the pitch-angle eigen solver")
    _validate.one_of("profile", profile, PROFILES)
    _validate.positive_int("n_eigen", n_eigen)
    _validate.positive_int("degree", degree)
    if degree % 2 == 0 or degree < 3:
        raise ValueError(f"degree must be odd and >= 3, got {degree!r}")
    _validate.positive_int("layers", layers)
    if layers < 3:
        raise ValueError(f"layers must be >= 3, got {layers!r}")
    # dense n x n matrices: H, its eigenvectors, the shifted pencils and bordered systems of
    # the derivative (one per eigenpair and branch)
    n = (2 * layers + 4 * max(layers // 2, 2) + 1) * degree + 1
    if n_eigen > n - 3:  # a branch holds at most n − 3 (exact count after the solve)
        raise ValueError(
            f"n_eigen must be <= {n - 3}, more than the eigenvalues a branch of this grid "
            f"(degree={degree}, layers={layers}) holds, got {n_eigen}"
        )
    _validate.fits_in_memory(f"degree={degree}, layers={layers}, n_eigen={n_eigen}",
                             8 * n**2 * (4 + 4 * n_eigen), "the eigenproblem's matrices")
    eps = _validate.closed_interval("eps", eps, EPS_MIN, EPS_MAX)
    delta = (_validate.positive if profile == "gs" else _validate.non_negative)("delta", delta)
    delta = _validate.below("delta", delta, DELTA_MAX, "V_A / c")
    u = _validate.open_interval("u", u, -1.0, 1.0)
    return eps, delta, u


def _check_available(counts, n_eigen: int, negative: bool, degree: int, layers: int) -> None:
    """Refuse ``n_eigen`` beyond the eigenvalues the grid holds on a branch.

    ``counts``: the nodes with ``u + μ > 0`` and ``< 0``. ``H = G W⁻¹ Gᵀ`` has at least (nodes
    with u + μ > 0) − 1 positive eigenvalues (Sylvester's law of inertia on a subspace of
    codimension 1), one of which may be the zero mode; likewise for the negative branch.
    """
    n_pos, n_neg = (int(c) for c in np.asarray(counts))
    available = {"positive": n_pos - 2}
    if negative:
        available["negative"] = n_neg - 2
    for branch, count in available.items():
        if n_eigen > count:
            raise ValueError(
                f"n_eigen must be <= {count}, the eigenvalues of the {branch} branch on this "
                f"grid (degree={degree}, layers={layers}), got {n_eigen}"
            )


def _discretise(eps, delta, u, profile, mesh_profile, degree, layers) -> _Operators:
    bounds = _mesh(eps, delta, u, mesh_profile, layers)
    return _operators(bounds, eps, delta, u, profile, degree)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7, 8))
def _solve(eps, delta, u, profile, n_eigen, negative, degree, layers, mesh_profile):
    ops = _discretise(eps, delta, u, profile, mesh_profile, degree, layers)
    lam, psi = _eigenpairs(ops.g, ops.w, ops.m, n_eigen, (1, -1) if negative else (1,))
    counts = jnp.stack([jnp.sum(ops.w > 0), jnp.sum(ops.w < 0)])  # nodes on each branch's side
    if negative:
        return EigenSolution(lam[:n_eigen], psi[:n_eigen], ops.mu, ops.m, lam[n_eigen:],
                             psi[n_eigen:], degree), counts
    return EigenSolution(lam, psi, ops.mu, ops.m, None, None, degree), counts


def solve(
    eps,
    delta,
    u=0.0,
    profile: str = "matched",
    n_eigen: int = 3,
    negative: bool = False,
    *,
    degree: int = DEFAULT_DEGREE,
    layers: int = DEFAULT_LAYERS,
    mesh_profile: str | None = None,
) -> EigenSolution:
    """First eigenpairs of beam paper eq. (8) (float64 required: enable ``jax_enable_x64``).

    Args:
        eps: ``ε = r_g / l``, scalar in [``EPS_MIN``, ``EPS_MAX``] = [1e-10, 0.02] (every
            profile: the mesh follows the peak edge).
        delta: ``δ = V_A / c``, scalar in [0, 1) ((0, 1) for ``gs``).
        u: bulk speed of the scattering centres in units of c, scalar, ``|u| < 1``.
        profile: one of :data:`PROFILES` (see :func:`scattering_profile`).
        n_eigen: number of eigenpairs per branch, at most the eigenvalues the grid holds on
            that branch (about half its nodes; more is refused, never padded).
        negative: also return the negative branch.
        degree: odd polynomial degree of the elements (≥ 3).
        layers: elements per graded outer segment (the peaks get ``layers // 2`` per half).
        mesh_profile: profile whose peak edge places the mesh (default ``profile``); used to
            compare profiles on one grid.

    Returns:
        :class:`EigenSolution`. ``(ε, δ, u)`` may be traced (``jit``/``vmap``/``grad``); the
        derivatives are implicit (Hellmann–Feynman and a bordered solve for Ψ).

    Raises:
        ValueError: naming the parameter, for values out of range, non-finite or unknown; and
            (concrete inputs) when the eigenpairs come out non-finite.
    """
    eps, delta, u = _check(eps, delta, u, profile, n_eigen, degree, layers)
    if mesh_profile is not None:
        _validate.one_of("mesh_profile", mesh_profile, PROFILES)
    mesh_profile = mesh_profile or profile
    concrete = all(_validate._concrete(v) for v in (eps, delta, u))
    sol, counts = _solve(eps, delta, u, profile, n_eigen, bool(negative), degree, layers,
                         mesh_profile)
    if concrete:  # a request beyond the grid would come back padded with repeats
        _check_available(counts, n_eigen, negative, degree, layers)
    if concrete and not all(
        np.all(np.isfinite(np.asarray(a))) for a in (sol.lambdas, sol.psi, sol.neg_lambdas)
        if a is not None
    ):
        raise ValueError(
            f"the eigenpairs are not finite for eps={eps!r}, delta={delta!r}, u={u!r}, "
            f"profile={profile!r}: outside the solver's validated domain"
        )
    return sol
