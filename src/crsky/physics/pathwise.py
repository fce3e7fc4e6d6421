"""Pathwise (automatic-differentiation) gradients of one realisation's sky spectrum.

The whole chain is one JAX function of the turbulence level σ at a fixed PRNG key ("common random
numbers"): field modes (:func:`crsky.physics.turbulence.sample_modes`, amplitudes linear in σ) →
Boris back-tracking in float64 with a fixed step (:func:`crsky.physics.tracing.backtrack`) →
Liouville
map ``dI = (r(−T) − 3 p̂(−T) K)·g`` (rel.-diffusion paper eq. (2.1)) → ``C_ℓ`` by the JAX
spherical-harmonic transform (eq. (2.2)). ``jax.grad`` of any scalar built from the returned
``C_ℓ`` therefore gives ``dC_ℓ/dσ`` of that realisation (and ``d/dr_L``).

Trajectories are chaotic: the pathwise gradient of one realisation grows like ``e^{λ T}`` while
the derivative of the ensemble mean stays bounded, so beyond a few tens of gyro-periods the
pathwise gradient carries no usable information (``docs/sky_and_spectra.md``, "Gradients
through the simulation"; ``benchmarks/gradient_horizon.py``). Beyond that horizon use
:mod:`crsky.inference.emulator` or finite differences of ensemble means with common random numbers.
"""

import jax
import jax.numpy as jnp

from crsky import _validate
from crsky.physics import sky, spectra
from crsky.physics.tracing import backtrack, default_step, healpix_directions
from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes


def liouville_cl(
    key: jax.Array,
    spectrum: TurbulenceSpectrum,
    t_omega,
    grad_n_over_n,
    K,
    *,
    nside: int = 2,
    r_larmor: float | jax.Array = 0.1,
    dt: float | None = None,
    plan: spectra.SHTPlan | None = None,
    iter: int = 3,
    dtype=jnp.float64,
) -> jax.Array:
    """``C_ℓ`` of the Liouville map of one field realisation, differentiable in σ and r_L.

    Args:
        key: PRNG key of the realisation (fixed key = common random numbers across σ).
        spectrum: the turbulence (:class:`crsky.physics.turbulence.TurbulenceSpectrum`);
            differentiable in its ``sigma``, e.g. ``TurbulenceSpectrum(sigma=s, n_modes=32)``
            built inside the differentiated function.
        t_omega: back-tracking times τ = tΩ, strictly increasing, shape (n_times,) (static).
        grad_n_over_n: ``g = ∇n/n`` in 1/Lc, shape (3,)
            (:func:`crsky.physics.sky.reference_gradient`).
        K: diffusion tensor in the Liouville map, Lc·c, shape (3, 3); held fixed so that the
            result is a function of σ through the trajectories only.
        nside: HEALPix resolution of the arrival directions (``Npix = 12 nside²`` trajectories).
        r_larmor: Larmor radius in Lc (differentiable).
        dt: Boris step in 1/Ω; default :func:`crsky.physics.tracing.default_step` (needs a concrete
            ``r_larmor``, so pass ``dt`` when differentiating in ``r_larmor``).
        plan: :func:`crsky.physics.spectra.make_plan` kernels; its ``lmax`` sets the spectra's
            range.
            Default: built for ``lmax = 2 nside`` (pass one when calling repeatedly).
        iter: HEALPix Jacobi iterations of the transform.
        dtype: integration dtype; float64 (the default, needs ``jax_enable_x64``) keeps the
            chaotic amplification of rounding error below gradient-check tolerances.

    Returns:
        ``C_ℓ`` of ``dI``, dimensionless, shape ``(n_times, lmax + 1)``.
    """
    if jnp.dtype(dtype) == jnp.float64:
        _validate.float64_enabled("liouville_cl with dtype float64")
    _validate.power_of_two("nside", nside)
    if plan is not None and plan.nside != nside:
        raise ValueError(f"plan is for nside {plan.nside}, not nside {nside}")
    if dt is None:
        if isinstance(r_larmor, jax.core.Tracer):
            raise ValueError("dt must be given when differentiating in r_larmor")
        dt = default_step(float(r_larmor), float(spectrum.lambda_min))
    plan = spectra.make_plan(nside, 2 * nside) if plan is None else plan
    modes = sample_modes(key, spectrum, dtype=dtype)
    traj = backtrack(
        modes, healpix_directions(nside, dtype), t_omega, r_larmor, solver="boris", dt=dt
    )
    # Rel.-diffusion paper eq. (2.1): dI = (r(-T) - 3 p(-T) K) . grad n / n
    d_intensity = sky.relative_intensity(traj.r, traj.p, grad_n_over_n, K)
    # Rel.-diffusion paper eq. (2.2): C_l of the dI map
    return spectra.power_spectrum(d_intensity, plan.lmax, method="jax", plan=plan, iter=iter)
