"""``crsky invert`` through ``crsky.cli.main``: bad input (exit 2, the parameter named) and one
small noise-free mock inversion end to end (slow: several compilations of the fit)."""

import json

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
    for name in ("inversion.json", "maps.png", "held_out.png", "recovery_against_t.png"):
        assert (tmp_path / name).is_file()
