"""Running diffusion tensor from back-tracked ensembles.

Relative-diffusion paper, section 2: ``⟨r_i(−T) r_j(−T)⟩ → 2 T K^s_ij`` at large back-tracking
times, so the running estimate is ``K_ij(T) = ⟨r_i r_j⟩ / (2T)``. With the regular field along ẑ,
``κ∥ = K_zz`` and ``κ⊥ = (K_xx + K_yy)/2``.

Units: r in Lc, T = τ r_L in Lc/c (τ = tΩ), so K is in Lc·c.

The ensemble is reduced in two stages so that long runs can stream: :func:`position_moments`
summarises one realisation (averages over its trajectories), :func:`diffusion_tensor` combines
realisations. Trajectories of one realisation share a field and are correlated, so the error is
the scatter between realisations; with a single realisation the trajectory scatter is used
instead (an underestimate, flagged in the docstring of the result).
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class PositionMoments(eqx.Module):
    """Per-realisation trajectory averages at each saved time.

    Attributes:
        r_mean: ⟨r_i⟩ over trajectories, shape (n_times, 3), Lc.
        rr_mean: ⟨r_i r_j⟩, shape (n_times, 3, 3), Lc².
        rr_var: variance of r_i r_j over trajectories, shape (n_times, 3, 3), Lc⁴.
        n: number of trajectories.
    """

    r_mean: Float[Array, "n_times 3"]
    rr_mean: Float[Array, "n_times 3 3"]
    rr_var: Float[Array, "n_times 3 3"]
    n: int = eqx.field(static=True)


def position_moments(r: Float[Array, "n_times m 3"]) -> PositionMoments:
    """Trajectory averages of r and r rᵀ for one realisation; ``r`` of shape (n_times, M, 3)."""
    r = jnp.asarray(r)
    rr = r[..., :, None] * r[..., None, :]
    return PositionMoments(
        r_mean=jnp.mean(r, axis=-2),
        rr_mean=jnp.mean(rr, axis=-3),
        rr_var=jnp.var(rr, axis=-3),
        n=r.shape[-2],
    )


class DiffusionTensor(eqx.Module):
    """Running diffusion tensor K_ij(T) with its statistical error.

    Attributes:
        t: back-tracking time T in Lc/c, shape (n_times,).
        K: K_ij(T) = ⟨r_i r_j⟩/(2T), shape (n_times, 3, 3), Lc·c.
        K_err: standard error of K, same shape (between-realisation scatter / sqrt(R); with one
            realisation, trajectory scatter / sqrt(M), which ignores their correlation).
        kappa_perp_err: standard error of κ⊥, shape (n_times,), from the scatter of
            (K_xx + K_yy)/2 itself (K_xx and K_yy of one realisation are correlated).
    """

    t: Float[Array, " n_times"]
    K: Float[Array, "n_times 3 3"]
    K_err: Float[Array, "n_times 3 3"]
    kappa_perp_err: Float[Array, " n_times"]

    @property
    def kappa_parallel(self) -> Float[Array, " n_times"]:
        """κ∥ = K_zz (regular field along ẑ), Lc·c."""
        return self.K[:, 2, 2]

    @property
    def kappa_perp(self) -> Float[Array, " n_times"]:
        """κ⊥ = (K_xx + K_yy)/2, Lc·c."""
        return 0.5 * (self.K[:, 0, 0] + self.K[:, 1, 1])

    @property
    def kappa_parallel_err(self) -> Float[Array, " n_times"]:
        return self.K_err[:, 2, 2]



def diffusion_tensor(
    rr_mean: Float[Array, "r n_times 3 3"],
    t: Float[Array, " n_times"],
    rr_var: Float[Array, "r n_times 3 3"] | None = None,
    n_trajectories: int | None = None,
) -> DiffusionTensor:
    """Combine per-realisation ⟨r_i r_j⟩ (shape (R, n_times, 3, 3)) into K_ij(T).

    ``t`` is the back-tracking time in Lc/c (τ r_L). ``rr_var`` and ``n_trajectories`` are used
    for the error only when R = 1.
    """
    rr_mean = jnp.asarray(rr_mean)
    n_real = rr_mean.shape[0]
    two_t = 2 * jnp.asarray(t)[:, None, None]
    # ⟨r_i r_j⟩ → 2T K_ij (rel.-diffusion paper, section 2)
    K = jnp.mean(rr_mean, axis=0) / two_t
    perp = 0.5 * (rr_mean[..., 0, 0] + rr_mean[..., 1, 1])
    if n_real > 1:
        err = jnp.std(rr_mean, axis=0, ddof=1) / np.sqrt(n_real)
        perp_err = jnp.std(perp, axis=0, ddof=1) / np.sqrt(n_real)
    elif rr_var is not None and n_trajectories:
        err = jnp.sqrt(jnp.asarray(rr_var)[0] / n_trajectories)
        perp_err = 0.5 * (err[:, 0, 0] + err[:, 1, 1])  # fully correlated: an upper bound
    else:
        err = jnp.full_like(K, jnp.nan)
        perp_err = jnp.full_like(perp[0], jnp.nan)
    return DiffusionTensor(
        t=jnp.asarray(t), K=K, K_err=err / two_t, kappa_perp_err=perp_err / two_t[:, 0, 0]
    )
