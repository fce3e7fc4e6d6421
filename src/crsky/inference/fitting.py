"""Gradient-based fits of the NumPyro models: MAP with optimistix, uncertainties by Laplace.

:func:`fit_laplace` minimises the model's potential (negative log joint density) in NumPyro's
unconstrained space with BFGS, takes the Hessian there by automatic differentiation, and draws
from the Gaussian ``N(mode, H⁻¹)`` mapped back to the constrained parameters. The mode is that of
the unconstrained density (log-Jacobian of the transforms included), as in NumPyro's
``AutoLaplaceApproximation``; the same models are sampled by
:func:`crsky.inference.sampling.run_nuts`,
which is the reference the Laplace intervals are compared with.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.flatten_util import ravel_pytree
from numpyro.infer.initialization import init_to_median
from numpyro.infer.util import initialize_model

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
