"""Emulator: PCHIP interpolation and the table loader.

Reference: ``scipy.interpolate.PchipInterpolator`` (same Fritsch-Carlson slopes), compared at
1e-12 relative (float64 round-off of a cubic). The tables here are SYNTHETIC (made in the test,
not simulated) and exist only to exercise the code.
"""

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from crsky.inference import emulator
from crsky.io import tables

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
    emu = tables.load_emulator(write_table(tmp_path / "emu.csv"))
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
    emu = tables.load_emulator(write_table(tmp_path / "emu.csv", rl=[0.1]))
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
        tables.load_emulator(path)


def test_build_table_from_simulations_round_trips(tmp_path):
    """A tiny σ grid of real back-tracking runs -> a table that load_emulator accepts."""
    from crsky.io.tables import load_emulator
    from crsky.pipelines.ensemble import SimulationConfig
    from crsky.pipelines.tabulate import build_table

    base = SimulationConfig(nside=2, realisations=3, modes=16, t_omega_max=20.0, n_times=2,
                            dtype="float64")
    out = build_table(base, [0.5, 1.0], [0.1], tmp_path / "runs", tmp_path / "emu.csv",
                      test_realisations=2, command="test", progress=False)
    emulator = load_emulator(out)
    assert emulator.meta["synthetic"] == "false" and emulator.meta["command"] == "test"
    np.testing.assert_allclose(emulator.sigma, [0.5, 1.0])
    np.testing.assert_array_equal(emulator.ell, np.arange(1, 5))  # ell_max = 2 nside
    np.testing.assert_allclose(emulator.ratio[..., 0], 1.0)  # Ĉ_1/Ĉ_1
    np.testing.assert_allclose(emulator.error[..., 0], 0.0, atol=1e-12)
    assert np.all(np.asarray(emulator.error[..., 1:]) > 0)
    steps = json.loads(emulator.meta["steps"])
    assert set(steps) == {"0.5,0.1", "1,0.1"}
    for node in steps.values():  # each node's step passed its test against half the step
        assert node["dt"] == node["tried"][-1][0] and node["tried"][-1][1] <= node["z_max"]
    with pytest.raises(FileExistsError, match="exists"):
        build_table(base, [0.5, 1.0], [0.1], tmp_path / "runs", out, progress=False)


def test_jackknife_error_of_a_mean_is_the_standard_error():
    """For a statistic linear in the realisations the jackknife (leave-one-out subsets by
    Ensemble.select) equals std/sqrt(n)."""
    from crsky.io.run import Ensemble, SimulationConfig

    x = np.random.default_rng(0).normal(size=(7, 3))
    run = Ensemble(config=SimulationConfig(), t_omega=np.ones(1), directions=np.zeros((12, 3)),
                   indices=np.arange(7), arrays={"rr_mean": x}, attrs={})
    loo = np.stack([run.select(np.arange(7) != i).arrays["rr_mean"].mean(0) for i in range(7)])
    jack = np.sqrt(6 / 7 * np.sum((loo - loo.mean(0)) ** 2, axis=0))
    np.testing.assert_allclose(jack, x.std(0, ddof=1) / np.sqrt(7), rtol=1e-12)


def test_spectrum_shape_jackknife_computes_one_orientation(tmp_path, monkeypatch):
    """Ĉ_l/Ĉ_1 and its leave-one-out jackknife error equal a direct numpy jackknife over the
    two-orientation statistics, while only the requested orientation is computed."""
    import dataclasses

    from crsky.io import run as run_module
    from crsky.io import runfile
    from crsky.pipelines import ensemble, tabulate

    config = ensemble.SimulationConfig(nside=2, realisations=4, modes=16, t_omega_max=20.0,
                                       n_times=2, dtype="float64")
    ensemble.run_ensemble(config, tmp_path / "run.h5", progress=False)
    run = runfile.load(tmp_path / "run.h5")

    def shape(r, orientation):
        cl_hat = np.asarray(r.statistics(orientation).cl_hat[-1])
        return cl_hat / cl_hat[1]

    def without(i):  # the ensemble less realisation i, built directly with numpy
        return dataclasses.replace(
            run, indices=np.delete(run.indices, i),
            arrays={k: np.delete(v, i, axis=0) for k, v in run.arrays.items()},
            attrs={k: np.delete(v, i) for k, v in run.attrs.items()},
        )

    calls = []
    original = run_module.ensemble_statistics
    monkeypatch.setattr(run_module, "ensemble_statistics",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    for orientation in ("parallel", "perpendicular"):
        calls.clear()
        ratio, error = tabulate.spectrum_shape(run, orientation)
        assert len(calls) == 1 + 4  # the full ensemble and each leave-one-out subset
        expected = shape(run, orientation)
        loo = np.stack([shape(without(i), orientation) for i in range(4)])
        jackknife = np.sqrt(3 / 4 * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))
        np.testing.assert_allclose(ratio, expected, rtol=1e-13)
        np.testing.assert_allclose(error, jackknife, rtol=1e-10)
        assert np.all(error[2:] > 0)
    with pytest.raises(ValueError, match="orientation"):
        tabulate.spectrum_shape(run, "diagonal")


# --- least-squares fit in ln σ (degree set) ---------------------------------------------------
# Reference: numpy.polyfit with w = 1/error and cov="unscaled" (an SVD least-squares solve; its
# covariance is then (Vᵀ W V)⁻¹, not rescaled by χ²), against crsky's normal equations at 1e-10
# relative (float64 round-off of a conditioned 3 x 3 problem).


def noisy_table(tmp_path, rng, slope=0.4, n_sigma=7, rl=(0.1,)):
    """SYNTHETIC (tests only): ratio = ell^-(2 - slope ln σ) plus Gaussian noise of 10 %."""
    sigma = np.geomspace(0.5, 2.0, n_sigma).tolist()
    lines = ["# kind: crsky emulator table", "# synthetic: true (test only)",
             "sigma,rl_over_lc,ell,ratio,error"]
    for s in sigma:
        for r in rl:
            for e in ELL:
                truth = float(e) ** -(2.0 - slope * float(np.log(s)))
                error = 0.0 if e == 1 else 0.1 * truth
                noisy = truth if e == 1 else truth + error * float(rng.normal())
                lines.append(f"{s!r},{r},{e},{noisy!r},{error!r}")
    path = tmp_path / "noisy.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_matches_polyfit_with_propagated_error(tmp_path):
    emu = tables.load_emulator(noisy_table(tmp_path, np.random.default_rng(1)), degree=2)
    x = np.log(emu.sigma)
    s = 0.83
    ratio, error = emulator.evaluate(emu, s)
    for j in range(1, len(ELL)):
        coef, cov = np.polyfit(x, emu.ratio[:, 0, j], 2, w=1 / emu.error[:, 0, j],
                               cov="unscaled")
        v = np.log(s) ** np.arange(2, -1, -1)  # polyfit: highest power first
        np.testing.assert_allclose(ratio[j], v @ coef, rtol=1e-10)
        np.testing.assert_allclose(error[j], np.sqrt(v @ cov @ v), rtol=1e-10)
    # l = 1 (zero errors) is exact: interpolated, ratio 1, no error, finite derivative
    assert float(ratio[0]) == 1.0 and float(error[0]) == 0.0
    # the fitted mean is better known than one node: its error is below the nodes' errors
    assert np.all(np.asarray(error[1:]) < emu.error[:, 0, 1:].min(axis=0))


def test_fit_quality_chi2_is_the_polyfit_residual_sum(tmp_path):
    emu = tables.load_emulator(noisy_table(tmp_path, np.random.default_rng(5)), degree=1)
    x, expected = np.log(emu.sigma), 0.0
    for j in range(2, 6):  # l = 3 ... 6
        y, w = emu.ratio[:, 0, j], 1 / emu.error[:, 0, j]
        expected += np.sum((w * (y - np.polyval(np.polyfit(x, y, 1, w=w), x))) ** 2)
    quality = emulator.fit_quality(emu, [3, 4, 5, 6, 6])  # a repeated l counts once
    np.testing.assert_allclose(quality["chi2"], expected, rtol=1e-10)
    assert quality["dof"] == 4 * 5
    assert emulator.fit_quality(emu, [1])["p_value"] is None  # l = 1 is exact: nothing fitted


def test_fit_is_clamped_to_the_sigma_grid(tmp_path):
    emu = tables.load_emulator(noisy_table(tmp_path, np.random.default_rng(6)), degree=2)
    for outside, edge in ((0.3, 0.5), (3.0, 2.0)):
        for k in (0, 1):
            np.testing.assert_array_equal(emulator.evaluate(emu, outside)[k],
                                          emulator.evaluate(emu, edge)[k])
            assert float(jax.grad(lambda s, k=k: emulator.evaluate(emu, s)[k][4])(outside)) == 0


def test_fit_in_float32(tmp_path):
    """Without x64 the fit is evaluated in float32: within 1e-5 of float64 (8 digits of a
    conditioned 3 x 3 problem), gradients finite. Run in a fresh process (x64 is global)."""
    import json
    import subprocess
    import sys

    path = noisy_table(tmp_path, np.random.default_rng(7))
    code = f"""
import jax, jax.numpy as jnp, numpy as np
from crsky.inference import emulator
from crsky.io import tables
from crsky.pipelines import tabulate
from crsky.io import tables
emu = tables.load_emulator({str(path)!r}, degree=2)
ratio, error = jax.jit(lambda s: emulator.evaluate(emu, s))(jnp.float32(0.8))
grad = jax.grad(lambda s: jnp.sum(jnp.concatenate(emulator.evaluate(emu, s))))(jnp.float32(0.8))
assert ratio.dtype == jnp.float32 and np.isfinite(grad)
print(json.dumps([np.asarray(ratio, float).tolist(), np.asarray(error, float).tolist()]))
"""
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True,
                         text=True, check=True)
    ratio32, error32 = (np.array(a) for a in json.loads(out.stdout))
    ratio64, error64 = emulator.evaluate(tables.load_emulator(path, degree=2), 0.8)
    np.testing.assert_allclose(ratio32, ratio64, rtol=1e-5)
    np.testing.assert_allclose(error32, error64, rtol=1e-5)


def test_fit_is_differentiable_in_sigma(tmp_path):
    emu = tables.load_emulator(noisy_table(tmp_path, np.random.default_rng(2)), degree=1)
    for k in (0, 1):  # ratio and error, central differences with h = 1e-6
        f = lambda s, k=k: emulator.evaluate(emu, s)[k][3]  # noqa: E731
        fd = (f(0.9 + 1e-6) - f(0.9 - 1e-6)) / 2e-6
        np.testing.assert_allclose(jax.grad(f)(0.9), fd, rtol=1e-6)
    grads = jax.grad(lambda s: jnp.sum(jnp.concatenate(emulator.evaluate(emu, s))))(1.0)
    assert np.isfinite(grads)


def test_fit_quality_accepts_the_true_degree_and_rejects_too_low(tmp_path):
    """The truth is linear in ln σ: degree 1 fits (χ² ~ dof), degree 0 (no σ dependence) not."""
    path = noisy_table(tmp_path, np.random.default_rng(3), slope=0.6, n_sigma=9)
    good = emulator.fit_quality(tables.load_emulator(path, degree=1))
    bad = emulator.fit_quality(tables.load_emulator(path, degree=0))
    assert good["dof"] == 7 * 7 and bad["dof"] == 7 * 8
    assert good["p_value"] > 0.01 and bad["p_value"] < 1e-6


def power_law(s, r, e):
    return float(e) ** -(2.0 - 0.4 * np.log(s) + 0.3 * np.log(r))


def quadratic(s, r, e):
    x, y = np.log(s), np.log(r / 0.1)
    return float(e) ** -2.0 * (1 + 0.1 * (e - 1) * (0.3 * x - 0.2 * y + 0.1 * x * y + 0.05 * x**2))


def plane_table(tmp_path, rng, noise=0.05, truth=power_law):
    """SYNTHETIC (tests only): ratio = truth (1 + noise·N(0, 1)) on a 5 x 4 grid of
    (σ, r_L/Lc), error = noise·truth; ``truth`` ``power_law`` (default) or ``quadratic``."""
    lines = ["# kind: crsky emulator table", "# synthetic: true (test only)",
             "sigma,rl_over_lc,ell,ratio,error"]
    for s in np.geomspace(0.3, 3.0, 5):
        for r in np.geomspace(0.03, 0.3, 4):
            for e in ELL:
                value = float(truth(s, r, e)) / float(truth(s, r, 1))
                error = 0.0 if e == 1 else noise * value
                noisy = value if e == 1 else value + error * float(rng.normal())
                lines.append(f"{float(s)!r},{float(r)!r},{e},{noisy!r},{error!r}")
    path = tmp_path / "plane.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_on_a_2d_table_is_weighted_least_squares_in_both_axes(tmp_path):
    """Reference: numpy.linalg.lstsq on the weighted design matrix of the monomials x^i y^j
    (i + j <= 2) in centred ln σ, ln r; the error of the fitted mean from (Vᵀ W V)⁻¹."""
    emu = tables.load_emulator(plane_table(tmp_path, np.random.default_rng(4)), degree=2)
    x, y = np.meshgrid(np.log(emu.sigma), np.log(emu.rl_over_lc), indexing="ij")
    x0, y0 = x.mean(), y.mean()
    powers = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]
    design = np.stack([(x - x0).ravel() ** i * (y - y0).ravel() ** j for i, j in powers], 1)
    s, r = 1.3, 0.07
    v = np.array([(np.log(s) - x0) ** i * (np.log(r) - y0) ** j for i, j in powers])
    ratio, error = emulator.evaluate(emu, s, r)
    for k in range(1, len(ELL)):
        w = 1 / emu.error[..., k].ravel()
        coef = np.linalg.lstsq(design * w[:, None], emu.ratio[..., k].ravel() * w, rcond=None)[0]
        cov = np.linalg.inv((design * w[:, None] ** 2).T @ design)
        np.testing.assert_allclose(ratio[k], v @ coef, rtol=1e-9)
        np.testing.assert_allclose(error[k], np.sqrt(v @ cov @ v), rtol=1e-9)
    assert emu.fit.dof == 20 - 6


def test_fit_gradients_in_both_axes_match_finite_differences(tmp_path):
    emu = tables.load_emulator(plane_table(tmp_path, np.random.default_rng(8)), degree=2)
    for k in (0, 1):
        f = lambda s, r, k=k: emulator.evaluate(emu, s, r)[k][5]  # noqa: E731
        grad = jax.grad(f, argnums=(0, 1))(0.9, 0.1)
        fd_s = (f(0.9 + 1e-6, 0.1) - f(0.9 - 1e-6, 0.1)) / 2e-6
        fd_r = (f(0.9, 0.1 + 1e-7) - f(0.9, 0.1 - 1e-7)) / 2e-7
        np.testing.assert_allclose(grad, (fd_s, fd_r), rtol=1e-5)


def test_leave_one_out_pulls_are_unit_normal_when_the_degree_is_right(tmp_path):
    """The truth is quadratic in (ln σ, ln r): held-out pulls of degree 2 have unit spread;
    degree 0 (no parameter dependence) leaves them far wider."""
    path = plane_table(tmp_path, np.random.default_rng(9), truth=quadratic)
    good = emulator.leave_one_out(tables.load_emulator(path, degree=2))[..., 1:]
    bad = emulator.leave_one_out(tables.load_emulator(path, degree=0))[..., 1:]
    assert good.shape == (5, 4, len(ELL) - 1)
    assert 0.7 < good.std() < 1.6 and abs(good.mean()) < 0.3
    assert bad.std() > 3


@pytest.mark.parametrize(("degree", "message"), [
    (5, "degree must be below the number of values on each axis"),
    (-1, "degree must be"),
    (1.0, "degree must be"),
    (True, "degree must be"),
])
def test_bad_degree_is_rejected(tmp_path, degree, message):
    with pytest.raises(ValueError, match=message):
        tables.load_emulator(write_table(tmp_path / "emu.csv"), degree=degree)


def test_fit_needs_noisy_columns_and_two_sigmas(tmp_path):
    exact = write_table(tmp_path / "exact.csv")
    exact.write_text(re.sub(r"^([0-9][^\n]*),[^,\n]+$", r"\1,0.0", exact.read_text(),
                            flags=re.M))
    with pytest.raises(ValueError, match="every error in the table is 0"):
        tables.load_emulator(exact, degree=1)
    with pytest.raises(ValueError, match=r"degree must be below .* \(1 sigma"):
        tables.load_emulator(write_table(tmp_path / "one.csv", sigma=[1.0]), degree=1)


def test_fit_rejects_columns_with_some_zero_errors(tmp_path):
    path = write_table(tmp_path / "emu.csv")
    path.write_text(re.sub(r"^(0.25,0.1,3,[^,]+),[^,\n]+$", r"\1,0.0", path.read_text(),
                           flags=re.M))
    tables.load_emulator(path)  # interpolation does not mind
    with pytest.raises(ValueError, match="ell = 3 some are 0"):
        tables.load_emulator(path, degree=1)


def test_emulator_figure_draws_nodes_and_the_fitted_surface(tmp_path):
    from crsky.plotting.emulator import emulator_shape

    emu = tables.load_emulator(plane_table(tmp_path, np.random.default_rng(10)), degree=2)
    fig = emulator_shape(emu, ell=(2, 5), n_curve=7)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == [r"$\ell = 2$", r"$\ell = 5$"]
    # one fitted curve per r_L/Lc, equal to the emulator at its first sigma
    curves = [line for line in axes[1].get_lines() if len(line.get_xdata()) == 7]
    assert len(curves) == emu.rl_over_lc.size
    first = float(emulator.evaluate(emu, emu.sigma[0], emu.rl_over_lc[0])[0][4])
    np.testing.assert_allclose(curves[0].get_ydata()[0], first, rtol=1e-12)
    fig.savefig(tmp_path / "emulator.png")
    with pytest.raises(ValueError, match="no ell"):
        emulator_shape(emu, ell=(99,))


@pytest.mark.parametrize("name", ["emulator.csv", "emulator_perpendicular.csv"])
def test_shipped_tables_predict_held_out_nodes_within_their_errors(name):
    """Each node of a shipped table against the quadratic fitted to the other 24: the pulls
    (difference over the combined error) must look like unit normals, which checks both the
    emulator and the errors it states."""
    table = tables.load_emulator(Path(__file__).resolve().parents[1] / "data" / name, degree=2)
    assert table.sigma.tolist() == [0.3, 0.53, 0.95, 1.7, 3.0]
    assert table.rl_over_lc.tolist() == [0.03, 0.053, 0.095, 0.17, 0.3]
    steps = json.loads(table.meta["steps"])
    assert len(steps) == 25 and all(v["tried"][-1][1] <= v["z_max"] for v in steps.values())
    pull = emulator.leave_one_out(table)[:, :, table.ell_index(np.arange(2, 13))]
    assert np.all(np.isfinite(pull))
    assert abs(pull.mean()) < 3 / np.sqrt(pull.size) + 0.1
    assert 0.6 < pull.std() < 1.3
    assert np.mean(np.abs(pull) > 3) < 0.01
