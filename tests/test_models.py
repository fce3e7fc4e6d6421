"""NumPyro models: prior resolution, data selection and log densities.

References: each model's log joint density against the same density written independently with
scipy.stats (1e-10 relative, float64 round-off of sums); the beam forward model against the
asymptotic formulas of the beam paper (docs/physics.md (B9)–(B11)); the BGK mean against
crsky.physics.bgk directly.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import stats
from test_emulator import synthetic_ratio, write_table

from crsky.inference import data, models
from crsky.io import tables


def table(rows):
    """A ClTable from (ell, cl, error, experiment, f_sky, noise) tuples."""
    cols = list(zip(*rows, strict=True))
    return data.ClTable(
        ell=np.array(cols[0]), cl=np.array(cols[1], float), error=np.array(cols[2], float),
        experiment=np.array(cols[3]), f_sky=np.array(cols[4], float),
        noise=np.array(cols[5], float),
    )


SPEC_TABLE = table(
    [(e, 1e-6 / e**2, 1e-8, "IceCube", 0.3, 2.5e-11) for e in range(1, 9)]
    + [(e, 1.1e-6 / e**2, 1e-8, "HAWC", 0.7, math.nan) for e in range(1, 6)]
)


# --------------------------------------------------------------------------- priors


@pytest.mark.parametrize(("config", "message"), [
    ({"lpc": {"dist": "uniform", "low": 0.1, "high": 1}}, "unknown parameter(s) 'lpc'"),
    ({"l_pc": {"dist": "cauchy", "low": 0.1, "high": 1}}, "dist must be one of"),
    ({"l_pc": {"dist": "uniform", "low": 1.0, "high": 0.1}}, "low=1.0 must be < high=0.1"),
    ({"l_pc": {"dist": "uniform", "low": -1.0, "high": 1.0}}, "leaves the parameter's support"),
    ({"l_pc": {"dist": "loguniform", "low": 0.0, "high": 1.0}}, "leaves the parameter's support"),
    ({"l_pc": {"dist": "normal", "mean": 1.0, "sd": 1.0}}, "a normal prior leaves the support"),
    ({"va_over_c": {"dist": "lognormal", "mean": -9, "sd": 1}}, "lognormal needs the support"),
    ({"l_pc": {"dist": "lognormal", "mean": 0.0, "sd": 0.0}}, "sd must be > 0"),
    ({"l_pc": {"dist": "uniform", "low": 0.1}}, "takes exactly the keys dist, low, high"),
    ({"l_pc": {"dist": "uniform", "low": "a", "high": 1}}, "low must be a number"),
    ({"q_c": {"dist": "uniform", "low": 1.5, "high": 4.0}}, "leaves the parameter's support"),
])
def test_bad_priors_are_rejected(config, message):
    params = models.beam_parameters(models.BeamData({}, (1.0, 2.0)))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        models.resolve_priors(params, config)


def test_priors_default_and_override():
    params = models.beam_parameters(models.BeamData({}, (1.0, 2.0)))
    priors = models.resolve_priors(
        params, {"l_pc": {"dist": "lognormal", "mean": 0.0, "sd": 1.0}}
    )
    assert priors["l_pc"] == models.Prior("lognormal", 0.0, 1.0)
    assert priors["energy_tev"] == models.Prior("uniform", 1.0, 2.0)
    assert list(priors) == list(params)


# --------------------------------------------------------------------------- data selection


def test_spectrum_data_selection_and_free_noise():
    spec = models.spectrum_data(SPEC_TABLE, 2, 6)
    np.testing.assert_array_equal(spec.ell, [2, 3, 4, 5, 6, 2, 3, 4, 5])
    assert spec.experiments == ("IceCube", "HAWC")
    assert spec.free_noise == ("HAWC",)
    assert list(models.spectrum_p_parameters(spec)) == ["p", "q1", "noise_HAWC"]
    assert list(models.spectrum_p_parameters(spec, "table")) == ["p", "q1"]
    only = models.spectrum_data(SPEC_TABLE, 1, 8, ["IceCube"])
    assert only.experiments == ("IceCube",) and only.ell.size == 8


@pytest.mark.parametrize(("args", "message"), [
    ((0, 5), "ell_min must be an integer >= 1"),
    ((5, 4), "ell_max=4 must be >= ell_min=5"),
    ((7, 8), r"'HAWC' has 0 row\(s\) in the model's ell range \[7, 8\]"),
    ((1, 9), r"\[1, 9\] reaches beyond the data, which cover ell 1..8"),
    ((1, 5, ["Auger"]), "experiment 'Auger' is not in the C_l table"),
])
def test_spectrum_data_range_errors(args, message):
    with pytest.raises(ValueError, match=message):
        models.spectrum_data(SPEC_TABLE, *args)


def test_beam_data_errors():
    obs = models.BeamData({}, (1.0, 2.0))
    beam_obs = data.BeamObservations(10.0, 0.1, 10.0, (1.0, 2.0))
    with pytest.raises(ValueError, match="non-empty subset"):
        models.beam_data(beam_obs, {"width": 0.3})
    with pytest.raises(ValueError, match="width_deg log_sigma must be > 0"):
        models.beam_data(beam_obs, {"width_deg": 0.0})
    assert obs.observed == {}
    got = models.beam_data(beam_obs, {"p_bmax_tev": 0.5, "width_deg": 0.3})
    assert got.observed == {"width_deg": (10.0, 0.3), "p_bmax_tev": (10.0, 0.5)}


# --------------------------------------------------------------------------- sigma model


def test_sigma_model_log_density_matches_scipy(tmp_path):
    """SYNTHETIC emulator (tests only): log joint = priors + Gaussian with cv + noise + sim var."""
    emu = tables.load_emulator(write_table(tmp_path / "emu.csv"))
    spec = models.spectrum_data(SPEC_TABLE, 1, 8)
    params = models.spectrum_sigma_parameters(spec, emu)
    assert list(params) == ["sigma", "c1", "rl_over_lc", "noise_HAWC"]
    priors = models.resolve_priors(params, None)
    point = {"sigma": 1.0, "c1": 1e-6, "rl_over_lc": 0.1, "noise_HAWC": 2e-10}
    got, _ = log_density(models.spectrum_sigma_model, (),
                         {"data": spec, "emulator": emu, "priors": priors}, point)
    mean = 1e-6 * synthetic_ratio(1.0, 0.1, spec.ell)
    sim = 0.05 * mean * (spec.ell > 1)
    noise = np.where(spec.experiment_index == 0, 2.5e-11, 2e-10)
    cv = np.sqrt(2 / ((2 * spec.ell + 1) * spec.f_sky)) * (mean + noise)
    expected = (
        stats.norm(mean, np.hypot(cv, sim)).logpdf(spec.cl).sum()
        + stats.uniform(0.25, 3.75).logpdf(1.0)
        + stats.loguniform(1e-12, 1e-2).logpdf(1e-6)
        + stats.loguniform(0.05, 0.2).logpdf(0.1)
        + stats.loguniform(1e-13, 1e-7).logpdf(2e-10)
    )
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_sigma_model_rejects_ell_outside_the_emulator(tmp_path):
    emu = tables.load_emulator(write_table(tmp_path / "emu.csv", ell=np.arange(1, 6)))
    spec = models.spectrum_data(SPEC_TABLE, 1, 8)
    with pytest.raises(ValueError, match=r"emulator table has no ell \[6, 7, 8\]"):
        models.spectrum_sigma_parameters(spec, emu)
    with pytest.raises(ValueError, match="leaves the parameter's support"):
        models.resolve_priors(models.spectrum_sigma_parameters(
            models.spectrum_data(SPEC_TABLE, 1, 5), emu),
            {"sigma": {"dist": "uniform", "low": 0.1, "high": 1.0}})


# --------------------------------------------------------------------------- beam model


BEAM_POINT = {"l_pc": 0.5, "b0_ugauss": 3.0, "va_over_c": 1e-4, "alpha": 1e-3, "q_c": 4.65,
              "energy_tev": 1.5}


def test_eigen_resolution_matches_the_converged_solver():
    """Reference: crsky.physics.beam.observables at degree 15, 10 layers (converged to ~1e-8); the
    model's
    cheaper resolution must agree to 2.5e-3 relative (its log-errors are >= 0.3)."""
    from crsky.physics import beam

    for eps in (1e-5, 2e-3, 1.9e-2):
        for delta in (3e-5, 3e-4):
            fine = beam.observables(eps, delta, 0.0, "matched", degree=15, layers=10)
            coarse = beam.observables(eps, delta, 0.0, "matched", degree=models.EIGEN_DEGREE,
                                      layers=models.EIGEN_LAYERS)
            assert float(coarse.fractional_excess) == pytest.approx(
                float(fine.fractional_excess), rel=2.5e-3)


@pytest.mark.parametrize("l_pc", [0.1, 0.5, 5.0])
def test_asymptotic_forward_is_crsky_beam_asymptotics(l_pc):
    """The fast path equals crsky.physics.beam.observables' asymptotic fields (same formulas, no
    solve;
    1e-12) and its excess lies within 6 % of the eigen value (beam paper matched
    asymptotics, docs/physics.md (B9), checked here over the prior's range of ε)."""
    from crsky.physics import beam

    point = BEAM_POINT | {"l_pc": l_pc}
    fast = models.beam_predictions(point, "asymptotic")
    eigen = models.beam_predictions(point, "eigen")
    obs = beam.observables(fast["eps"], point["va_over_c"], 0.0, "matched")
    assert float(fast["width_deg"]) == pytest.approx(float(obs.beam_width_deg), rel=1e-12)
    assert float(fast["fractional_excess"]) == pytest.approx(
        float(obs.fractional_excess_asymptotic), rel=1e-6)  # λ1 on the solver's mesh vs 14.528
    assert float(fast["fractional_excess"]) == pytest.approx(
        float(eigen["fractional_excess"]), rel=0.06)
    for name in ("eps", "width_deg", "p_bmax_tev"):
        assert float(fast[name]) == float(eigen[name])


@pytest.mark.parametrize("forward", ["eigen", "asymptotic"])  # "table": its own test
def test_beam_model_log_density_matches_scipy(forward):
    """Log joint = default priors + log-normal likelihood of the observables (scipy.stats)."""
    obs = data.BeamObservations(10.0, 0.1, 10.0, (1.0, 2.0))
    log_sigma = {"width_deg": 0.3, "fractional_excess": 0.7, "p_bmax_tev": 0.5}
    beam_data = models.beam_data(obs, log_sigma)
    priors = models.resolve_priors(models.beam_parameters(beam_data), None)
    kwargs = {"data": beam_data, "priors": priors, "forward": forward}
    got, _ = log_density(models.beam_model, (), kwargs, BEAM_POINT)
    predicted = models.beam_predictions(BEAM_POINT, forward)
    expected = sum(
        stats.norm(np.log(float(predicted[k])), s).logpdf(np.log(getattr(obs, k)))
        for k, s in log_sigma.items()
    ) + (
        stats.loguniform(0.01, 100).logpdf(0.5) + stats.loguniform(1, 10).logpdf(3.0)
        + stats.loguniform(3e-5, 3e-4).logpdf(1e-4) + stats.loguniform(3e-4, 3e-3).logpdf(1e-3)
        + stats.uniform(4.6, 0.1).logpdf(4.65) + stats.uniform(1.0, 1.0).logpdf(1.5)
    )
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_beam_model_truncates_eps_without_nan_gradients():
    """ε = r_g/l >= 0.02 (here l = 0.01 pc, ε ≈ 0.16; the solver gives NaN near 0.2) has zero
    prior density; the gradient of the log density stays finite there."""
    import jax

    obs = data.BeamObservations(10.0, 0.1, 10.0, (1.0, 2.0))
    beam_data = models.beam_data(obs, {"width_deg": 0.3, "fractional_excess": 0.7})
    priors = models.resolve_priors(models.beam_parameters(beam_data), None)
    kwargs = {"data": beam_data, "priors": priors, "forward": "eigen"}

    def logp(point):
        return log_density(models.beam_model, (), kwargs, point)[0]

    outside = BEAM_POINT | {"l_pc": 0.01}
    assert float(logp(outside)) == -math.inf
    assert all(np.isfinite(float(g)) for g in jax.grad(logp)(outside).values())


# --------------------------------------------------------------------------- spectrum -> p


@pytest.mark.parametrize("error_model", models.ERROR_MODELS)
def test_spectrum_p_log_density_matches_scipy(error_model):
    """Mean from crsky.physics.bgk.cl (eq. 4.7); errors cosmic variance + noise (free for HAWC) or
    the
    table's; priors uniform / log-uniform (scipy.stats, 1e-10)."""
    from crsky.physics import bgk

    spec = models.spectrum_data(SPEC_TABLE, 1, 8)
    priors = models.resolve_priors(models.spectrum_p_parameters(spec, error_model), None)
    point = {"p": 0.4, "q1": 2e-6} | ({"noise_HAWC": 2e-10} if error_model != "table" else {})
    got, _ = log_density(models.spectrum_p_model, (),
                         {"data": spec, "priors": priors, "error_model": error_model}, point)
    mean = np.asarray(bgk.cl(0.4, spec.ell, 2e-6))
    if error_model == "table":
        sigma, extra = spec.error, 0.0
    else:
        noise = np.where(spec.experiment_index == 0, 2.5e-11, 2e-10)
        sigma = np.sqrt(2 / ((2 * spec.ell + 1) * spec.f_sky)) * (mean + noise)
        extra = stats.loguniform(1e-13, 1e-7).logpdf(2e-10)
    expected = (stats.norm(mean, sigma).logpdf(spec.cl).sum()
                + stats.uniform(0.01, 0.98).logpdf(0.4)
                + stats.loguniform(1e-12, 1e-2).logpdf(2e-6) + extra)
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_q1_is_the_delta_i_amplitude_4pi_squared_q1_over_nu0():
    """The documented meaning of q1, (4π)² Q1/ν0, and its check: for p → 0, ν0 = 1/(3κ) and
    K = κ 1 the model's C_1 is the standard dipole 4π |K ∇n/n|² of δI (eq. 1.1)."""
    import jax.numpy as jnp

    from crsky.physics import bgk

    doc = models.spectrum_p_parameters(models.spectrum_data(SPEC_TABLE, 1, 8), "table")["q1"].doc
    assert "(4 pi)^2 Q1 / nu0" in doc
    assert "(4π)² Q1/ν0" in models.__doc__ and "(4π)² Q1/ν0" in models.spectrum_p_model.__doc__
    inference_md = Path(__file__).resolve().parents[1] / "docs" / "inference.md"
    assert "q1 = (4π)² Q1/ν0" in inference_md.read_text()
    kappa, g = 2.0, jnp.array([0.0, 0.6, 0.8]) * 0.5
    q1 = (4 * np.pi) ** 2 * bgk.q1(kappa * jnp.eye(3), g) / (1 / (3 * kappa))
    c1 = bgk.cl(1e-9, jnp.array([1]), q1)[0]
    np.testing.assert_allclose(c1, 4 * np.pi * kappa**2 * float(g @ g), rtol=1e-6)


def test_beam_model_table_forward_and_single_observables():
    """The table forward equals crsky.physics.beam.table_fractional_excess at the model's ε; a
    width-only likelihood needs no table (no excess); an unknown forward is rejected."""
    from crsky.physics import beam

    table = beam.tabulate_excess((1e-4, 1e-2), (5e-5, 2e-4), n_eps=6, n_delta=3)
    got = models.beam_predictions(BEAM_POINT, "table", excess_table=table)
    assert float(got["fractional_excess"]) == float(
        beam.table_fractional_excess(table, got["eps"], BEAM_POINT["va_over_c"]))
    eigen = models.beam_predictions(BEAM_POINT, "eigen")
    assert float(got["fractional_excess"]) == pytest.approx(
        float(eigen["fractional_excess"]), rel=5e-3)  # degree 5 solve vs the converged table
    obs = data.BeamObservations(10.0, 0.1, 10.0, (1.0, 2.0))
    width_only = models.beam_data(obs, {"width_deg": 0.3})
    priors = models.resolve_priors(models.beam_parameters(width_only), None)
    kwargs = {"data": width_only, "priors": priors, "forward": "table"}
    value, _ = log_density(models.beam_model, (), kwargs, BEAM_POINT)
    assert np.isfinite(float(value))
    with pytest.raises(ValueError, match="excess_table"):
        models.beam_predictions(BEAM_POINT, "table")
    with pytest.raises(ValueError, match="forward"):
        models.beam_predictions(BEAM_POINT, "spline")
