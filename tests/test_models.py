"""NumPyro models: prior resolution, data selection and log densities.

References: each model's log joint density against the same density written independently with
scipy.stats (1e-10 relative, float64 round-off of sums); the beam forward model against the
asymptotic formulas of PHYSICS.md §A; the BGK mean against crsky.bgk directly.
"""

import math

import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import stats
from test_emulator import synthetic_ratio, write_table

from crsky import data, emulator, models


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
    emu = emulator.load_emulator(write_table(tmp_path / "emu.csv"))
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
    emu = emulator.load_emulator(write_table(tmp_path / "emu.csv", ell=np.arange(1, 6)))
    spec = models.spectrum_data(SPEC_TABLE, 1, 8)
    with pytest.raises(ValueError, match=r"emulator table has no ell \[6, 7, 8\]"):
        models.spectrum_sigma_parameters(spec, emu)
    with pytest.raises(ValueError, match="leaves the parameter's support"):
        models.resolve_priors(models.spectrum_sigma_parameters(
            models.spectrum_data(SPEC_TABLE, 1, 5), emu),
            {"sigma": {"dist": "uniform", "low": 0.1, "high": 1.0}})
