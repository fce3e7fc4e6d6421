"""crsky.plotting.spectra: the figures build from SpectrumStatistics and save as PNG (no pixel
reference)."""

import numpy as np
import pytest

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
    assert len(plotting.spectrum_evolution(stats).axes) == 2


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
