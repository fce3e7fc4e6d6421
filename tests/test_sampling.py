"""NUTS runner, diagnostics and outputs.

References: the analytic posterior of a conjugate Gaussian (mean and sd within 5 Monte-Carlo
standard errors); hand-made chains with a known defect (offset chains, divergences) for the
failure thresholds; ArviZ's NetCDF reader for the round trip; hand-made draws with known
quantiles for the corner titles (literal strings).
"""

import json

import arviz as az
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from crsky.inference import sampling
from crsky.io.posterior import write_posterior
from crsky.plotting import posterior

Y = np.array([1.2, 0.7, 1.9, 1.4, 0.3, 1.1])


def conjugate(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    numpyro.sample("y", dist.Normal(mu, 0.5), obs=y)


@pytest.fixture(scope="module")
def idata():
    return sampling.run_nuts(conjugate, {"y": Y},
                             sampling.SamplerConfig(chains=2, warmup=300, samples=1000, seed=1))


def test_nuts_recovers_the_conjugate_posterior(idata):
    precision = 1 / 4 + Y.size / 0.25
    mean, sd = Y.sum() / 0.25 / precision, precision**-0.5
    summary = sampling.summarize(idata)
    row = summary["mu"]
    mc_error = sd / np.sqrt(row["ess_bulk"])
    assert row["median"] == pytest.approx(mean, abs=5 * mc_error)
    assert (row["q68"][1] - row["q68"][0]) / 2 == pytest.approx(sd, rel=0.1)
    assert (row["q95"][1] - row["q95"][0]) / 2 == pytest.approx(1.96 * sd, rel=0.1)
    assert row["r_hat"] < 1.01 and row["ess_tail"] > 200
    assert sampling.check_diagnostics(idata, summary) == []
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 1000


def test_diagnostics_flag_offset_chains_and_divergences():
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((4, 500))
    draws[0] += 3.0  # one chain stuck elsewhere
    diverging = np.zeros((4, 500), dtype=bool)
    diverging[1, :3] = True
    bad = az.from_dict(posterior={"x": draws}, sample_stats={"diverging": diverging})
    failures = sampling.check_diagnostics(bad, sampling.summarize(bad))
    assert any(f.startswith("x: r_hat") for f in failures)
    assert "3 divergent transitions > 0" in failures
    relaxed = sampling.Thresholds(r_hat_max=10.0, ess_min_per_chain=1.0, max_divergences=3)
    assert sampling.check_diagnostics(bad, sampling.summarize(bad), relaxed) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"chains": 0}, "chains must be an integer >= 1"),
    ({"target_accept": 1.0}, "target_accept must lie in"),
    ({"seed": -1}, "seed must be an integer >= 0"),
])
def test_sampler_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sampling.SamplerConfig(**kwargs)


def test_thresholds_validation():
    with pytest.raises(ValueError, match="r_hat_max must lie in"):
        sampling.Thresholds(r_hat_max=0.9)
    with pytest.raises(ValueError, match="max_divergences"):
        sampling.Thresholds(max_divergences=-1)


def test_posterior_files_round_trip(idata, tmp_path):
    summary = {"parameters": sampling.summarize(idata)}
    paths = write_posterior(idata, summary, tmp_path / "run")
    paths |= posterior.save_figures(idata, ["mu"], tmp_path / "run")
    back = az.from_netcdf(paths["posterior"])
    np.testing.assert_array_equal(back.posterior["mu"].values, idata.posterior["mu"].values)
    assert json.loads(paths["summary"].read_text()) == json.loads(json.dumps(summary))
    for kind in ("trace", "corner"):
        assert paths[kind].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        write_posterior(idata, summary, tmp_path / "run")


def hand_made(median, lower, upper):
    """101 sorted draws whose 16/50/84 % quantiles are exactly median − lower, median,
    median + upper (np.quantile interpolates at draws 16, 50 and 84)."""
    return np.interp(np.arange(101), [0, 16, 50, 84, 100],
                     [median - 2 * lower, median - lower, median, median + upper,
                      median + 2 * upper])


# median to 3 significant digits, errors to 2, plain notation; a power of ten outside 1e-3..1e2
TITLES = [
    ((0.5123, 0.1234, 0.1456), "x = $0.512_{-0.12}^{+0.15}$"),
    ((456.0, 123.0, 234.0), "x = $456_{-120}^{+230}$"),  # errors >= 100 in plain notation
    ((0.00123, 0.00034, 0.00056), "x = $0.00123_{-0.00034}^{+0.00056}$"),
    ((2346.0, 150.0, 160.0), r"x = $(2.35_{-0.15}^{+0.16}) \times 10^{3}$"),
    ((3.1e-6, 4.2e-7, 5.3e-7), r"x = $(3.10_{-0.42}^{+0.53}) \times 10^{-6}$"),
    ((999.7, 0.5, 0.6), r"x = $(1.00_{-0.00050}^{+0.00060}) \times 10^{3}$"),  # rounds up
    ((-2.5e5, 1.1e4, 1.9e4), r"x = $(-2.50_{-0.11}^{+0.19}) \times 10^{5}$"),
]


@pytest.mark.parametrize("interval, expected", TITLES)
def test_interval_title_hand_made_samples(interval, expected):
    assert posterior._interval_title("x", hand_made(*interval)) == expected


def test_corner_diagonal_titles_give_median_and_68_percent_interval():
    samples = {"l_pc": hand_made(0.5123, 0.1234, 0.1456), "q1": hand_made(3.1e-6, 4.2e-7, 5.3e-7)}
    fig = posterior.corner_figure(samples)
    axes = np.asarray(fig.axes).reshape(2, 2)
    assert axes[0, 0].get_title() == "l_pc = $0.512_{-0.12}^{+0.15}$"
    assert axes[1, 1].get_title() == r"q1 = $(3.10_{-0.42}^{+0.53}) \times 10^{-6}$"
    assert axes[1, 0].get_title() == "" and axes[0, 1].get_title() == ""
    fig.canvas.draw()  # the mathtext titles render


def test_inference_data_groups_for_arviz(idata):
    """The groups ArviZ users expect: prior and predictive draws, and the NUTS statistics that
    ``az.plot_energy`` and ``az.plot_diagnostics`` read (numpyro's extra fields, ArviZ names)."""
    assert {"posterior", "sample_stats", "observed_data", "prior", "prior_predictive",
            "posterior_predictive"} <= set(idata.groups())
    stats = idata.sample_stats
    for name in ("energy", "tree_depth", "step_size", "diverging", "acceptance_rate", "n_steps",
                 "lp"):
        assert stats[name].shape == (2, 1000), name
    # n_steps = 2^depth - 1 for a full tree; ArviZ's tree_depth = floor(log2(n_steps)) + 1
    np.testing.assert_array_equal(stats["tree_depth"], np.log2(stats["n_steps"]).astype(int) + 1)
    assert np.all((stats["acceptance_rate"] >= 0) & (stats["acceptance_rate"] <= 1))
    # lp = -potential energy = log joint of (mu, y): checked against scipy at the draws
    from scipy.stats import norm

    mu = idata.posterior["mu"].values
    log_joint = norm.logpdf(mu, 0, 2) + norm.logpdf(Y[:, None, None], mu, 0.5).sum(0)
    np.testing.assert_allclose(stats["lp"], log_joint, rtol=1e-8)
    # predictive draws: y ~ N(mu, 0.5) around each posterior draw, one per observation
    ppc = idata.posterior_predictive["y"].values
    assert ppc.shape == (2, 1000, Y.size)
    residual = (ppc - mu[..., None]) / 0.5
    assert abs(residual.mean()) < 0.05 and abs(residual.std() - 1) < 0.05  # 12000 N(0,1) draws
    assert idata.prior["mu"].std() == pytest.approx(2.0, rel=0.1)  # the N(0, 2) prior, 1000 draws
    assert idata.prior_predictive["y"].shape == (1, 1000, Y.size)
    np.testing.assert_array_equal(idata.observed_data["y"], Y)
    az.plot_energy(idata)  # runs (it needs sample_stats.energy)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_coordinates_label_observations():
    ell = np.array([2, 3, 4, 5, 6, 7])
    idata = sampling.run_nuts(conjugate, {"y": Y}, sampling.SamplerConfig(chains=1, warmup=50,
                                                                         samples=50),
                              coords={"ell": ell}, dims={"y": ["ell"]})
    for group in ("observed_data", "posterior_predictive", "prior_predictive"):
        np.testing.assert_array_equal(idata[group]["ell"], ell)
        assert idata[group]["y"].dims[-1] == "ell"
    assert "posterior_predictive" not in sampling.run_nuts(
        conjugate, {"y": Y}, sampling.SamplerConfig(chains=1, warmup=20, samples=20),
        predictive=False).groups()
