"""``crsky invert`` through ``crsky.cli.main``: bad input (exit 2, the parameter named) and one
small noise-free mock inversion end to end (slow: several compilations of the fit)."""

import json

import numpy as np
import pytest

from crsky.cli import main


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--t-omega", "0", "1"], "--t-omega"),
        (["--t-omega", "2", "1"], "--t-omega"),
        (["--parametrisation", "wavelets"], "--parametrisation"),
        (["--events", "-5"], "--events"),
        (["--nside", "3"], "--nside"),
        (["--k-band", "20", "5"], "--k-band"),
        (["--runfile", "missing.h5"], "missing.h5"),
        (["--method", "newton"], "--method"),
        (["--experiment", "Auger"], "experiment"),
        (["--method", "shooting", "--segment", "0"], "--segment"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, extra, name):
    assert main(["invert", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert name in err and err.count("\n") == 1


@pytest.mark.slow
def test_noise_free_inversion_end_to_end(tmp_path, capsys):
    """One wave (4 unknowns), nside 2, tΩ = 1, 2, noise-free: the fit recovers the mock field
    (reference: the mock's own coefficients) to 1e-6, and the figures are written."""
    args = ["invert", "--out", str(tmp_path), "--modes", "1", "--nside", "2", "--t-omega", "1",
            "2", "--events", "0", "--starts", "2", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mock"] is True and out["unknowns"] == 4
    assert out["coefficient_error"] < 1e-6
    assert out["map_correlation_held_out"] > 0.999
    assert out["field_along_paths"]["max_residual_to_held_out_t_omega"] < 1e-5
    for name in ("inversion.json", "maps.png", "held_out.png", "recovery_against_t.png",
                 "field_along_paths.png"):
        assert (tmp_path / name).is_file()


def test_field_along_paths_figure_is_written(tmp_path):
    """The figure of crsky invert's field_along_paths.png from made-up samples: it saves as a PNG,
    its axes carry the units, the upper panel draws |B|/B0 of both fields and the lower one the
    norm of their difference (reference: numpy on the same arrays)."""
    from crsky.plotting.inverse import recovery_along_paths

    rng = np.random.default_rng(0)
    t = np.linspace(0.1, 8.0, 30)
    b_true = rng.normal(size=(30, 2, 3))
    b_rec = b_true + 0.01 * rng.normal(size=(30, 2, 3))
    fig = recovery_along_paths(t, b_true, b_rec, t_data=4.0, labels=["a", "b"])
    path = tmp_path / "field_along_paths.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5_000
    top, bottom = fig.axes
    assert top.get_ylabel() == "|B|/B0" and "tΩ" in bottom.get_xlabel()
    assert "B0" in bottom.get_ylabel()
    np.testing.assert_allclose(top.lines[0].get_ydata(), np.linalg.norm(b_true[:, 0], axis=-1))
    np.testing.assert_allclose(top.lines[3].get_ydata(), np.linalg.norm(b_rec[:, 1], axis=-1))
    np.testing.assert_allclose(bottom.lines[1].get_ydata(),
                               np.linalg.norm(b_rec[:, 1] - b_true[:, 1], axis=-1))
    with pytest.raises(ValueError, match="b_recovered"):
        recovery_along_paths(t, b_true, b_rec[:, :1])


@pytest.mark.slow
def test_noise_free_inversion_through_icecube_end_to_end(tmp_path, capsys):
    """The same small inversion seen as IceCube sees it (nside 4: 56 pixels in view, ring means
    removed): the mock field is recovered to 1e-6 and the maps are drawn over the band."""
    args = ["invert", "--out", str(tmp_path), "--modes", "1", "--nside", "4", "--t-omega", "1",
            "2", "--events", "0", "--starts", "2", "--experiment", "icecube", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiment"] == "IceCube" and out["pixels_observed"] == 56
    assert out["coefficient_error"] < 1e-6
    assert (tmp_path / "maps.png").is_file()


def test_recovery_maps_over_a_field_of_view(tmp_path):
    """recovery_maps with a field of view takes the pixels in view only, draws the rest grey
    (healpy's UNSEEN), and refuses maps of another length."""
    from crsky.physics.observatory import field_of_view
    from crsky.plotting.inverse import recovery_maps

    mask = field_of_view(4, -90.0, -30.0)
    rng = np.random.default_rng(1)
    true = rng.normal(size=mask.sum())
    fig = recovery_maps(true, true + 0.01, true, field_of_view=mask)
    fig.savefig(tmp_path / "maps.png", dpi=50)
    assert (tmp_path / "maps.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="in view"):
        recovery_maps(np.zeros(192), np.zeros(192), field_of_view=mask)
