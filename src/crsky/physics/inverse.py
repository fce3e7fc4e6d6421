"""The inverse problem: infer one realisation of the local turbulent field from a sky map.

The relative-diffusion paper (Ahlers & Mertsch) closes on an open question: the small-scale
anisotropy encodes the particular realisation of the turbulence around the observer, and could be
read back if the map → field inversion were tractable. Every step of crsky's forward chain is
differentiable, so the inversion can be posed as a fit:

    θ (field coefficients) → Modes → Boris back-tracking to τ = TΩ → δI(n̂) (eq. (2.1)) → data.

**Parametrisation.** Fixed wave vectors ``k_n`` (n = 1…N) with free Fourier coefficients,

    δB(x) = Σ_n [(a_n e1_n + b_n e2_n) cos(k_n·x) + (c_n e1_n + d_n e2_n) sin(k_n·x)],

with ``e1_n, e2_n`` an orthonormal pair ⊥ ``k̂_n``. Why this form:

- ∇·B = 0 holds by construction for every θ (each term is ⊥ its ``k_n``);
- the field is *linear* in θ (no phase ambiguity as with β_n ∈ [0, 2π)), so a Gaussian prior on θ
  is the Gaussian random field of the turbulence spectrum, and near T → 0 the whole forward map
  is close to linear, where the Fisher matrix tells exactly what is identifiable;
- any plane-wave realisation δB_n cos(k_n·x + β_n) (:class:`crsky.physics.turbulence.Modes`,
  also those stored in run files) is represented exactly by :func:`basis_from_modes`;
- the k_n can be restricted to the band that a map can constrain (below).

**What the map can constrain.** A CR back-tracked for τ = TΩ travels ``r_L τ``; field structure on
scales ≫ r_L τ is uniform along the path (it only tilts the local B, one vector), structure on
scales ≪ r_L is gyro-averaged, so the data constrain k in roughly ``1/(r_L τ) ≲ k ≲ 1/r_L``.
:func:`fisher_matrix` measures this: :func:`identifiable_directions` counts the directions of θ
that a map with a given event number pins down better than the prior (docs/inverse_problem.md,
"What a map can constrain").

**Noise.** A map from ``events`` CRs with ``events/Npix`` expected per pixel gives a relative
intensity with Gaussian per-pixel error σ_pix = (Npix/events)^{1/2} (Poisson counts, to
leading order in δI); :func:`pixel_sigma`. Observatories measure the map relative to its own
mean, so the monopole is removed from data and model alike (:func:`predict`).

Units as in the package: lengths in Lc, k in 1/Lc, fields in B0, gradients in 1/Lc, K in Lc·c.
Everything here is pure and jit/vmap/grad-able; the fits need float64 (``jax_enable_x64``).
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Float

from crsky import _validate
from crsky.physics import sky, spectra
from crsky.physics.observatory import remove_ring_mean
from crsky.physics.tracing import backtrack, healpix_directions, propagate
from crsky.physics.turbulence import Modes, check_modes, magnetic_field

COEFFICIENTS = ("cos_e1", "cos_e2", "sin_e1", "sin_e2")
"""Names of the four coefficients per wave vector, the last axis of ``FieldParams.coefficients``."""


class FieldBasis(eqx.Module):
    """Fixed wave vectors and polarisation pairs of the parametrised field (a pytree).

    Attributes:
        k: wave vectors k_n, shape (N, 3), units 1/Lc.
        e1, e2: orthonormal unit vectors ⊥ k̂_n, shape (N, 3).
    """

    k: Float[Array, "n 3"]
    e1: Float[Array, "n 3"]
    e2: Float[Array, "n 3"]


class FieldParams(eqx.Module):
    """The unknowns: Fourier coefficients of δB and the CR density gradient (a pytree).

    Attributes:
        coefficients: (N, 4) coefficients in units of B0, ordered as :data:`COEFFICIENTS`.
        gradient: g = ∇n/n, shape (3,), units 1/Lc.
    """

    coefficients: Float[Array, "n 4"]
    gradient: Float[Array, "3"]


class InverseProblem(eqx.Module):
    """Everything of the forward map that is not fitted (a pytree; times and step are static).

    Attributes:
        basis: the fixed wave vectors (:class:`FieldBasis`).
        directions: arrival directions n̂ (HEALPix RING pixel centres), shape (Npix, 3).
        r_larmor: Larmor radius in Lc.
        K: diffusion tensor of the Liouville map (rel.-diffusion paper eq. (2.1)), Lc·c, (3, 3).
        t_omega: back-tracking times τ = TΩ of the maps (static tuple, increasing, > 0).
        dt: Boris step in 1/Ω (static).
        background: waves of the field that are held fixed (known, not fitted), or None; e.g.
            the scales of a run-file realisation outside the fitted band.
        observation: the linear map from a whole-sky δI to what is observed, (n_obs, Npix), or
            None for a whole sky relative to its own mean (the monopole removed); see
            :func:`make_problem`'s ``field_of_view`` and :func:`observe`.
    """

    basis: FieldBasis
    directions: Float[Array, "npix 3"]
    r_larmor: Float[Array, ""]
    K: Float[Array, "3 3"]
    t_omega: tuple[float, ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    background: Modes | None = None
    observation: Float[Array, "nobs npix"] | None = None


def _perpendicular_pair(k: Float[Array, "n 3"]) -> tuple[jax.Array, jax.Array]:
    """Orthonormal e1, e2 ⊥ k̂ (spherical-angle basis: e1 = θ̂, e2 = φ̂ of k̂; x̂-based at poles)."""
    k_hat = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
    # reference axis ẑ, or x̂ where k̂ is within ~0.1 rad of ±ẑ
    ref = jnp.where(jnp.abs(k_hat[:, 2:3]) > 0.995, jnp.array([1.0, 0.0, 0.0]),
                    jnp.array([0.0, 0.0, 1.0])).astype(k.dtype)
    e2 = jnp.cross(ref, k_hat)
    e2 = e2 / jnp.linalg.norm(e2, axis=-1, keepdims=True)
    e1 = jnp.cross(e2, k_hat)
    return e1, e2


def make_basis(
    key: jax.Array, n_modes: int, k_min: float, k_max: float, dtype=jnp.float64
) -> FieldBasis:
    """N wave vectors with isotropic random directions and |k_n| log-spaced in [k_min, k_max].

    Args:
        key: PRNG key of the directions.
        n_modes: number of wave vectors N (4N real unknowns).
        k_min, k_max: band of wave numbers, 1/Lc (e.g. around the gyro-resonance k r_L ~ 1).
        dtype: float dtype of the arrays.
    """
    _validate.positive_int("n_modes", n_modes)
    _validate.positive("k_min", k_min)
    _validate.positive("k_max", k_max)
    if float(k_min) > float(k_max):
        raise ValueError(f"k_min ({k_min}) must be <= k_max ({k_max})")
    k_abs = jnp.geomspace(k_min, k_max, n_modes).astype(dtype)
    # isotropic k̂: cos θ uniform in [-1, 1], φ uniform in [0, 2π) (as in sample_modes)
    u = jax.random.uniform(key, (n_modes, 2), dtype)
    cos_t, phi = 2 * u[:, 0] - 1, 2 * jnp.pi * u[:, 1]
    sin_t = jnp.sqrt(1 - cos_t**2)
    k = k_abs[:, None] * jnp.stack([sin_t * jnp.cos(phi), sin_t * jnp.sin(phi), cos_t], -1)
    return FieldBasis(k, *_perpendicular_pair(k))


def basis_from_modes(modes: Modes) -> tuple[FieldBasis, Float[Array, "n 4"]]:
    """The exact representation of one plane-wave realisation in this parametrisation.

    δB_n cos(k_n·x + β_n) = δB_n cos β_n cos(k_n·x) − δB_n sin β_n sin(k_n·x), and δB_n ⊥ k_n
    lies in span(e1_n, e2_n). Returns the basis and the (N, 4) true coefficients.
    """
    check_modes(modes)
    if modes.k.ndim != 2:
        raise ValueError(
            f"modes must hold one realisation (k of shape (N, 3)), got {modes.k.shape}"
        )
    e1, e2 = _perpendicular_pair(modes.k)
    a1 = jnp.sum(modes.amplitude * e1, -1)
    a2 = jnp.sum(modes.amplitude * e2, -1)
    c, s = jnp.cos(modes.phase), jnp.sin(modes.phase)
    coefficients = jnp.stack([a1 * c, a2 * c, -a1 * s, -a2 * s], axis=-1)
    return FieldBasis(modes.k, e1, e2), coefficients


def to_modes(basis: FieldBasis, coefficients: Float[Array, "n 4"]) -> Modes:
    """The field as 2N plane waves (:class:`Modes`): the cos parts with β = 0, the sin parts with
    β = −π/2 (cos(k·x − π/2) = sin(k·x)); linear in ``coefficients``."""
    c = coefficients
    cos_amp = c[:, 0:1] * basis.e1 + c[:, 1:2] * basis.e2
    sin_amp = c[:, 2:3] * basis.e1 + c[:, 3:4] * basis.e2
    n = basis.k.shape[0]
    phase = jnp.concatenate([jnp.zeros(n, c.dtype), jnp.full(n, -jnp.pi / 2, c.dtype)])
    return Modes(
        k=jnp.concatenate([basis.k, basis.k]),
        amplitude=jnp.concatenate([cos_amp, sin_amp]),
        phase=phase,
    )


def make_problem(
    basis: FieldBasis, nside: int, t_omega, r_larmor: float, K, dt: float,
    background: Modes | None = None, *, frame=None, field_of_view=None,
) -> InverseProblem:
    """An :class:`InverseProblem` on the HEALPix pixel centres of ``nside`` (RING order).

    Args:
        basis, t_omega, r_larmor, K, dt, background: as the attributes of
            :class:`InverseProblem`.
        nside: HEALPix resolution of the maps.
        frame: rotation R (3, 3) from the simulation frame (B0 along ẑ) to the frame of the
            map's pixels, e.g. equatorial (:func:`crsky.physics.observatory.simulation_frame`);
            pixel n̂ is back-tracked from Rᵀ n̂. Default: the simulation frame.
        field_of_view: boolean mask (Npix,) of the pixels an experiment sees (in the map's
            frame, e.g. :func:`crsky.physics.observatory.field_of_view`). The observed map is
            then what a data-driven reference map leaves: inside the field of view each ring's
            right-ascension mean removed (:func:`crsky.physics.observatory.remove_ring_mean`,
            first order in δI), one value per pixel in view. Default: the whole sky, monopole
            removed.

    Raises ``ValueError`` naming the first bad argument (nside, t_omega, r_larmor, K, dt, frame,
    field_of_view).
    """
    if background is not None:
        check_modes(background)
    _validate.power_of_two("nside", nside)
    times = tuple(float(t) for t in np.atleast_1d(np.asarray(t_omega, dtype=float)))
    _validate.increasing("t_omega", np.asarray(times))
    _validate.positive("r_larmor", r_larmor)
    _validate.positive("dt", dt)
    K = jnp.asarray(K, basis.k.dtype)
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {K.shape}")
    _validate.finite("K", K)
    npix = 12 * nside**2
    if field_of_view is not None:
        mask = np.asarray(field_of_view)
        if mask.shape != (npix,) or mask.dtype != bool or not mask.any():
            raise ValueError(f"field_of_view must be a non-empty boolean mask of shape ({npix},)")
        # the dense operator: the identity, its observed image and the kept rows, float64
        _validate.fits_in_memory(f"nside={nside} with field_of_view", 3 * 8 * npix**2,
                                 "the observation operator (Npix x Npix)")
    directions = healpix_directions(nside, basis.k.dtype)
    if frame is not None:
        frame = np.asarray(frame, dtype=float)
        if frame.shape != (3, 3) or not np.allclose(frame @ frame.T, np.eye(3), atol=1e-10) \
                or np.linalg.det(frame) < 0:
            raise ValueError("frame must be a rotation matrix (3, 3): orthonormal, det +1")
        directions = directions @ jnp.asarray(frame, basis.k.dtype)  # rows Rᵀ n̂
    observation = None
    if field_of_view is not None:
        # row p: the observed value at pixel p in view, as a linear function of the whole map
        eye = jnp.eye(npix, dtype=basis.k.dtype)
        observation = remove_ring_mean(eye, mask, nside).T[mask]
    return InverseProblem(
        basis=basis,
        directions=directions,
        r_larmor=jnp.asarray(r_larmor, basis.k.dtype),
        K=K,
        t_omega=times,
        dt=float(dt),
        background=background,
        observation=observation,
    )


def observe(problem: InverseProblem, maps) -> Array:
    """What is observed of whole-sky maps ``maps`` (..., Npix): the values in the field of view
    with each ring's mean removed, (..., n_obs), or, for the whole sky, the maps relative to
    their own mean (a measured map's monopole is not observed)."""
    if problem.observation is None:
        return maps - jnp.mean(maps, axis=-1, keepdims=True)
    return maps @ problem.observation.T


def observed_pixels(problem: InverseProblem) -> int:
    """Number of observed values per map: Npix, or the pixels in the field of view."""
    if problem.observation is None:
        return problem.directions.shape[0]
    return problem.observation.shape[0]


def with_times(problem: InverseProblem, t_omega) -> InverseProblem:
    """The same problem with maps at other back-tracking times (for continuation in T)."""
    times = tuple(float(t) for t in np.atleast_1d(np.asarray(t_omega, dtype=float)))
    _validate.increasing("t_omega", np.asarray(times))
    return dataclasses.replace(problem, t_omega=times)


def field_modes(problem: InverseProblem, coefficients: Float[Array, "n 4"]) -> Modes:
    """The whole turbulent field of ``coefficients``: the fitted waves (:func:`to_modes`) followed
    by the problem's fixed background waves, if any."""
    modes = to_modes(problem.basis, coefficients)
    if problem.background is not None:
        modes = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), modes, problem.background)
    return modes


def predict(problem: InverseProblem, params: FieldParams) -> Float[Array, "n_times nobs"]:
    """Model maps δI(n̂) at the problem's times as observed (:func:`observe`), shape
    (n_times, n_obs): the whole sky with its monopole removed (n_obs = Npix), or the field of
    view with its ring means removed."""
    modes = field_modes(problem, params.coefficients)
    traj = backtrack(
        modes, problem.directions, np.asarray(problem.t_omega), problem.r_larmor,
        solver="boris", dt=problem.dt,
    )
    # Rel.-diffusion paper eq. (2.1): dI = (r(-T) - 3 p(-T) K) . grad n / n
    d_intensity = sky.relative_intensity(traj.r, traj.p, params.gradient, problem.K)
    return observe(problem, d_intensity)


class FieldAlongPaths(eqx.Module):
    """The true and a recovered field sampled along back-tracked paths (:func:`field_along_paths`).

    Attributes:
        t_omega: back-tracking times τ = tΩ of the samples, shape (n_t,).
        r: positions r(−τ) of the paths through the true field, shape (n_t, M, 3), units Lc.
        b_true, b_recovered: total field B/B0 = ẑ + δB/B0 of the true and the recovered
            coefficients at those positions, shape (n_t, M, 3).
    """

    t_omega: Float[Array, " n_t"]
    r: Float[Array, "n_t m 3"]
    b_true: Float[Array, "n_t m 3"]
    b_recovered: Float[Array, "n_t m 3"]


def field_along_paths(
    problem: InverseProblem, truth: FieldParams, recovered: FieldParams, pixels, t_omega
) -> FieldAlongPaths:
    """Where along the data's own paths is the recovered field right?

    The CRs arriving in HEALPix pixels ``pixels`` are back-tracked through the **true** field
    (Boris, the problem's dt and r_L) to the times ``t_omega``, and both the true and the
    recovered field (fitted waves plus the fixed background) are evaluated at the same positions.
    The paths of the recovered field are not used: at the positions the data probed the two
    fields can be compared point by point.

    Args:
        problem: the forward map (basis, directions, r_L, dt, background).
        truth, recovered: the true and the fitted :class:`FieldParams` (coefficients used).
        pixels: indices of the arrival pixels (RING), shape (M,).
        t_omega: sample times τ = tΩ, increasing, > 0.
    """
    npix = problem.directions.shape[0]
    pixels = np.atleast_1d(np.asarray(pixels))
    if pixels.ndim != 1 or pixels.size == 0 or not np.issubdtype(pixels.dtype, np.integer):
        raise ValueError(f"pixels must be a non-empty 1-d array of integers, got {pixels!r}")
    if pixels.min() < 0 or pixels.max() >= npix:
        raise ValueError(f"pixels must lie in [0, {npix}), got {pixels.tolist()}")
    times = np.atleast_1d(np.asarray(t_omega, dtype=float))
    _validate.increasing("t_omega", times)
    true_modes = field_modes(problem, truth.coefficients)
    traj = backtrack(
        true_modes, problem.directions[pixels], times, problem.r_larmor, solver="boris",
        dt=problem.dt,
    )
    # B/B0 = ẑ + δB/B0 (docs/physics.md (R1)) of either field at the true paths' positions
    return FieldAlongPaths(
        t_omega=traj.t_omega,
        r=traj.r,
        b_true=magnetic_field(true_modes, traj.r),
        b_recovered=magnetic_field(field_modes(problem, recovered.coefficients), traj.r),
    )


def pixel_sigma(events: float, npix: int) -> float:
    """Per-pixel error of a relative-intensity map from ``events`` CRs over ``npix`` pixels.

    Counts n_p ~ Poisson(μ(1 + δI_p)), μ = events/npix, estimate δI_p = n_p/μ − 1: variance
    (1 + δI_p)/μ ≈ npix/events to leading order in δI.
    """
    _validate.positive("events", events)
    _validate.positive_int("npix", npix)
    return float(np.sqrt(npix / events))


def mock_data(
    key: jax.Array, problem: InverseProblem, truth: FieldParams, events: float | None
) -> tuple[jax.Array, jax.Array]:
    """A mock observed map: the true prediction plus Gaussian shot noise of ``events`` CRs in
    the observed pixels (noise-free for ``events=None``, with unit weights). Returns (data,
    sigma), each (n_times, n_obs); the noise is observed like the signal (its monopole, or its
    ring means, removed)."""
    clean = predict(problem, truth)
    if events is None:
        return clean, jnp.ones_like(clean)
    s = pixel_sigma(events, observed_pixels(problem))
    shape = (len(problem.t_omega), problem.directions.shape[0])
    noise = s * jax.random.normal(key, shape, clean.dtype)
    return clean + observe(problem, noise), jnp.full_like(clean, s)


def beam_operator(nside: int, fwhm: float, dtype=jnp.float64) -> Float[Array, "npix npix"]:
    """Linear operator S (Npix, Npix) of a Gaussian beam of full width ``fwhm`` (radians):
    ``S m = alm2map(b_ℓ map2alm(m))``, b_ℓ = exp(−ℓ(ℓ+1)σ_b²/2), σ_b = fwhm/√(8 ln 2), by the
    JAX spherical-harmonic transform (ℓ ≤ 3 nside − 1). ``fwhm = 0`` gives the band-limited
    identity."""
    _validate.power_of_two("nside", nside)
    _validate.non_negative("fwhm", fwhm)
    plan = spectra.make_plan(nside, 3 * nside - 1)
    eye = jnp.eye(12 * nside**2, dtype=dtype)
    alm = spectra.map2alm(eye, plan.lmax, method="jax", plan=plan)
    sigma_b = fwhm / np.sqrt(8 * np.log(2))
    ell = np.asarray(plan.alm_l)
    # Gaussian beam transfer function b_l = exp(-l(l+1) sigma_b^2 / 2)
    b = np.exp(-ell * (ell + 1) * sigma_b**2 / 2)
    smoothed = spectra.alm2map(alm * b, plan)  # row i: smoothed i-th unit map
    return jnp.asarray(smoothed.T, dtype)


def residuals(
    problem: InverseProblem, params: FieldParams, data, sigma, smoothing=None
) -> Float[Array, "n_times npix"]:
    """Normalised residuals (model − data)/σ; with a beam operator ``smoothing`` both maps are
    smoothed first (a smoother likelihood for the early stages of a fit)."""
    r = predict(problem, params) - data
    if smoothing is not None:
        r = r @ smoothing.T
    return r / sigma


def log_prior(coefficients, prior_scale) -> Float[Array, ""]:
    """Gaussian prior of the turbulence: each coefficient ~ N(0, s_n²), s_n = ``prior_scale``
    (N,) in B0 (up to a constant). ``prior_scale=None``: flat prior (0)."""
    if prior_scale is None:
        return jnp.zeros((), coefficients.dtype)
    return -0.5 * jnp.sum((coefficients / prior_scale[:, None]) ** 2)


def prior_scale_for(n_modes: int, sigma: float) -> np.ndarray:
    """Per-coefficient prior scale s_n = σ/√(2N) for N modes sharing ⟨δB²⟩ = σ²B0² equally.

    The spatial mean of δB² is Σ_n (|A_n|² + |B_n|²)/2 with A_n, B_n the cos and sin vectors
    (2 coefficients each), so its expectation is 2N s² = σ².
    """
    _validate.positive_int("n_modes", n_modes)
    _validate.positive("sigma", sigma)
    return np.full(n_modes, sigma / np.sqrt(2 * n_modes))


def negative_log_posterior(
    problem: InverseProblem, params: FieldParams, data, sigma, prior_scale=None, smoothing=None
) -> Float[Array, ""]:
    """−ln posterior (up to a constant): ½ Σ residuals² − :func:`log_prior`."""
    r = residuals(problem, params, data, sigma, smoothing)
    return 0.5 * jnp.sum(r**2) - log_prior(params.coefficients, prior_scale)


def _unflatten(theta, template: FieldParams, free_gradient: bool) -> FieldParams:
    n = template.coefficients.size
    coefficients = theta[:n].reshape(template.coefficients.shape)
    gradient = theta[n:] if free_gradient else template.gradient
    return FieldParams(coefficients, gradient)


def flatten(params: FieldParams, free_gradient: bool) -> Array:
    """θ as one vector: the coefficients (row-major), then the gradient if it is free."""
    parts = [params.coefficients.ravel()]
    if free_gradient:
        parts.append(params.gradient)
    return jnp.concatenate(parts)


def jacobian(problem: InverseProblem, params: FieldParams, free_gradient: bool = False):
    """J = ∂δI/∂θ, shape (n_times·n_obs, P), rows in the order of ``predict(...).ravel()``.

    Pixel by pixel: the intensity of a pixel depends on θ only through its own trajectory, so J
    is reverse-mode AD through one back-tracking per pixel (n_times cotangents each), vmapped
    over the pixels, and the monopole is removed from J as :func:`predict` removes it from the
    maps. This costs about 1/Npix of reverse mode through the whole map (every row of which
    back-propagates through all Npix trajectories); forward mode is not available (diffrax's
    checkpointed adjoint). The observation (:func:`observe`) is applied to J as to the maps.
    """
    theta = flatten(params, free_gradient)
    times = np.asarray(problem.t_omega)

    def pixel_intensity(t, n_hat):
        p = _unflatten(t, params, free_gradient)
        traj = backtrack(
            field_modes(problem, p.coefficients), n_hat[None], times, problem.r_larmor,
            solver="boris", dt=problem.dt,
        )
        # Rel.-diffusion paper eq. (2.1): dI = (r(-T) - 3 p(-T) K) . grad n / n, as
        # sky.relative_intensity (which wants a whole HEALPix map) for one pixel
        c = sky.liouville_coefficients(p.gradient, problem.K)
        return jnp.concatenate([traj.r, traj.p], axis=-1)[:, 0] @ c

    J = jax.vmap(jax.jacrev(pixel_intensity), in_axes=(None, 0))(theta, problem.directions)
    J = jnp.moveaxis(J, 0, -1)  # (n_times, P, Npix)
    # what is observed of every column, as predict observes the maps
    J = jnp.moveaxis(observe(problem, J), -1, 1)  # (n_times, n_obs, P)
    return J.reshape(-1, theta.size)


def fisher_matrix(
    problem: InverseProblem, params: FieldParams, sigma, free_gradient: bool = False
) -> Float[Array, "n_params n_params"]:
    """Fisher information F = Jᵀ Σ⁻¹ J of the Gaussian likelihood at ``params`` (P, P)."""
    J = jacobian(problem, params, free_gradient)
    shape = (len(problem.t_omega), observed_pixels(problem))
    w = 1 / jnp.ravel(jnp.broadcast_to(jnp.asarray(sigma), shape)) ** 2
    return J.T @ (w[:, None] * J)


def laplace_covariance(
    problem: InverseProblem, params: FieldParams, sigma, prior_scale=None,
    free_gradient: bool = False,
) -> Float[Array, "n_params n_params"]:
    """Posterior covariance of θ by Laplace's approximation at the MAP ``params``: the inverse
    of the Gauss–Newton Hessian F + prior precision (exact for a linear forward map)."""
    F = fisher_matrix(problem, params, sigma, free_gradient)
    if prior_scale is not None:
        F = F + jnp.diag(prior_precision(prior_scale, free_gradient))
    return jnp.linalg.pinv(F, hermitian=True)


def prior_precision(prior_scale, free_gradient: bool = False) -> Float[Array, " n_params"]:
    """Diagonal of the prior precision of θ (:func:`flatten` order): 1/s_n² for each of the four
    coefficients of wave n, and 0 (flat prior) for the gradient if it is free."""
    precision = jnp.repeat(1 / jnp.asarray(prior_scale) ** 2, 4)
    if free_gradient:
        precision = jnp.concatenate([precision, jnp.zeros(3, precision.dtype)])
    return precision


class Identifiability(eqx.Module):
    """Data-dominated directions of θ (:func:`identifiable_directions`).

    Attributes:
        count: number of directions whose information ratio exceeds the threshold.
        ratio: information ratios λ_i (Fisher over prior information), descending, shape (P,).
        directions: the matching directions in θ as columns, shape (P, P), unit norm; they are
            orthogonal in the prior metric (v_iᵀ Λ v_j = 0 for i ≠ j, Λ the prior precision).
    """

    count: Array
    ratio: Float[Array, " n_params"]
    directions: Float[Array, "n_params n_params"]


def identifiable_directions(fisher, prior_precision, threshold: float = 1.0) -> Identifiability:
    """How many directions of θ a map constrains better than the prior does.

    With a Gaussian prior of (diagonal) precision Λ the posterior precision is F + Λ. In the
    prior-whitened coordinates u = Λ^{1/2} θ the prior is the unit matrix and the data add
    F̃ = Λ^{-1/2} F Λ^{-1/2}; along an eigenvector of F̃ with eigenvalue λ_i (the generalised
    eigenproblem F v = λ Λ v) the posterior variance is 1/(1 + λ_i) of the prior's. A direction
    is **data-dominated** when λ_i > ``threshold``: with the default 1 the data carry more
    information than the prior, i.e. the posterior variance is less than half the prior's. For
    an isotropic prior (Λ = 1/s² everywhere, as :func:`prior_scale_for`) λ_i = s² × (the
    Fisher eigenvalues), so the criterion is "Fisher eigenvalue > prior precision 1/s²".
    The criterion is that of a linear-Gaussian model: it holds where the forward map is close to
    linear over the posterior width.

    Args:
        fisher: Fisher matrix F (P, P), symmetric positive semi-definite (:func:`fisher_matrix`).
        prior_precision: Λ, a positive scalar (isotropic prior) or the (P,) diagonal
            (:func:`prior_precision`); must be > 0 (a flat direction has no prior to compare).
        threshold: information ratio above which a direction counts, > 0.

    Returns:
        :class:`Identifiability` (count, ratios descending, directions in θ as columns).
    """
    fisher = jnp.asarray(fisher)
    if fisher.ndim != 2 or fisher.shape[0] != fisher.shape[1]:
        raise ValueError(f"fisher must be a square (P, P) matrix, got shape {fisher.shape}")
    _validate.finite("fisher", fisher)
    _validate.positive("prior_precision", prior_precision)
    _validate.positive("threshold", threshold)
    precision = jnp.asarray(prior_precision, fisher.dtype)
    if precision.ndim == 0:
        precision = jnp.broadcast_to(precision, fisher.shape[:1])
    if precision.shape != fisher.shape[:1]:
        raise ValueError(
            f"prior_precision must be a scalar or of shape ({fisher.shape[0]},), got "
            f"{precision.shape}"
        )
    inv_sqrt = 1 / jnp.sqrt(precision)
    whitened = inv_sqrt[:, None] * fisher * inv_sqrt[None, :]
    # symmetrise against rounding, then F v = λ Λ v via the whitened eigenproblem
    ratio, u = jnp.linalg.eigh(0.5 * (whitened + whitened.T))
    ratio, u = ratio[::-1], u[:, ::-1]
    vectors = inv_sqrt[:, None] * u
    vectors = vectors / jnp.linalg.norm(vectors, axis=0, keepdims=True)
    return Identifiability(count=jnp.sum(ratio > threshold), ratio=ratio, directions=vectors)


@dataclasses.dataclass(frozen=True)
class Shooting:
    """Settings of multiple shooting, a mitigation of chaos for :func:`fit`.

    Every trajectory is cut at node times τ_j (multiples of ``segment`` and every data time
    before the last); the states at the nodes become unknowns next to θ, and each segment is
    integrated from its own node. Generalised Gauss–Newton with condensing (Bock's multiple
    shooting, as applied to chaotic data by Baake, Baake, Bock & Briggs, Phys. Rev. A 45, 5524
    (1992); :func:`shooting_step`) linearises every segment separately and enforces the
    linearised continuity exactly, so the iterates may be discontinuous paths whose jumps close
    as they converge: no derivative passes through more than one segment of the chaotic flow.
    The steps are full (relaxed: no line search, which would hold the iterates to the
    neighbourhood of continuous paths, where single shooting's local minima are); the iterate
    of lowest merit (:func:`shooting_objective`) starts the final BFGS fit to the exact
    (single-shooting) posterior.

    Attributes:
        segment: the longest segment, in tΩ (> 0).
        iterations: Gauss–Newton iterations (≥ 1).
        weight: weight μ of the jumps in the merit that picks the iterate (> 0): a jump of one
            r_L in position or of 1 in p̂ costs μ/2, as much as a map residual of √μ σ_pix.
    """

    segment: float = 2.0
    iterations: int = 60
    weight: float = 1e6

    def __post_init__(self):
        _validate.positive("segment", self.segment)
        _validate.positive_int("iterations", self.iterations)
        _validate.positive("weight", self.weight)


def shooting_nodes(t_omega, segment: float) -> tuple[float, ...]:
    """Node times of multiple shooting: the data times before the last one, and the multiples
    of ``segment`` below the last time that are not within ``segment/4`` of a data time."""
    times = np.atleast_1d(np.asarray(t_omega, dtype=float))
    _validate.increasing("t_omega", times)
    _validate.positive("segment", segment)
    grid = segment * np.arange(1, int(np.ceil(times[-1] / segment)))
    grid = grid[grid < times[-1] - segment / 4]
    grid = [t for t in grid if np.min(np.abs(times - t)) >= segment / 4]
    return tuple(float(t) for t in np.union1d(grid, times[:-1]))


def shooting_states(problem: InverseProblem, params: FieldParams, nodes) -> Array:
    """States of the back-tracked paths of ``params`` at the ``nodes``, shape (J, Npix, 6):
    position in units of r_L, then p̂ (the unknowns of multiple shooting, continuous)."""
    traj = backtrack(
        field_modes(problem, params.coefficients), problem.directions, np.asarray(nodes),
        problem.r_larmor, solver="boris", dt=problem.dt,
    )
    return jnp.concatenate([traj.r / problem.r_larmor, traj.p], axis=-1)


def _segment(problem: InverseProblem, coefficients, states, duration: float):
    """States (M, 6) (position/r_L, p̂ normalised here) after back-tracking for ``duration``."""
    r_l = problem.r_larmor
    p0 = states[..., 3:] / jnp.linalg.norm(states[..., 3:], axis=-1, keepdims=True)
    traj = propagate(field_modes(problem, coefficients), states[..., :3] * r_l, p0,
                     [duration], r_l, dt=problem.dt)
    return jnp.concatenate([traj.r[-1] / r_l, traj.p[-1]], axis=-1)


def _segment_starts(problem: InverseProblem, states):
    """The start state of every segment: the observer (origin, p̂ = −n̂), then the nodes."""
    npix = problem.directions.shape[0]
    observer = jnp.concatenate([jnp.zeros((npix, 3), states.dtype),
                                -problem.directions.astype(states.dtype)], axis=-1)
    return jnp.concatenate([observer[None], states])


def _map_residuals(problem: InverseProblem, params: FieldParams, at_times, data, sigma):
    """(model − data)/σ of the maps of states ``at_times`` (n_times, Npix, 6)."""
    p = at_times[..., 3:] / jnp.linalg.norm(at_times[..., 3:], axis=-1, keepdims=True)
    # Rel.-diffusion paper eq. (2.1): dI = (r(-T) - 3 p(-T) K) . grad n / n, as observed
    d_intensity = sky.relative_intensity(at_times[..., :3] * problem.r_larmor, p,
                                         params.gradient, problem.K)
    return (observe(problem, d_intensity) - data) / sigma


def _data_rows(problem: InverseProblem, nodes) -> list[int]:
    """Index of every data time but the last among the nodes."""
    return [nodes.index(t) for t in problem.t_omega[:-1]]


def shooting_objective(
    problem: InverseProblem, params: FieldParams, states, data, sigma, nodes, penalty,
    prior_scale=None,
) -> Float[Array, ""]:
    """Merit function of multiple shooting: −ln posterior plus a penalty on the jumps.

    Segment j runs from node τ_j (τ_0 = 0, the observer with p̂ = −n̂) to τ_{j+1} (the last one
    to the final data time) from the state ``states[j − 1]``. The maps at the data times before
    the last are predicted from the node states, the last from the end of the last segment
    (eq. (2.1) of the rel.-diffusion paper, monopole removed as in :func:`predict`). The value
    is ½ Σ ((model − data)/σ)² − :func:`log_prior` + (μ/2) Σ jumps², the jumps between each
    segment's end and the next node in units of r_L (position) and 1 (p̂). With states on the
    paths of ``params`` (:func:`shooting_states`) the jumps vanish and it equals
    :func:`negative_log_posterior`.

    Args:
        problem, params, data, sigma, prior_scale: as for :func:`negative_log_posterior`.
        states: node states, shape (J, Npix, 6), J = len(nodes).
        nodes: node times (static; :func:`shooting_nodes`).
        penalty: weight μ of the jumps.
    """
    bounds = (0.0, *nodes, problem.t_omega[-1])
    starts = _segment_starts(problem, states)
    ends = [_segment(problem, params.coefficients, starts[j], bounds[j + 1] - bounds[j])
            for j in range(len(bounds) - 1)]
    at_times = jnp.concatenate([states[np.asarray(_data_rows(problem, nodes), int)],
                                ends[-1][None]])
    chi2 = jnp.sum(_map_residuals(problem, params, at_times, data, sigma) ** 2)
    jumps = jnp.sum((jnp.stack(ends[:-1]) - states) ** 2) if nodes else 0.0
    return 0.5 * chi2 - log_prior(params.coefficients, prior_scale) + 0.5 * penalty * jumps


def shooting_step(
    problem: InverseProblem, theta, template: FieldParams, states, data, sigma, nodes,
    prior_scale=None, damping=0.0, free_gradient: bool = False,
):
    """One generalised Gauss–Newton step of multiple shooting, by condensing.

    Each segment j is linearised at its own start: its end moves by G_j Δy_j + H_j Δθ
    (G_j = ∂end/∂start per path, 6×6; H_j = ∂end/∂θ, 6×P; reverse-mode AD through that segment
    only). Requiring the linearised paths to be continuous fixes every node's step as an affine
    function of Δθ, Δs_{j+1} = (end_j − s_{j+1}) + G_j Δs_j + H_j Δθ (Δs_0 = 0: the observer is
    known), which turns the maps at the data times into affine functions of Δθ alone. Δθ then
    solves the P-dimensional regularised least squares of the data and the prior, with
    Levenberg–Marquardt ``damping`` λ (diagonal of the normal matrix scaled by 1 + λ).

    Args:
        problem, data, sigma, prior_scale, free_gradient: as for :func:`fit`.
        theta: flat θ (:func:`flatten`); ``template`` gives its structure.
        states: node states (J, Npix, 6); nodes: their times (static).
        damping: λ ≥ 0.

    Returns:
        (Δθ, Δstates).
    """
    bounds = (0.0, *nodes, problem.t_omega[-1])
    starts = _segment_starts(problem, states)

    def end_of(y, t, duration):
        out = _segment(problem, _unflatten(t, template, free_gradient).coefficients, y[None],
                       duration)[0]
        return out, out

    shift = jnp.zeros(states.shape[1:], states.dtype)  # a_j: the step of Δs_j at Δθ = 0
    slope = jnp.zeros((*states.shape[1:], theta.size), states.dtype)  # B_j = ∂Δs_j/∂Δθ
    moved = []
    for j in range(len(bounds) - 1):
        jac = jax.vmap(jax.jacrev(end_of, argnums=(0, 1), has_aux=True), (0, None, None))
        (G, H), end = jac(starts[j], theta, bounds[j + 1] - bounds[j])
        target = states[j] if j < len(nodes) else end  # the next node, or the final map
        shift = end - target + jnp.einsum("pab,pb->pa", G, shift)
        slope = H + jnp.einsum("pab,pbq->paq", G, slope)
        moved.append((target, shift, slope))
    rows = [*_data_rows(problem, nodes), len(nodes)]

    def linear_maps(delta):
        at_times = jnp.stack([moved[i][0] + moved[i][1] + moved[i][2] @ delta for i in rows])
        params = _unflatten(theta + delta, template, free_gradient)
        return _map_residuals(problem, params, at_times, data, sigma).ravel()

    zero = jnp.zeros_like(theta)
    r0, J = linear_maps(zero), jax.jacfwd(linear_maps)(zero)
    precision = jnp.zeros_like(theta)
    if prior_scale is not None:
        precision = prior_precision(prior_scale, free_gradient)
    normal = J.T @ J + jnp.diag(precision)
    # Marquardt: damp along the diagonal of the normal matrix
    normal = normal + damping * jnp.diag(jnp.diag(normal))
    delta = -jnp.linalg.solve(normal, J.T @ r0 + precision * theta)
    d_states = jnp.stack([moved[j][1] + moved[j][2] @ delta for j in range(len(nodes))])
    return delta, d_states


class FitResult(eqx.Module):
    """Outcome of :func:`fit` for every start (leading axis S) and the best one.

    Attributes:
        params: fitted :class:`FieldParams` per start (leading axis S).
        loss: −ln posterior (unsmoothed, at the final times) per start, shape (S,).
        best: index of the start with the lowest loss.
        steps: BFGS steps summed over the stages, plus the multiple-shooting iterations, per
            start (S,).
    """

    params: FieldParams
    loss: Array
    best: Array
    steps: Array

    def best_params(self) -> FieldParams:
        """The fitted parameters of the best start."""
        return jax.tree.map(lambda a: a[self.best], self.params)


def _minimise(objective, theta0, rtol, atol, max_steps):
    solver = optx.BFGS(rtol=rtol, atol=atol)
    sol = optx.minimise(objective, solver, theta0, max_steps=max_steps, throw=False)
    return sol.value, sol.stats["num_steps"]


def fit(
    problem: InverseProblem,
    data,
    sigma,
    starts: FieldParams,
    *,
    prior_scale=None,
    free_gradient: bool = False,
    stages=None,
    shooting: Shooting | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 500,
) -> FitResult:
    """MAP fit of the field (and optionally the gradient) from many starts, vmapped.

    Args:
        problem: the forward map; its ``t_omega`` are the times of ``data``.
        data, sigma: observed maps and per-pixel errors, (n_times, n_obs) (:func:`mock_data`).
        starts: :class:`FieldParams` with a leading axis S of starting points (the gradient of
            each start is used as is when ``free_gradient`` is False).
        prior_scale: (N,) Gaussian prior scale of the coefficients (:func:`prior_scale_for`), or
            None (maximum likelihood).
        free_gradient: fit g = ∇n/n too.
        stages: mitigations of chaos, a sequence of ``(n_times_used, smoothing)``: fit the first
            ``n_times_used`` maps only (continuation in T: short times first), with data and model
            smoothed by the beam operator ``smoothing`` (or None); each stage starts from the
            previous one's result. The final unsmoothed fit to all times is always appended.
        shooting: :class:`Shooting` settings to run multiple shooting on all the data first
            (Gauss–Newton iterations, the node states started on the paths of each start); its θ
            then starts ``stages`` and the final fit. Without a node below the last time (one
            map at τ ≤ ``segment``) it does nothing.
        rtol, atol, max_steps: BFGS (optimistix) tolerances and step limit per stage.

    Returns:
        :class:`FitResult`.
    """
    if starts.coefficients.ndim != 3 or starts.coefficients.shape[1:] != (
        problem.basis.k.shape[0], 4
    ):
        raise ValueError(
            f"starts.coefficients must have shape (S, {problem.basis.k.shape[0]}, 4), "
            f"got {starts.coefficients.shape}"
        )
    n_times = len(problem.t_omega)
    data, sigma = jnp.asarray(data), jnp.broadcast_to(jnp.asarray(sigma), jnp.shape(data))
    if data.shape != (n_times, observed_pixels(problem)):
        raise ValueError(
            f"data must have shape (n_times, n_obs) = ({n_times}, {observed_pixels(problem)}),"
            f" got {data.shape}"
        )
    plan = [*(stages or ()), (n_times, None)]
    for used, smoothing in plan:
        _validate.positive_int("stages n_times_used", used)
        if used > n_times:
            raise ValueError(f"stages: n_times_used {used} exceeds the {n_times} data times")
        if smoothing is not None and problem.observation is not None:
            raise ValueError("stages: beam smoothing needs whole-sky maps (no field_of_view)")
    template = jax.tree.map(lambda a: a[0], starts)

    nodes = shooting_nodes(problem.t_omega, shooting.segment) if shooting else ()

    def shoot(theta):
        """Full Gauss–Newton steps of multiple shooting (relaxed: the merit may rise on the way);
        returns the iterate of lowest merit."""

        def merit(t, states):
            return shooting_objective(problem, _unflatten(t, template, free_gradient), states,
                                      data, sigma, nodes, shooting.weight, prior_scale)

        def iteration(_, carry):
            t, states, damping, best, best_value = carry
            d_t, d_states = shooting_step(problem, t, template, states, data, sigma, nodes,
                                          prior_scale, damping, free_gradient)
            value = merit(t + d_t, states + d_states)
            ok = jnp.isfinite(value)  # a step to a non-finite merit is refused, and damped
            t = jnp.where(ok, t + d_t, t)
            states = jnp.where(ok, states + d_states, states)
            lower = ok & (value < best_value)
            return (t, states, jnp.where(ok, damping / 3, damping * 4),
                    jnp.where(lower, t, best), jnp.where(lower, value, best_value))

        states = shooting_states(problem, _unflatten(theta, template, free_gradient), nodes)
        value = merit(theta, states)
        carry = (theta, states, jnp.asarray(1e-3, theta.dtype), theta, value)
        return jax.lax.fori_loop(0, shooting.iterations, iteration, carry)[3]

    def one_start(theta0):
        theta, steps = theta0, 0
        if nodes:
            theta, steps = shoot(theta), shooting.iterations
        for used, smoothing in plan:
            sub = with_times(problem, problem.t_omega[:used])

            def objective(t, args, sub=sub, used=used, smoothing=smoothing):
                p = _unflatten(t, template, free_gradient)
                return negative_log_posterior(
                    sub, p, data[:used], sigma[:used], prior_scale, smoothing
                )

            theta, n = _minimise(objective, theta, rtol, atol, max_steps)
            steps = steps + n
        p = _unflatten(theta, template, free_gradient)
        loss = negative_log_posterior(problem, p, data, sigma, prior_scale)
        return theta, loss, steps

    theta0 = jax.vmap(lambda p: flatten(p, free_gradient))(starts)
    theta, loss, steps = jax.vmap(one_start)(theta0)
    params = jax.vmap(lambda t: _unflatten(t, template, free_gradient))(theta)
    if not free_gradient:
        params = FieldParams(params.coefficients, starts.gradient)
    loss = jnp.where(jnp.isfinite(loss), loss, jnp.inf)
    return FitResult(params=params, loss=loss, best=jnp.argmin(loss), steps=steps)


def random_starts(
    key: jax.Array, n_starts: int, n_modes: int, prior_scale, gradient
) -> FieldParams:
    """``n_starts`` starting points drawn from the Gaussian prior (coefficients) with the given
    gradient, as a :class:`FieldParams` with leading axis S."""
    _validate.positive_int("n_starts", n_starts)
    scale = jnp.asarray(prior_scale)[:, None]
    coefficients = scale * jax.random.normal(key, (n_starts, n_modes, 4), scale.dtype)
    gradient = jnp.broadcast_to(jnp.asarray(gradient, scale.dtype), (n_starts, 3))
    return FieldParams(coefficients, gradient)


def map_correlation(a, b) -> Float[Array, ""]:
    """Pearson correlation of two maps over all their pixels (and times)."""
    a, b = jnp.ravel(a), jnp.ravel(b)
    a, b = a - a.mean(), b - b.mean()
    return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))
