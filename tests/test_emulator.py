"""Emulator: PCHIP interpolation and the table loader.

Reference: ``scipy.interpolate.PchipInterpolator`` (same Fritsch-Carlson slopes), compared at
1e-12 relative (float64 round-off of a cubic). The tables here are SYNTHETIC (made in the test,
not simulated) and exist only to exercise the code.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from crsky import emulator

SIGMA = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
RL = np.array([0.05, 0.1, 0.2])
ELL = np.arange(1, 9)


def synthetic_ratio(sigma, rl, ell):
    """A smooth, made-up Ĉ_l/Ĉ_1 (=1 at l=1) for tests only."""
    p = 0.3 + 0.2 * np.tanh(np.log(sigma)) + 0.1 * np.log(rl / 0.1)
    return (ell / 1.0) ** (-1.5 - p)


def write_table(path, sigma=SIGMA, rl=RL, ell=ELL):
    lines = ["# kind: crsky emulator table", "# synthetic: true (test only)",
             "sigma,rl_over_lc,ell,ratio,error"]
    for s in sigma:
        for r in rl:
            for e in ell:
                ratio = float(synthetic_ratio(s, r, e))
                lines.append(f"{s},{r},{e},{ratio!r},{0.0 if e == 1 else 0.05 * ratio!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("y", [
    np.array([0.0, 1.0, 1.5, 4.0, 4.1]),  # monotone
    np.array([1.0, 3.0, 2.0, 2.5, -1.0]),  # extrema, sign changes
    np.array([2.0, 1.0, 0.9, 0.2, 0.1]),
])
def test_pchip_matches_scipy(y):
    x = np.log(SIGMA)
    t = np.linspace(x[0], x[-1], 57)
    got = jax.vmap(lambda s: emulator.pchip(jnp.asarray(x), jnp.asarray(y), s))(t)
    np.testing.assert_allclose(got, PchipInterpolator(x, y)(t), rtol=1e-12, atol=1e-14)
    slopes = emulator.pchip_slopes(jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(slopes, PchipInterpolator(x, y).derivative()(x), rtol=1e-12,
                               atol=1e-14)


def test_pchip_gradient_matches_scipy_derivative():
    x, y = np.log(SIGMA), np.array([0.0, 1.0, 1.5, 4.0, 4.1])
    t = np.array([-1.2, -0.1, 0.3, 1.0])
    grad = jax.vmap(jax.grad(lambda s: emulator.pchip(jnp.asarray(x), jnp.asarray(y), s)))(t)
    np.testing.assert_allclose(grad, PchipInterpolator(x, y).derivative()(t), rtol=1e-12)


def test_load_and_evaluate_2d_table(tmp_path):
    emu = emulator.load_emulator(write_table(tmp_path / "emu.csv"))
    assert emu.ratio.shape == (5, 3, 8)
    # numpy, not JAX, arrays: loading must not start JAX (crsky infer sets the device count after)
    for array in (emu.sigma, emu.rl_over_lc, emu.ell, emu.ratio, emu.error):
        assert type(array) is np.ndarray
    assert emu.meta["synthetic"].startswith("true")
    # On grid nodes the interpolant reproduces the table exactly.
    ratio, error = emulator.evaluate(emu, 1.0, 0.1)
    np.testing.assert_allclose(ratio, synthetic_ratio(1.0, 0.1, ELL), rtol=1e-13)
    np.testing.assert_allclose(error[1:], 0.05 * ratio[1:], rtol=1e-13)
    # Between nodes: tensor-product PCHIP = scipy along ln(rl), then along ln(sigma).
    s, r = 0.7, 0.13
    along_r = PchipInterpolator(np.log(RL), np.moveaxis(np.asarray(emu.ratio), 1, 0))(np.log(r))
    expected = PchipInterpolator(np.log(SIGMA), along_r)(np.log(s))
    np.testing.assert_allclose(emulator.evaluate(emu, s, r)[0], expected, rtol=1e-12)
    # Differentiable in sigma and rl (finite difference, step 1e-6: agreement to 1e-6).
    f = lambda s, r: emulator.evaluate(emu, s, r)[0][4]  # noqa: E731
    g = jax.grad(f, argnums=(0, 1))(s, r)
    fd = [(f(s + 1e-6, r) - f(s - 1e-6, r)) / 2e-6, (f(s, r + 1e-6) - f(s, r - 1e-6)) / 2e-6]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_single_rl_table_and_ell_index(tmp_path):
    emu = emulator.load_emulator(write_table(tmp_path / "emu.csv", rl=[0.1]))
    ratio, _ = emulator.evaluate(emu, 2.0)
    np.testing.assert_allclose(ratio, synthetic_ratio(2.0, 0.1, ELL), rtol=1e-13)
    np.testing.assert_array_equal(emu.ell_index([2, 5]), [1, 4])
    with pytest.raises(ValueError, match=r"no ell \[9, 10\]"):
        emu.ell_index([2, 9, 10])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("sigma,rl_over_lc,ell,ratio,error", "sigma,ell,ratio,error"), "columns"),
    (lambda t: re.sub(r"^(0.25,0.1,3,)[^,]+", r"\1nan", t, flags=re.M), "'ratio': value must be"),
    (lambda t: t + "0.25,0.1,3,1.0,0.1\n", "duplicate grid point"),
    (lambda t: "\n".join(t.splitlines()[:-1]) + "\n", "grid is incomplete"),
    (lambda t: t.replace(",0.05,", ",-0.05,", 1), "must be > 0"),
])
def test_loader_errors(tmp_path, edit, message):
    path = write_table(tmp_path / "emu.csv")
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=message):
        emulator.load_emulator(path)


def test_build_table_from_simulations_round_trips(tmp_path):
    """A tiny σ grid of real back-tracking runs -> a table that load_emulator accepts."""
    from crsky.emulator import build_table, load_emulator
    from crsky.ensemble import SimulationConfig

    base = SimulationConfig(nside=2, realisations=3, modes=16, t_omega_max=20.0, n_times=2,
                            dtype="float64")
    out = build_table(base, [0.5, 1.0], tmp_path / "runs", tmp_path / "emu.csv",
                      command="test", progress=False)
    emulator = load_emulator(out)
    assert emulator.meta["synthetic"] == "false" and emulator.meta["command"] == "test"
    np.testing.assert_allclose(emulator.sigma, [0.5, 1.0])
    np.testing.assert_array_equal(emulator.ell, np.arange(1, 5))  # ell_max = 2 nside
    np.testing.assert_allclose(emulator.ratio[..., 0], 1.0)  # Ĉ_1/Ĉ_1
    np.testing.assert_allclose(emulator.error[..., 0], 0.0, atol=1e-12)
    assert np.all(np.asarray(emulator.error[..., 1:]) > 0)
    with pytest.raises(ValueError, match="exists"):
        build_table(base, [0.5, 1.0], tmp_path / "runs", out, progress=False)


def test_jackknife_error_of_a_mean_is_the_standard_error():
    """For a statistic linear in the realisations the jackknife equals std/sqrt(n)."""
    from crsky.emulator import _subset

    x = np.random.default_rng(0).normal(size=(7, 3))
    run = {"rr_mean": x, "indices": np.arange(7)}
    loo = np.stack([_subset(run, np.arange(7) != i)["rr_mean"].mean(0) for i in range(7)])
    jack = np.sqrt(6 / 7 * np.sum((loo - loo.mean(0)) ** 2, axis=0))
    np.testing.assert_allclose(jack, x.std(0, ddof=1) / np.sqrt(7), rtol=1e-12)


def test_spectrum_shape_jackknife_computes_one_orientation(tmp_path, monkeypatch):
    """Ĉ_l/Ĉ_1 and its leave-one-out jackknife error equal a direct numpy jackknife over the
    two-orientation statistics, while only the requested orientation is computed."""
    from crsky import ensemble, runfile

    config = ensemble.SimulationConfig(nside=2, realisations=4, modes=16, t_omega_max=20.0,
                                       n_times=2, dtype="float64")
    ensemble.run_ensemble(config, tmp_path / "run.h5", progress=False)
    run = runfile.load(tmp_path / "run.h5")
    per_realisation = [k for k in run if k.startswith(("spectra/", "rr_", "r_mean"))]

    def shape(r, orientation):
        cl_hat = np.asarray(ensemble.anisotropy(r)[orientation]["cl_hat"][-1])
        return cl_hat / cl_hat[1]

    calls = []
    original = ensemble.ensemble_statistics
    monkeypatch.setattr(ensemble, "ensemble_statistics",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    for orientation in ("parallel", "perpendicular"):
        calls.clear()
        ratio, error = emulator.spectrum_shape(run, orientation)
        assert len(calls) == 1 + 4  # the full ensemble and each leave-one-out subset
        expected = shape(run, orientation)
        loo = np.stack([
            shape(run | {k: np.delete(run[k], i, axis=0) for k in per_realisation}
                  | {"indices": np.delete(run["indices"], i)}, orientation)
            for i in range(4)
        ])
        jackknife = np.sqrt(3 / 4 * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))
        np.testing.assert_allclose(ratio, expected, rtol=1e-13)
        np.testing.assert_allclose(error, jackknife, rtol=1e-10)
        assert np.all(error[2:] > 0)
    with pytest.raises(ValueError, match="orientation"):
        emulator.spectrum_shape(run, "diagonal")
