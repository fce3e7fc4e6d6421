"""Smooth, differentiable emulator of the simulated spectrum shape ``Ĉ_l/Ĉ_1`` over ``σ``.

The relative-diffusion paper's back-tracking ensembles give ``Ĉ_l = ⟨C_l⟩ − N`` (eq. 3.1) for one
turbulence level ``σ`` (and ``r_L/Lc``) per run. An emulator table collects, on a grid of
``σ`` (and optionally ``r_L/Lc``), the ratio ``Ĉ_l/Ĉ_1`` with its simulation error (standard
error over field realisations). :func:`evaluate` interpolates it with a monotone piecewise-cubic
Hermite spline (PCHIP, Fritsch & Carlson 1980) in ``ln σ`` and ``ln(r_L/Lc)``: C¹, no
overshoot between grid points (positive ratios stay positive), and differentiable in both.

Table format (CSV, ``# key: value`` header lines first)::

    # kind: crsky emulator table
    # synthetic: false          # true only for test tables that were not simulated
    # config: ...               # the ensemble configuration(s) that made it
    # command: ...              # the command that rebuilds it
    sigma,rl_over_lc,ell,ratio,error

with one row per (sigma, rl_over_lc, ell) on a full grid; ``ratio = 1`` and ``error = 0`` at
``ell = 1``; ``error >= 0`` elsewhere.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from crsky.io import read_table

EMULATOR_COLUMNS = ("sigma", "rl_over_lc", "ell", "ratio", "error")


@dataclass(frozen=True)
class Emulator:
    """An emulator table on a full grid.

    ``sigma``: (n_s,) turbulence levels ``σ = sqrt(⟨δB²⟩)/B0``, increasing;
    ``rl_over_lc``: (n_r,) Larmor radii in ``Lc``, increasing (n_r = 1: a fixed value);
    ``ell``: (n_l,) multipoles; ``ratio``, ``error``: (n_s, n_r, n_l) ``Ĉ_l/Ĉ_1`` and its
    simulation standard error; ``meta``: header lines. Arrays are numpy: loading a table does
    not start JAX (so a caller can still set the CPU device count, e.g. for parallel chains).
    """

    sigma: np.ndarray
    rl_over_lc: np.ndarray
    ell: np.ndarray
    ratio: np.ndarray
    error: np.ndarray
    meta: dict = field(default_factory=dict)

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


def evaluate(emulator: Emulator, sigma, rl_over_lc=None):
    """``(ratio, error)`` at ``σ`` (and ``r_L/Lc``), each of shape (n_l,) over ``emulator.ell``.

    Interpolation is PCHIP in ``ln σ`` and ``ln(r_L/Lc)``, clamped to the grid (callers keep
    their priors inside it, see :func:`crsky.models.spectrum_sigma_model`). ``rl_over_lc`` is
    ignored when the table has a single ``r_L/Lc``.
    """
    values = jnp.stack([emulator.ratio, emulator.error])  # (2, n_s, n_r, n_l)
    values = jnp.moveaxis(values, 0, -1)  # (n_s, n_r, n_l, 2)
    if emulator.rl_over_lc.shape[0] > 1:
        along_r = jnp.moveaxis(values, 1, 0)  # (n_r, n_s, n_l, 2)
        values = pchip(jnp.log(emulator.rl_over_lc), along_r, jnp.log(rl_over_lc))
    else:
        values = values[:, 0]
    out = pchip(jnp.log(emulator.sigma), values, jnp.log(sigma))
    return out[..., 0], out[..., 1]


def load_emulator(path: str | Path) -> Emulator:
    """Read and validate an emulator table (format in the module docstring).

    ``ValueError`` names the file, line and column: missing column, non-finite value,
    ``sigma``/``rl_over_lc`` <= 0, negative error, duplicate or missing grid points.
    """
    path = Path(path)
    meta, header, number, cells = read_table(path, "emulator table")
    if sorted(header) != sorted(EMULATOR_COLUMNS):
        raise ValueError(f"{path}, line {number}: columns must be {', '.join(EMULATOR_COLUMNS)}")
    rows = {}
    for number, line in cells:
        row = {}
        for column, cell in zip(header, line, strict=True):
            where = f"{path}, line {number}, column {column!r}"
            try:
                row[column] = float(cell)
            except ValueError:
                raise ValueError(f"{where}: {cell!r} is not a number") from None
            if not math.isfinite(row[column]):
                raise ValueError(f"{where}: value must be finite, got {cell!r}")
            if column in ("sigma", "rl_over_lc", "ell") and row[column] <= 0:
                raise ValueError(f"{where}: must be > 0, got {cell!r}")
            if column == "error" and row[column] < 0:
                raise ValueError(f"{where}: error must be >= 0, got {cell!r}")
        key = (row["sigma"], row["rl_over_lc"], int(row["ell"]))
        if key in rows:
            raise ValueError(f"{path}, line {number}: duplicate grid point {key}")
        rows[key] = (row["ratio"], row["error"])
    axes = [sorted({k[i] for k in rows}) for i in range(3)]
    grid = [(s, r, e) for s in axes[0] for r in axes[1] for e in axes[2]]
    absent = [g for g in grid if g not in rows]
    if absent:
        raise ValueError(f"{path}: the (sigma, rl_over_lc, ell) grid is incomplete: no {absent[0]}")
    if 1 not in axes[2]:
        raise ValueError(f"{path}: the table needs ell = 1 (the normalisation of Ĉ_l/Ĉ_1)")
    shape = tuple(len(a) for a in axes)
    values = np.asarray([rows[g] for g in grid], dtype=float).reshape(*shape, 2)
    return Emulator(
        sigma=np.asarray(axes[0], dtype=float),
        rl_over_lc=np.asarray(axes[1], dtype=float),
        ell=np.asarray(axes[2], dtype=int),
        ratio=values[..., 0],
        error=values[..., 1],
        meta=meta,
    )


def _subset(run: dict, keep: np.ndarray) -> dict:
    """A loaded run restricted to the realisations where ``keep`` is True."""
    stacked = {k: v[keep] for k, v in run.items() if k.startswith(("spectra/", "rr_", "r_mean"))}
    return run | stacked | {"indices": run["indices"][keep]}


def spectrum_shape(run: dict, orientation: str = "parallel") -> tuple[np.ndarray, np.ndarray]:
    """``Ĉ_l/Ĉ_1`` at the last saved time of a loaded run, with its jackknife error.

    ``Ĉ_l = ⟨C_l⟩ − N`` (rel.-diffusion paper eq. 3.1) for the unit gradient ``orientation``
    (``"parallel"`` or ``"perpendicular"`` to B0). The error is the leave-one-realisation-out
    jackknife, which carries the correlation between ``Ĉ_l`` and ``Ĉ_1``.

    Returns:
        ``(ratio, error)``, each of shape (lmax + 1,) over ``l = 0 … lmax``.
    """
    from crsky import _validate, sky
    from crsky.ensemble import anisotropy

    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)

    def ratio(r):
        cl_hat = np.asarray(anisotropy(r, orientations=(orientation,))[orientation]["cl_hat"][-1])
        return cl_hat / cl_hat[1]

    n = len(run["indices"])
    if n < 2:
        raise ValueError("the run needs at least 2 realisations for a jackknife error")
    full = ratio(run)
    leave_one_out = np.stack([ratio(_subset(run, np.arange(n) != i)) for i in range(n)])
    # jackknife variance: (n − 1)/n Σ (θ_i − θ̄)²
    spread = leave_one_out - leave_one_out.mean(axis=0)
    return full, np.sqrt((n - 1) / n * np.sum(spread**2, axis=0))


def build_table(
    base, sigmas, runs_dir: str | Path, out: str | Path, *, orientation: str = "parallel",
    command: str = "", progress: bool = True,
) -> Path:
    """Run back-tracking ensembles over a σ grid and write the emulator table ``out``.

    Args:
        base: :class:`crsky.ensemble.SimulationConfig`; its ``sigma2`` is replaced by each σ².
        sigmas: turbulence levels σ (increasing, > 0).
        runs_dir: folder for the run files (``sigma_<σ>.h5``); existing ones are resumed, so an
            interrupted build continues where it stopped.
        out: the CSV table to write (format in the module docstring); must not exist.
        orientation: gradient orientation of the spectra (``"parallel"``/``"perpendicular"``).
        command: the command line that rebuilds the table (recorded in the header).

    Returns:
        ``out``. The table holds ``ℓ = 1 … ell_max`` of the runs at the last saved time.
    """
    import dataclasses
    import json

    from crsky import _validate, runfile, sky
    from crsky.ensemble import run_ensemble

    _validate.increasing("sigmas", sigmas)
    _validate.one_of("orientation", orientation, sky.ORIENTATIONS)
    out, runs_dir = Path(out), Path(runs_dir)
    if out.exists():
        raise ValueError(f"out {str(out)!r} exists; remove it first")
    runs_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for sigma in sigmas:
        config = dataclasses.replace(base, sigma2=float(sigma) ** 2)
        path = runs_dir / f"sigma_{sigma:.6g}.h5"
        run_ensemble(config, path, resume=path.exists(), progress=progress)
        ratio, error = spectrum_shape(runfile.load(path), orientation)
        rows += [(sigma, base.r_larmor, ell, ratio[ell], error[ell])
                 for ell in range(1, ratio.size)]
    settings = {k: v for k, v in base.to_dict().items() if k != "sigma2"}
    header = [
        "kind: crsky emulator table",
        "synthetic: false",
        f"orientation: {orientation}",
        f"time: t_omega = {base.t_omega[-1]:g} (last saved time)",
        f"config: {json.dumps(settings, sort_keys=True)}",
        f"command: {command}",
    ]
    lines = [f"# {h}" for h in header] + [",".join(EMULATOR_COLUMNS)]
    lines += [f"{s:.6g},{r:.6g},{e},{x:.8e},{dx:.8e}" for s, r, e, x, dx in rows]
    out.write_text("\n".join(lines) + "\n")
    return out
