"""How long do pathwise gradients dC_l/dsigma stay informative?

For R field realisations (keys fold_in(seed, i)) at the reference-like parameters (sigma^2 = 1,
r_L = 0.1 Lc, lambda_min = 0.01 Lc, lambda_max = 100 Lc; nside and modes reduced for a CPU) this
measures, at log-spaced back-tracking times tOmega:

- the pathwise gradients g_i(T) = dS_i/dsigma of two C_l-based scalars of realisation i,
  the dipole S = C_1 and the l >= 1 power S = sum_{l>=1} (2l+1) C_l / 4pi (rel.-diffusion paper
  eq. (2.7)), by reverse-mode AD through :func:`crsky.physics.pathwise.liouville_cl`;
- the derivative of the ensemble mean, D(T) = mean_i [S_i(sigma + h) - S_i(sigma - h)] / 2h,
  by finite differences over a larger step h with common random numbers (same keys), which
  stays bounded where the pathwise g_i blow up;
- the maximal Lyapunov exponent lambda_L (per unit tOmega) from the separation of trajectories
  whose arrival directions differ by 1e-9 rad (an independent measure of the chaos).

Two definitions of "informative", both log-interpolated between saved times:

- chaotic excess eta(T) = std_i(g_i) / std_i(FD_i), FD_i = [S_i(sigma + h) - S_i(sigma - h)] / 2h
  the same realisation's slope over the step h. eta ~ 1 while S_i(sigma) is smooth on the scale
  h; beyond, S_i(sigma) wiggles on ever finer scales and the pathwise mean estimates d<S>/dsigma
  with eta^2 times the variance of the FD of ensemble means. Horizon: first tOmega with eta > 2.
- ensemble signal-to-noise SNR_R = sqrt(R) |D| / std_i(g_i) of the pathwise mean over R
  realisations. Horizon: first tOmega with SNR_R < 1; since std_i(g_i) grows like e^{gamma T},
  it moves only by ln(R) / (2 gamma).

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gradient_horizon.py --out DIR
Writes DIR/gradient_horizon.json and DIR/gradient_horizon.png.
"""

import argparse
import json
import math
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crsky.physics import pathwise, sky, spectra  # noqa: E402
from crsky.physics.tracing import backtrack, healpix_directions  # noqa: E402
from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes  # noqa: E402

SCALARS = ("dipole", "power_l_ge_1")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--realisations", type=int, default=32)
    parser.add_argument("--nside", type=int, default=2)
    parser.add_argument("--modes", type=int, default=32)
    parser.add_argument("--sigma2", type=float, default=1.0)
    parser.add_argument("--r-larmor", type=float, default=0.1)
    parser.add_argument("--dt", type=float, default=0.02, help="Boris step, 1/Omega")
    parser.add_argument("--t-omega-max", type=float, default=100.0)
    parser.add_argument("--n-times", type=int, default=16)
    parser.add_argument("--fd-step", type=float, default=0.1, help="FD step h in sigma")
    parser.add_argument(
        "--kappa", type=float, nargs=2, default=(0.025, 0.54), metavar=("PERP", "PAR"),
        help="K = diag(perp, perp, par) in the Liouville map, Lc c",
    )
    parser.add_argument("--orientation", default="parallel", choices=sky.ORIENTATIONS)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def scalars(cl):
    """(n_times, lmax + 1) C_l -> (2, n_times): C_1 and sum_{l>=1} (2l+1) C_l / 4pi."""
    weight = (2 * jnp.arange(cl.shape[-1]) + 1) / (4 * jnp.pi)
    # Rel.-diffusion paper eq. (2.7): the l >= 1 power (1/4pi) sum_{l>=1} (2l+1) C_l
    return jnp.stack([cl[:, 1], cl[:, 1:] @ weight[1:]])


def ln_separation(modes, directions, tau, r_larmor, dt, delta=1e-9):
    """<ln(d/d0)> over the trajectories of ``directions`` at the times ``tau``, (n_times,):
    d = |dr|/r_L + |dp| the phase-space separation from the trajectory whose arrival direction
    is turned by d0 = ``delta`` rad about an axis perpendicular to it."""
    axis = jnp.cross(directions, jnp.array([0.3, -0.5, 0.81]))
    axis = axis / jnp.linalg.norm(axis, axis=-1, keepdims=True)
    shifted = directions * math.cos(delta) + jnp.cross(axis, directions) * math.sin(delta)
    a = backtrack(modes, directions, tau, r_larmor, dt=dt)
    b = backtrack(modes, shifted, tau, r_larmor, dt=dt)
    d = jnp.linalg.norm(a.r - b.r, axis=-1) / r_larmor + jnp.linalg.norm(a.p - b.p, axis=-1)
    return jnp.mean(jnp.log(d / delta), axis=-1)


def lyapunov_exponent(tau, ln_sep, delta=1e-9):
    """Slope of <ln d> in tΩ for tΩ ≥ 5, before saturation (d < 1e-3)."""
    fit = (ln_sep + math.log(delta) < math.log(1e-3)) & (tau >= 5)
    return float(np.polyfit(tau[fit], ln_sep[fit], 1)[0])


def lyapunov(keys, args, tau):
    """:func:`ln_separation` averaged over the realisations of ``keys``, (n_times,)."""
    dirs = healpix_directions(args.nside)

    @jax.jit
    def one(key):
        modes = sample_modes(
            key, TurbulenceSpectrum(sigma=math.sqrt(args.sigma2), n_modes=args.modes)
        )
        return ln_separation(modes, dirs, tau, args.r_larmor, args.dt)

    return np.mean([np.asarray(one(k)) for k in keys], axis=0)


def horizon(tau, snr):
    """First tOmega where snr < 1, log-interpolated between saved times (NaN if never)."""
    below = np.flatnonzero(np.asarray(snr) < 1)
    if below.size == 0:
        return float("nan")
    j = below[0]
    if j == 0:
        return float(tau[0])
    x0, x1 = np.log(tau[j - 1]), np.log(tau[j])
    y0, y1 = np.log(snr[j - 1]), np.log(snr[j])
    return float(np.exp(x0 + (x1 - x0) * y0 / (y0 - y1)))


def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sigma = math.sqrt(args.sigma2)
    tau = np.geomspace(1.0, args.t_omega_max, args.n_times)
    g = sky.reference_gradient(args.orientation)
    K = jnp.diag(jnp.array([args.kappa[0], args.kappa[0], args.kappa[1]]))
    plan = spectra.make_plan(args.nside, 2 * args.nside)
    keys = [jax.random.fold_in(jax.random.PRNGKey(args.seed), i) for i in range(args.realisations)]

    def s_of(s, key):
        return scalars(pathwise.liouville_cl(
            key, TurbulenceSpectrum(sigma=s, n_modes=args.modes), tau, g, K, nside=args.nside,
            r_larmor=args.r_larmor,
            dt=args.dt, plan=plan,
        ))

    value = jax.jit(s_of)
    grad = jax.jit(jax.jacrev(s_of))
    start = time.perf_counter()
    s0, pathwise_grad, fd = [], [], []
    for key in keys:
        s0.append(np.asarray(value(sigma, key)))
        pathwise_grad.append(np.asarray(grad(sigma, key)))
        plus, minus = value(sigma + args.fd_step, key), value(sigma - args.fd_step, key)
        fd.append(np.asarray((plus - minus) / (2 * args.fd_step)))
    wall = time.perf_counter() - start
    s0, pathwise_grad, fd = map(np.array, (s0, pathwise_grad, fd))  # (R, 2, n_times)
    n_real = len(keys)
    g_mean, g_std = pathwise_grad.mean(0), pathwise_grad.std(0, ddof=1)
    d_mean, d_err = fd.mean(0), fd.std(0, ddof=1) / math.sqrt(n_real)
    snr = math.sqrt(n_real) * np.abs(d_mean) / g_std
    eta = g_std / fd.std(0, ddof=1)
    corr = np.array([[np.corrcoef(pathwise_grad[:, i, t], fd[:, i, t])[0, 1]
                      for t in range(tau.size)] for i in range(len(SCALARS))])
    z = (g_mean - d_mean) / np.sqrt(g_std**2 / n_real + d_err**2)
    ln_sep = lyapunov(keys[: min(8, n_real)], args, tau)
    lam = lyapunov_exponent(tau, ln_sep)
    # growth rate gamma of the pathwise-gradient spread, fitted where eta > 2 (chaotic regime)
    growth = {}
    for i, name in enumerate(SCALARS):
        late = eta[i] > 2
        growth[name] = (
            float(np.polyfit(tau[late], np.log(g_std[i][late]), 1)[0]) if late.sum() >= 3
            else float("nan")
        )

    result = {
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "definition": (
            "g_i pathwise dS_i/dsigma, FD_i its slope over +-h (same key), D = mean_i FD_i; "
            "eta = std(g)/std(FD), horizon_eta: first tOmega with eta > 2; "
            "SNR_R = sqrt(R)|D|/std(g), horizon_snr: first tOmega with SNR_R < 1"
        ),
        "wall_seconds": wall,
        "t_omega": tau.tolist(),
        "lyapunov_ln_separation": ln_sep.tolist(),
        "lyapunov_exponent_per_t_omega": lam,
        "scalars": {},
    }
    for i, name in enumerate(SCALARS):
        result["scalars"][name] = {
            "mean": s0[:, i].mean(0).tolist(),
            "pathwise_mean": g_mean[i].tolist(),
            "pathwise_std": g_std[i].tolist(),
            "fd_mean": d_mean[i].tolist(),
            "fd_err": d_err[i].tolist(),
            "fd_std": fd[:, i].std(0, ddof=1).tolist(),
            "eta": eta[i].tolist(),
            "corr_pathwise_fd": corr[i].tolist(),
            "snr_R": snr[i].tolist(),
            "z_pathwise_minus_fd": z[i].tolist(),
            "horizon_eta": horizon(tau, 2 / eta[i]),
            "horizon_snr": horizon(tau, snr[i]),
            "spread_growth_rate_per_t_omega": growth[name],
        }
    (args.out / "gradient_horizon.json").write_text(json.dumps(result, indent=1))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, name in enumerate(SCALARS):
        ax = axes[i]
        ax.loglog(tau, np.abs(d_mean[i]), "k-", label=f"|FD of ensemble mean| (h={args.fd_step})")
        ax.loglog(tau, fd[:, i].std(0, ddof=1), "g-", label="std of per-realisation FD")
        ax.loglog(tau, g_std[i], "r-", label="std of pathwise gradient")
        ax.loglog(tau, np.abs(g_mean[i]), "b--", label="|mean pathwise gradient|")
        ax.loglog(tau, g_std[i] / math.sqrt(n_real), "r:", label=f"std/sqrt(R), R={n_real}")
        ax.axvline(result["scalars"][name]["horizon_eta"], color="gray", ls=":")
        ax.set_xlabel("tΩ")
        ax.set_title(f"d/dσ of {name} ({args.orientation} gradient)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "gradient_horizon.png", dpi=120)
    print(json.dumps({k: result[k] for k in ("wall_seconds", "lyapunov_exponent_per_t_omega")}))
    for name, r in result["scalars"].items():
        print(name, {k: r[k] for k in r if k.startswith(("horizon", "spread"))})


if __name__ == "__main__":
    main()
