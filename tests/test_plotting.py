"""crsky.plotting: the figures build from statistics dicts and save as PNG (no pixel reference)."""

import numpy as np
import pytest

from crsky import plotting


def fake_stats(scale: float) -> dict:
    """Statistics dict shaped like anisotropy.ensemble_statistics: 6 times, lmax 12."""
    t = np.logspace(0, 3, 6)
    ell = np.arange(13)
    cl = scale * t[:, None] / (1 + ell) ** 2 + 1e-3
    noise = np.full(6, 1e-4)
    return {
        "t_omega": t,
        "cl_mean": cl,
        "noise": noise,
        "cl_hat": cl - noise[:, None],
        "cl_hat_err": 0.1 * cl,
        "dipole_standard": 0.5 * cl[:, 1],
    }


@pytest.fixture
def stats():
    return {"parallel": fake_stats(1.0), "perpendicular": fake_stats(0.3)}


def test_figures_save(tmp_path, stats):
    for name, fig in [
        ("fig2", plotting.spectrum_evolution(stats)),
        ("fig3", plotting.spectrum_shape(stats)),
        ("map", plotting.sky_map(np.random.default_rng(0).normal(size=768))),
    ]:
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.stat().st_size > 10_000
    assert len(plotting.spectrum_evolution(stats).axes) == 2


def test_bad_input_raises(stats):
    with pytest.raises(ValueError, match="stats_by_orientation"):
        plotting.spectrum_evolution({"parallel": {"t_omega": 1}})
    with pytest.raises(ValueError, match="delta_i"):
        plotting.sky_map(np.zeros(100))
