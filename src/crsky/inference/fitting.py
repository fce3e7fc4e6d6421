"""Gradient-based fits of the NumPyro models: MAP with optimistix, uncertainties by Laplace.

:func:`fit_laplace` minimises the model's potential (negative log joint density) in NumPyro's
unconstrained space with BFGS, takes the Hessian there by automatic differentiation, and draws
from the Gaussian ``N(mode, H⁻¹)`` mapped back to the constrained parameters. The mode is that of
the unconstrained density (log-Jacobian of the transforms included), as in NumPyro's
``AutoLaplaceApproximation``; the same models are sampled by
:func:`crsky.inference.sampling.run_nuts`,
which is the reference the Laplace intervals are compared with.

:func:`iterate_fiducial` finds the self-consistent fiducial of a model whose Gaussian covariance
is held at a fiducial spectrum: the point at which the MAP of the fit equals the fiducial.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.flatten_util import ravel_pytree
from numpyro.infer.initialization import init_to_median
from numpyro.infer.util import initialize_model, potential_energy

from crsky import _validate
from crsky.inference.sampling import interval_summary


@dataclass(frozen=True)
class LaplaceFit:
    """Result of :func:`fit_laplace`.

    ``mode``: name → constrained value at the mode (sampled and deterministic sites);
    ``covariance``: (k, k) ``H⁻¹`` in the unconstrained space, ordered as ``unconstrained_names``;
    ``samples``: name → (draws,) constrained draws of the Laplace approximation;
    ``potential``: negative log density at the mode; ``steps``: BFGS iterations.
    """

    mode: dict
    covariance: np.ndarray
    unconstrained_names: tuple[str, ...]
    samples: dict
    potential: float
    steps: int

    def summary(self) -> dict:
        """Per scalar site: ``mode``, ``median``, ``q68``, ``q95`` of the Laplace draws."""
        return {
            name: {"mode": float(self.mode[name])} | interval_summary(values)
            for name, values in self.samples.items()
            if np.ndim(self.mode[name]) == 0
        }


def fit_laplace(model, model_kwargs: dict, seed: int = 0, draws: int = 4000,
                max_steps: int = 2000, tol: float = 1e-9) -> LaplaceFit:
    """MAP + Laplace fit of ``model(**model_kwargs)``.

    Starts from the prior medians; BFGS (optimistix) to relative/absolute tolerance ``tol``.
    ``ValueError`` if BFGS does not converge within ``max_steps`` or the Hessian at the mode is
    not positive definite (the Laplace approximation then does not exist).
    Needs float64 for tolerances below ~1e-6.
    """
    _validate.float64_enabled("fit_laplace")
    _validate.positive_int("draws", draws)
    _validate.positive_int("max_steps", max_steps)
    _validate.positive("tol", tol)
    key_init, key_draw = jax.random.split(jax.random.PRNGKey(seed))
    init, potential_fn, postprocess_fn, _ = initialize_model(
        key_init, model, model_kwargs=model_kwargs, init_strategy=init_to_median(num_samples=15)
    )
    x0, unravel = ravel_pytree(init.z)

    @jax.jit
    def potential(x):
        return potential_fn(unravel(x))

    solution = optx.minimise(
        lambda x, _: potential(x), optx.BFGS(rtol=tol, atol=tol), x0, max_steps=max_steps,
        throw=False,
    )
    if solution.result != optx.RESULTS.successful:
        raise ValueError(f"MAP fit did not converge in {max_steps} BFGS steps")
    mode_x = solution.value
    hessian = jax.jit(jax.hessian(potential))(mode_x)
    hessian = 0.5 * (hessian + hessian.T)
    eigenvalues = jnp.linalg.eigvalsh(hessian)
    if not bool(jnp.all(eigenvalues > 0)):
        raise ValueError(
            "the Hessian at the MAP is not positive definite "
            f"(eigenvalues {np.asarray(eigenvalues)})"
        )
    covariance = jnp.linalg.inv(hessian)
    chol = jnp.linalg.cholesky(covariance)
    z = mode_x + jax.random.normal(key_draw, (draws, mode_x.size)) @ chol.T
    samples = jax.jit(jax.vmap(lambda x: postprocess_fn(unravel(x))))(z)
    names = tuple(name for name in sorted(init.z) for _ in range(np.size(init.z[name])))
    return LaplaceFit(
        mode={k: np.asarray(v) for k, v in postprocess_fn(unravel(mode_x)).items()},
        covariance=np.asarray(covariance),
        unconstrained_names=names,
        samples={k: np.asarray(v) for k, v in samples.items()},
        potential=float(potential(mode_x)),
        steps=int(solution.stats["num_steps"]),
    )


@dataclass(frozen=True)
class FiducialFit:
    """Result of :func:`iterate_fiducial`.

    ``fiducial``: name → value of the self-consistent fiducial (the last fit's MAP);
    ``history``: the MAP of each fit, the first with the covariance at the model;
    ``iterations``: fits after the first.
    """

    fiducial: dict
    history: tuple[dict, ...]
    iterations: int


def iterate_fiducial(model, model_kwargs: dict, names: Sequence[str] = ("p", "q1"),
                     rtol: float = 1e-3, max_iterations: int = 30, max_steps: int = 2000,
                     tol: float = 1e-9) -> FiducialFit:
    """The self-consistent fiducial of a Gaussian likelihood whose covariance is held fixed.

    A Gaussian likelihood with a covariance that moves with the parameters rewards larger
    variance and counts the variance as information: its MAP is biased and its intervals too
    narrow. Holding the covariance at a fiducial ``θ_f`` removes both when ``θ_f`` is the truth.
    Without the truth, the fiducial is chosen self-consistent: the MAP ``g(θ_f)`` of
    ``model(**model_kwargs, fiducial=θ_f)`` equals ``θ_f``.

    The root of ``F(u) = ln g(e^u) − u`` (``u = ln θ_f``; the parameters in ``names`` must be
    positive) is found by Broyden's method (Broyden 1965, the "good" rank-one update), starting
    from the MAP with the covariance at the model (``fiducial=None``) and the Jacobian guess
    ``−1``, whose first step is the plain fixed-point iteration ``θ_f ← g(θ_f)``. The plain
    iteration alone converges slowly or oscillates where ``g`` has a slope near ±1 (the
    IceCube cap); Broyden's steps do not. Each fit starts at the previous optimum. Converged
    when ``|F| <= rtol`` for every parameter (the MAP reproduces its fiducial to ``rtol``
    relative).

    ``model`` must take ``fiducial``, a mapping ``names`` → value (e.g.
    :func:`crsky.inference.models.spectrum_p_model`). ``ValueError`` if a fit does not converge
    in ``max_steps`` BFGS steps, or the iteration in ``max_iterations`` fits. Float64 required.
    """
    _validate.float64_enabled("iterate_fiducial")
    _validate.positive("rtol", rtol)
    _validate.positive_int("max_iterations", max_iterations)
    _validate.positive_int("max_steps", max_steps)
    names = tuple(names)
    init, _, postprocess_fn, _ = initialize_model(
        jax.random.PRNGKey(0), model, model_kwargs=model_kwargs | {"fiducial": None},
        init_strategy=init_to_median(num_samples=15),
    )
    missing = [n for n in names if n not in init.z]
    if missing:
        raise ValueError(f"names: {missing} are not sampled parameters of the model")
    x0, unravel = ravel_pytree(init.z)

    def potential(x, fiducial):
        return potential_energy(model, (), model_kwargs | {"fiducial": fiducial}, unravel(x))

    @jax.jit
    def solve(x, fiducial):
        solution = optx.minimise(potential, optx.BFGS(rtol=tol, atol=tol), x, args=fiducial,
                                 max_steps=max_steps, throw=False)
        mode = postprocess_fn(unravel(solution.value))
        return solution.value, solution.result == optx.RESULTS.successful, mode

    def map_at(x, u):
        fiducial = None if u is None else dict(zip(names, jnp.exp(jnp.asarray(u)), strict=True))
        x, ok, mode = solve(x, fiducial)
        values = np.array([float(mode[n]) for n in names])
        if not bool(ok):
            raise ValueError(f"MAP fit did not converge in {max_steps} BFGS steps")
        if not np.all(values > 0):
            raise ValueError(f"names: the MAP of {names} is not positive ({values})")
        return x, values

    x, mode = map_at(x0, None)
    history = [dict(zip(names, mode.tolist(), strict=True))]
    u = np.log(mode)
    residual, step, jacobian = None, None, -np.eye(len(names))
    for iteration in range(1, max_iterations + 1):
        x, mode = map_at(x, u)
        history.append(dict(zip(names, mode.tolist(), strict=True)))
        new_residual = np.log(mode) - u  # F(u) = ln g(e^u) - u
        if np.all(np.abs(new_residual) <= rtol):
            return FiducialFit(history[-1], tuple(history), iteration)
        if step is not None:  # Broyden's good update: B += (y - B s) s^T / s^T s
            y = new_residual - residual
            jacobian = jacobian + np.outer(y - jacobian @ step, step) / (step @ step)
        residual = new_residual
        step = -np.linalg.solve(jacobian, residual)
        u = u + step
    raise ValueError(
        f"the fiducial did not settle in max_iterations = {max_iterations} fits "
        f"(last MAP {history[-1]})"
    )
