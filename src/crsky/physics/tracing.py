"""Back-tracking cosmic rays through a magnetic field: the Lorentz force solved with diffrax.

Equations (rel.-diffusion paper, section 3; docs/physics.md (R3)). An ultra-relativistic particle of
Larmor radius ``r_L = p c / (e B0)`` moves as ``dx/dt = c p̂``, ``dp̂/dt = Ω p̂ × B/B0`` with
``Ω = c / r_L``. Back-tracking integrates backwards in time from the observer at the origin with
momentum ``p̂(0) = −n̂`` for an arrival direction ``n̂``. We use the dimensionless back-tracking
time ``τ = |t| Ω`` (the papers' ``tΩ``) as the integration variable, so that

    dx/dτ = −r_L p̂,        dp̂/dτ = −p̂ × B(x)/B0.

Lengths are in Lc, so the time ``T = τ r_L`` in units of Lc/c.

Two solvers share one entry point, :func:`backtrack`:

- ``"tsit5"``: diffrax's adaptive Tsitouras 5(4) with a PID controller (accurate reference);
- ``"boris"``: the fixed-step, time-symmetric Boris push (drift–rotate–drift), a diffrax
  :class:`diffrax.AbstractSolver` that conserves |p̂| to rounding error.

Both integrate one :class:`LorentzTerm` (the force as a diffrax term, which also exposes the
field for the Boris rotation).
"""

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from crsky import _validate
from crsky.physics.turbulence import Modes, check_modes, magnetic_field

SOLVERS = ("boris", "tsit5")
# Largest accepted deviation of |n̂| from 1 for arrival directions (float32 rounding is ~1e-7).
UNIT_TOLERANCE = 1e-5
# Field evaluations per step, for throughput figures (Tsit5 is FSAL: 6 new stages per step).
FIELD_EVALUATIONS_PER_STEP = {"boris": 1, "tsit5": 6}


class LorentzTerm(diffrax.AbstractTerm):
    """The back-tracking Lorentz force in τ = |t|Ω as a diffrax term, for one field realisation
    (a pytree), or for R stacked ones acting on states of shape (R, M, 3).

    Its vector field is the force, ``dx/dτ = −r_L p̂``, ``dp̂/dτ = −p̂ × B/B0``, and its control
    the step in τ (as :class:`diffrax.ODETerm`), so any diffrax ODE solver integrates it; it
    also exposes the field itself (:meth:`field`), which the :class:`Boris` rotation needs.

    Attributes:
        modes: the turbulent field realisation(s) (B0 ẑ is added by :func:`magnetic_field`).
        r_larmor: Larmor radius r_L in Lc.
    """

    modes: Modes
    r_larmor: Float[Array, ""]

    def field(self, x: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
        """B(x)/B0, x in Lc."""
        return magnetic_field(self.modes, x)

    def vf(self, t, y, args):
        x, p = y
        # Lorentz force back in time: dx/dτ = −r_L p̂, dp̂/dτ = −p̂ × B/B0 (docs/physics.md (R3))
        return -self.r_larmor * p, -jnp.cross(p, self.field(x))

    def contr(self, t0, t1, **kwargs):
        return t1 - t0  # the control of an ODE: the step in τ

    def prod(self, vf, control):
        # vf · Δτ, with Δτ promoted as diffrax.ODETerm promotes it (identical rounding)
        return jax.tree.map(lambda v: jnp.astype(control, jnp.result_type(control, v)) * v, vf)


def _lorentz_term(terms) -> LorentzTerm:
    """The :class:`LorentzTerm` handed to a solver. ``diffeqsolve`` passes each term inside a
    wrapper that flips the direction of time (``.term``, diffrax 0.6-0.7); the Boris push only
    runs forward in τ (``backtrack`` integrates from 0 to τ_max), where the wrapper is the
    identity."""
    term = terms
    while not isinstance(term, LorentzTerm):
        term = getattr(term, "term", None)
        if term is None:
            raise TypeError(f"Boris needs a LorentzTerm, got {type(terms).__name__}")
    return term


class Boris(diffrax.AbstractSolver):
    """Boris push for a :class:`LorentzTerm` as a diffrax solver (fixed step, 2nd order).

    One field evaluation per step at the midpoint position, read through the term:
    ``x½ = x − r_L p h/2``; rotate ``p`` about ``−B(x½)`` by the Boris rotation; ``x' = x½ −
    r_L p' h/2``. The rotation is exactly norm-preserving, so |p̂| = 1 to rounding error.
    """

    term_structure: ClassVar = LorentzTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        term = _lorentz_term(terms)
        h = t1 - t0
        x, p = y0
        x_half = x - term.r_larmor * p * (h / 2)
        # Boris rotation for dp/dτ = p × (−b): t = −b h/2, s = 2t/(1 + t²) (Boris 1970)
        t_vec = -term.field(x_half) * (h / 2)
        s_vec = 2 * t_vec / (1 + jnp.sum(t_vec**2, axis=-1, keepdims=True))
        p_prime = p + jnp.cross(p, t_vec)
        p_new = p + jnp.cross(p_prime, s_vec)
        x_new = x_half - term.r_larmor * p_new * (h / 2)
        y1 = (x_new, p_new)
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


class Trajectories(eqx.Module):
    """Back-tracked states at the saved times (for R stacked realisations every field has a
    leading axis R).

    Attributes:
        t_omega: saved back-tracking times τ = |t|Ω, shape (n_times,).
        r: positions r(−T), shape (n_times, M, 3), units Lc.
        p: momentum directions p̂(−T), shape (n_times, M, 3).
        n_steps: solver steps taken per trajectory, shape (M,) (accepted + rejected).
    """

    t_omega: Float[Array, "*r n_times"]
    r: Float[Array, "*r n_times m 3"]
    p: Float[Array, "*r n_times m 3"]
    n_steps: Array


def default_step(r_larmor: float, lambda_min: float) -> float:
    """Default Boris step in units of 1/Ω: resolves gyration and the shortest wave.

    ``min(0.1, 0.2 λmin / r_L)``: at most a tenth of a radian of gyration, and the particle
    crosses λmin in at least 5 steps. A step-size convergence test of the statistics of interest
    (``benchmarks/``) is the arbiter for production runs.
    """
    return float(min(0.1, 0.2 * lambda_min / r_larmor))


# Bytes per step of building the Boris grid: linspace, union (concatenation and sort), the
# masks of the closeness test and the device copy, all float64 or smaller.
_STEP_GRID_BYTES = 48


def step_count(t_omega_max: float, dt: float) -> int:
    """Steps of size ``dt`` (1/Ω) to reach ``t_omega_max``: the length of the Boris step grid."""
    return math.ceil(float(t_omega_max) / float(dt) - 1e-9)


def check_step_grid(t_omega_max: float, dt: float, names: str = "t_omega / dt") -> int:
    """Refuse a Boris step grid that cannot fit in memory, before building it; return its steps.

    ``names``: the parameters the user set, for the message (the step count is
    ``t_omega_max / dt``).
    """
    steps = float(t_omega_max) / float(dt)
    if not math.isfinite(steps) or steps > 2**62:
        raise ValueError(f"{names}: t_omega_max / dt = {steps:.3g} steps is beyond any run")
    n = step_count(t_omega_max, dt)
    _validate.fits_in_memory(
        f"{names} ({n:.3g} Boris steps of dt = {dt:g} to t_omega = {t_omega_max:g})",
        _STEP_GRID_BYTES * (n + 1), "the step grid",
    )
    return n


def _step_grid(t_omega: np.ndarray, dt: float) -> np.ndarray:
    """A uniform grid of step ``dt`` from 0 that also hits every save time exactly."""
    t_end = float(t_omega[-1])
    n = check_step_grid(t_end, dt)
    grid = np.union1d(np.linspace(0.0, n * dt, n + 1), t_omega)
    grid = grid[grid <= t_end]
    # drop grid points closer than dt/100 to a save time, so no step is degenerate
    keep = np.ones(grid.size, bool)
    for t in t_omega:
        close = (np.abs(grid - t) < dt * 1e-2) & (grid != t)
        keep &= ~close
    return grid[keep]


def validate_backtrack(
    directions, t_omega, r_larmor, solver: str, dt: float | None, rtol: float, atol: float
) -> None:
    """Raise ``ValueError`` naming the first bad argument of :func:`backtrack`."""
    shape = jnp.shape(directions)
    if len(shape) != 2 or shape[-1] != 3:
        raise ValueError(f"directions must have shape (M, 3), got {shape}")
    _validate.finite("directions", directions)
    if not isinstance(directions, jax.core.Tracer) and shape[0]:
        norm = np.linalg.norm(np.asarray(directions, dtype=float), axis=-1)
        worst = int(np.argmax(np.abs(norm - 1.0)))
        if abs(norm[worst] - 1.0) > UNIT_TOLERANCE:
            raise ValueError(
                f"directions must be unit vectors (|n| = 1 to {UNIT_TOLERANCE:g}); row {worst} "
                f"has |n| = {norm[worst]:.6g}"
            )
    _validate.increasing("t_omega", t_omega)
    _validate.positive("r_larmor", r_larmor)
    _validate.one_of("solver", solver, SOLVERS)
    if dt is not None:
        _validate.positive("dt", dt)
    _validate.positive("rtol", rtol)
    _validate.positive("atol", atol)


def backtrack(
    modes: Modes,
    directions: Float[Array, "m 3"],
    t_omega,
    r_larmor: float | jax.Array,
    *,
    solver: Literal["boris", "tsit5"] = "boris",
    dt: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int | None = None,
) -> Trajectories:
    """Back-track CRs arriving from ``directions`` through the field ``modes``.

    Args:
        modes: field realisation (:func:`crsky.physics.turbulence.sample_modes`); its dtype sets the
            dtype of the integration (float32 for speed, float64 for precision). R
            realisations stacked along a leading axis (k of shape (R, N, 3)) are back-tracked
            together, all from the same ``directions``.
        directions: arrival directions n̂, shape (M, 3), unit vectors to ``UNIT_TOLERANCE``
            (e.g. HEALPix pixel centres, :func:`healpix_directions`). The initial momentum is
            −n̂.
        t_omega: back-tracking times τ = |t|Ω at which r and p̂ are saved, strictly increasing,
            > 0 (numpy array; it fixes the step grid, so it is static under ``jit``).
        r_larmor: Larmor radius in Lc (differentiable).
        solver: ``"boris"`` (fixed step ``dt``) or ``"tsit5"`` (adaptive, ``rtol``/``atol``).
        dt: Boris step in 1/Ω; initial step for Tsit5. Default :func:`default_step` with the
            modes' shortest wavelength. The Boris grid of ``τ_max / dt`` steps must fit in
            memory (:func:`check_step_grid`; refused before it is built).
        rtol, atol: Tsit5 tolerances (positions in Lc, momenta dimensionless).
        max_steps: Tsit5 step limit per trajectory (default ``max(4096, 400 τ_max / dt)``, at
            most 2³¹ − 1).

    Returns:
        :class:`Trajectories` with r, p̂ of shape (n_times, M, 3); for stacked modes every
        field has a leading axis R (r, p̂ of shape (R, n_times, M, 3), n_steps (R, M)).

    Differentiable with ``jax.grad`` in the mode amplitudes (hence σ), ``r_larmor`` and the
    directions. Chaotic trajectories make pathwise gradients uninformative at long times.
    """
    validate_backtrack(directions, t_omega, r_larmor, solver, dt, rtol, atol)
    r_larmor = _validate.positive("r_larmor", r_larmor)  # a traced r_L is checked at run time
    check_modes(modes)
    dtype = modes.k.dtype
    t_save = np.asarray(t_omega, dtype=float)
    if dt is None:
        if isinstance(modes.k, jax.core.Tracer) or isinstance(r_larmor, jax.core.Tracer):
            raise ValueError("dt must be given when backtrack runs under a JAX transformation")
        k_max = float(jnp.max(jnp.linalg.norm(modes.k, axis=-1)))
        dt = default_step(float(r_larmor), 2 * np.pi / k_max)
    directions = jnp.asarray(directions)
    if solver == "boris":
        shape = (*modes.k.shape[:-2], *directions.shape)
        return propagate(
            modes, jnp.zeros(shape, dtype), -jnp.broadcast_to(directions.astype(dtype), shape),
            t_save, r_larmor, dt=dt,
        )
    term = LorentzTerm(modes=modes, r_larmor=jnp.asarray(r_larmor, dtype))
    saveat = diffrax.SaveAt(ts=jnp.asarray(t_save, dtype))
    kwargs = dict(
        solver=diffrax.Tsit5(),
        dt0=jnp.asarray(dt, dtype),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps or int(min(max(4096, 400 * t_save[-1] / dt), 2**31 - 1)),
    )
    if modes.k.ndim == 3:  # adaptive steps differ per realisation too
        return jax.vmap(
            lambda m: backtrack(m, directions, t_omega, r_larmor, solver=solver, dt=dt,
                                rtol=rtol, atol=atol, max_steps=max_steps)
        )(modes)

    def one(n_hat):
        y0 = (jnp.zeros(3, dtype), -n_hat.astype(dtype))
        sol = diffrax.diffeqsolve(
            term, t0=0.0, t1=float(t_save[-1]), y0=y0, saveat=saveat, **kwargs
        )
        return sol.ys, sol.stats["num_steps"]

    # adaptive steps: one diffeqsolve per trajectory, each with its own step sequence
    (r, p), n_steps = jax.vmap(one, out_axes=((1, 1), 0))(directions)
    return Trajectories(t_omega=jnp.asarray(t_save, dtype), r=r, p=p, n_steps=n_steps)


def propagate(
    modes: Modes,
    r0: Float[Array, "*r m 3"],
    p0: Float[Array, "*r m 3"],
    t_omega,
    r_larmor: float | jax.Array,
    *,
    dt: float,
) -> Trajectories:
    """Continue back-tracking from given states: Boris steps of ``dt`` from τ = 0 to ``t_omega``.

    The field does not depend on time, so a trajectory segment that starts at ``(r0, p0)`` is a
    back-tracking that started at the origin and has reached ``(r0, p0)``; :func:`backtrack`
    itself is the case ``r0 = 0``, ``p0 = −n̂``. Multiple shooting
    (:mod:`crsky.physics.inverse`) integrates each segment between its nodes this way.

    Args:
        modes: field realisation(s), as for :func:`backtrack` (a leading axis R for R stacked
            realisations, then ``r0``, ``p0`` have shape (R, M, 3)).
        r0: start positions, Lc, shape ([R,] M, 3).
        p0: start momentum directions (unit vectors; Boris keeps |p̂| as given), same shape.
        t_omega: times τ after the start at which r, p̂ are saved, strictly increasing, > 0
            (static).
        r_larmor: Larmor radius in Lc (differentiable).
        dt: Boris step in 1/Ω.

    Returns:
        :class:`Trajectories` with r, p̂ of shape (n_times, M, 3) ((R, n_times, M, 3) stacked).
    """
    if jnp.shape(r0) != jnp.shape(p0) or jnp.ndim(r0) < 2 or jnp.shape(r0)[-1] != 3:
        raise ValueError(f"r0 and p0 must share a shape ([R,] M, 3), got {jnp.shape(r0)} and "
                         f"{jnp.shape(p0)}")
    t_save = np.asarray(t_omega, dtype=float)
    _validate.increasing("t_omega", t_save)
    _validate.positive("dt", dt)
    dtype = modes.k.dtype
    term = LorentzTerm(modes=modes, r_larmor=jnp.asarray(r_larmor, dtype))
    grid = _step_grid(t_save, dt)
    # Fixed steps: every trajectory (of every stacked realisation) sees the same grid, so the
    # whole batch is one diffrax state of shape ([R,] M, 3): identical arithmetic to a vmap
    # over trajectories or realisations, without the masking of a vmapped while loop.
    sol = diffrax.diffeqsolve(
        term, Boris(), t0=0.0, t1=float(t_save[-1]), dt0=None,
        y0=(jnp.asarray(r0, dtype), jnp.asarray(p0, dtype)),
        saveat=diffrax.SaveAt(ts=jnp.asarray(t_save, dtype)),
        stepsize_controller=diffrax.StepTo(ts=jnp.asarray(grid, dtype)), max_steps=grid.size,
    )
    (r, p), shape = sol.ys, jnp.shape(r0)
    t_out = jnp.asarray(t_save, dtype)
    if modes.k.ndim == 3:  # (n_times, R, M, 3) -> (R, n_times, M, 3)
        r, p = jnp.moveaxis(r, 0, 1), jnp.moveaxis(p, 0, 1)
        t_out = jnp.broadcast_to(t_out, (modes.k.shape[0], t_save.size))
    n_steps = jnp.full(shape[:-1], sol.stats["num_steps"])
    return Trajectories(t_omega=t_out, r=r, p=p, n_steps=n_steps)


def healpix_directions(nside: int, dtype=None) -> Float[Array, "npix 3"]:
    """Unit vectors of the HEALPix pixel centres, RING ordering, shape (12 nside², 3).

    ``dtype`` defaults to JAX's default float (float64 with ``jax_enable_x64``, else float32).
    """
    import healpy as hp

    _validate.power_of_two("nside", nside)
    _validate.fits_in_memory(f"nside={nside}", 4 * 8 * 3 * 12 * nside**2, "the directions")
    vec = np.stack(hp.pix2vec(nside, np.arange(hp.nside2npix(nside))), axis=-1)
    return jnp.asarray(vec, dtype)


def check_times(t_omega_max: float, n_times: int, t_omega_min: float = 1.0) -> None:
    """``ValueError`` naming the parameter if :func:`log_times` cannot make these times;
    allocates nothing (a configuration checks its times before any memory budget)."""
    _validate.positive("t_omega_min", t_omega_min)
    _validate.positive("t_omega_max", t_omega_max)
    _validate.positive_int("n_times", n_times)
    _validate.fits_in_memory(f"n_times={n_times}", 24 * n_times, "the saved times")
    if t_omega_min >= t_omega_max and n_times > 1:
        raise ValueError(
            f"t_omega_min ({t_omega_min}) must be < t_omega_max ({t_omega_max})"
        )


def log_times(t_omega_max: float, n_times: int, t_omega_min: float = 1.0) -> np.ndarray:
    """``n_times`` back-tracking times τ log-spaced from ``t_omega_min`` to ``t_omega_max``."""
    check_times(t_omega_max, n_times, t_omega_min)
    return np.geomspace(t_omega_min, t_omega_max, n_times) if n_times > 1 else np.array(
        [float(t_omega_max)]
    )
