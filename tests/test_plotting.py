"""crsky.plotting.spectra: the figures build from SpectrumStatistics and save as PNG (no pixel
reference)."""

import dataclasses
import io

import numpy as np
import pytest

from crsky.inference import models
from crsky.physics.anisotropy import SpectrumStatistics, SumRules
from crsky.plotting import spectra as plotting
from crsky.plotting.sky import sky_map


def fake_stats(scale: float) -> SpectrumStatistics:
    """Statistics shaped like anisotropy.ensemble_statistics: 6 times, lmax 12."""
    t = np.logspace(0, 3, 6)
    ell = np.arange(13)
    cl = scale * t[:, None] / (1 + ell) ** 2 + 1e-3
    noise = np.full(6, 1e-4)
    zeros = np.zeros(6)
    return SpectrumStatistics(
        ell=ell, t_omega=t, T=0.1 * t, grad_n_over_n=np.array([0.0, 0.0, 1.0]),
        K_liouville=np.eye(3), cl_mean=cl, cl_err=0.1 * cl, noise=noise,
        cl_hat=cl - noise[:, None], cl_hat_err=0.1 * cl, dipole_standard=0.5 * cl[:, 1],
        dipole_diffusion=cl[:, 1], K_relative=np.zeros((6, 3, 3)),
        sum_rules=SumRules(*([zeros] * 7)),
    )


@pytest.fixture
def stats():
    return {"parallel": fake_stats(1.0), "perpendicular": fake_stats(0.3)}


def test_figures_save(tmp_path, stats):
    for name, fig in [
        ("fig2", plotting.spectrum_evolution(stats)),
        ("fig3", plotting.spectrum_shape(stats)),
        ("map", sky_map(np.random.default_rng(0).normal(size=768))),
    ]:
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.stat().st_size > 10_000
    assert len(plotting.spectrum_evolution(stats).axes) == 3  # two panels and the l colour bar


def test_bad_input_raises(stats):
    with pytest.raises(ValueError, match="stats_by_orientation"):
        plotting.spectrum_evolution({"parallel": {"t_omega": 1}})
    with pytest.raises(ValueError, match="delta_i"):
        sky_map(np.zeros(100))


def test_fig3_draws_the_bgk_closure(stats):
    """Grey lines: C_l/C_1 of eq. (4.7), checked against scipy quadrature of the integral."""
    from scipy.integrate import quad
    from scipy.special import eval_legendre

    def closure(p, ell):  # eq. (4.7) up to a constant: ∫ x P_l(x) (1 − x)^−p dx / (l (l + 1))
        value = quad(lambda x: x * eval_legendre(ell, x), -1, 1, weight="alg",
                     wvar=(0, -p))[0]
        return value / (ell * (ell + 1))

    fig = plotting.spectrum_shape(stats)
    lines = [line for line in fig.axes[0].lines if line.get_label().startswith("BGK")]
    assert [line.get_label() for line in lines] == [r"BGK $p = 0.33$", r"BGK $p = 0.5$",
                                                    r"BGK $p = 0.67$"]
    for line, p in zip(lines, (1 / 3, 1 / 2, 2 / 3), strict=True):
        ell, ratio = line.get_data()
        expected = [closure(p, int(e)) / closure(p, 1) for e in ell[:6]]
        np.testing.assert_allclose(ratio[:6], expected, rtol=1e-8)
    none = plotting.spectrum_shape(stats, bgk_p=())
    assert not [line for line in none.axes[0].lines if line.get_label().startswith("BGK")]
    with pytest.raises(ValueError, match="bgk_p"):
        plotting.spectrum_shape(stats, bgk_p=(1.5,))
    with pytest.raises(ValueError, match="bgk_p must be a sequence"):
        plotting.spectrum_shape(stats, bgk_p=0.5)
    four = plotting.spectrum_shape(stats, bgk_p=(0.2, 0.4, 0.6, 0.8))
    assert len([line for line in four.axes[0].lines if line.get_label().startswith("BGK")]) == 4


def test_figures_are_labelled_for_publication(stats):
    """Axis labels with the quantity and its unit convention, a colour bar for ℓ (Fig. 2), a
    symlog ratio axis that keeps zero and negative Ĉ_ℓ in view (Fig. 3)."""
    fig2 = plotting.spectrum_evolution(stats)
    bar = fig2.axes[-1]  # the colour bar's axes
    assert "multipole" in bar.get_ylabel() and [int(t) for t in bar.get_yticks()] == list(
        range(2, 10))
    assert r"|\nabla n|/n = 1/L_c" in fig2.axes[0].get_ylabel()
    assert "back-tracking time" in fig2.axes[0].get_xlabel()
    cl_hat = np.array(stats["parallel"].cl_hat)
    cl_hat[:, 7] = -0.05 * cl_hat[:, 1]
    negative = stats | {"parallel": dataclasses.replace(stats["parallel"], cl_hat=cl_hat)}
    fig3 = plotting.spectrum_shape(negative)
    ax = fig3.axes[0]
    assert ax.get_yscale() == "symlog"
    # linear within the smallest noise ratio shown, rounded down to a power of ten (>= 1e-6)
    ratios = [s.noise[i] / s.cl_hat[i, 1] for s in negative.values() for i in (3, 4, 5)]
    expected = max(10.0 ** np.floor(np.log10(min(ratios))), 1e-6)
    assert ax.yaxis.get_transform().linthresh == expected
    assert ax.get_ylim()[0] < -0.05  # the negative point at l = 7 is inside the axes
    fig3.savefig(io.BytesIO(), format="png")


def test_sky_map_has_colour_bar_graticule_and_directions():
    from crsky.plotting.sky import DELTA_I_LABEL, sky_map

    fig = sky_map(np.random.default_rng(1).normal(size=192), gradient=(1.0, 0.0, 0.0))
    bars = [ax for ax in fig.axes if ax.get_xlabel() == DELTA_I_LABEL]
    assert len(bars) == 1
    lo, hi = fig.axes[0].get_images()[0].get_clim()
    assert lo == -hi  # symmetric about dI = 0
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {r"$+B_0$", r"$-B_0$", r"$\nabla n$"} <= texts
    with pytest.raises(ValueError, match="gradient must be a non-zero 3-vector"):
        sky_map(np.zeros(192), gradient=(0.0, 0.0, 0.0))
    fig.savefig(io.BytesIO(), format="png")


def test_corner_and_trace_carry_units_log_axes_and_truths():
    import arviz as az

    from crsky.plotting import posterior

    rng = np.random.default_rng(2)
    draws = {"l_pc": np.exp(rng.normal(0.0, 0.5, (2, 300))), "p": rng.uniform(0.3, 0.7, (2, 300))}
    fig = posterior.corner_figure({k: v.ravel() for k, v in draws.items()},
                                  truths={"p": 0.5}, units={"l_pc": "pc", "p": "1"},
                                  log_scale={"l_pc"})
    axes = np.asarray(fig.axes).reshape(2, 2)
    assert axes[1, 0].get_xlabel() == "l_pc [pc]" and axes[1, 1].get_xlabel() == "p"
    assert axes[1, 0].get_xscale() == "log" and axes[1, 1].get_xscale() == "linear"
    assert [line.get_xdata()[0] for line in axes[1, 1].lines] == [0.5]  # the truth line
    trace = posterior.trace_figure(az.from_dict(posterior=draws), ["l_pc", "p"],
                                   units={"l_pc": "pc"}, log_scale={"l_pc"}, truths={"p": 0.5})
    assert trace.axes[0].get_ylabel() == "l_pc [pc]" and trace.axes[0].get_yscale() == "log"
    assert "truth" in [line.get_label() for line in trace.axes[2].lines]
    assert posterior.log_uniform({"l_pc": models.Prior("loguniform", 0.01, 100.0),
                                  "p": models.Prior("uniform", 0.01, 0.99)}) == {"l_pc"}
