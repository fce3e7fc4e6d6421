"""`crsky simulate` and `crsky plot` from the command line: JSON summary, configs, bad input."""

import json
from pathlib import Path

import pytest

from crsky.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = ["--nside", "2", "--realisations", "2", "--modes", "16", "--t-omega-max", "20",
        "--n-times", "4", "--no-progress"]


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json_summary_and_plot(tmp_path, capsys):
    path = tmp_path / "run.h5"
    code, out, _ = run_cli(["simulate", *TINY, "--out", str(path), "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    for key in ("n_trajectories", "momentum_drift_max", "field_rms_over_b0", "kappa_parallel",
                "kappa_perp", "wall_seconds", "mode_evaluations_per_second", "ell", "t_omega",
                "noise", "sum_rule_lhs", "sum_rule_rhs"):
        assert key in summary, key
    assert summary["n_trajectories"] == 2 * 48
    assert set(summary["cl_hat"]) == {"parallel", "perpendicular"}
    assert len(summary["cl_mean"]["parallel"]) == 4  # one spectrum per saved time
    assert len(summary["ell"]) == 2 * 2 + 1  # default ell_max = 2 nside
    assert summary["momentum_drift_max"] < 1e-4  # float32 Boris
    assert summary["peak_device_bytes"] is None  # the CPU keeps no allocator statistics
    code, out, _ = run_cli(["plot", str(path), "--out", str(tmp_path / "fig"), "--fits"], capsys)
    assert code == 0
    import healpy as hp

    assert hp.read_map(tmp_path / "fig" / "sky_map.fits").shape == (48,)  # loadable by healpy
    for name in ("fig2_spectrum_vs_time", "fig3_spectrum_shape", "sky_map"):
        png = tmp_path / "fig" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_run_checks_its_arguments_before_any_output(tmp_path):
    import numpy as np

    from crsky.cli.plot import draw_run
    from crsky.io.run import Ensemble, SimulationConfig

    # no data: each check must come before any compute
    run = Ensemble(config=SimulationConfig(), t_omega=np.ones(1), directions=np.zeros((12, 3)),
                   indices=np.arange(120), arrays={}, attrs={})
    out = tmp_path / "fig"
    with pytest.raises(ValueError, match="^orientation must be one of"):
        draw_run(run, out, orientation="diagonal")
    with pytest.raises(ValueError, match="^stats must hold both orientations") as info:
        draw_run(run, out, stats={"parallel": {}})
    assert "got keys ['parallel']" in str(info.value)
    with pytest.raises(ValueError, match="^realisation 200 ") as info:
        draw_run(run, out, realisation=200)
    assert "120 realisations, indices 0 to 119" in str(info.value)
    assert len(str(info.value)) < 100  # not the list of all 120 indices
    assert not out.exists()  # no folder made


def test_config_file_and_flag_override(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('nside = 2\nrealisations = 1\nmodes = 8\nt_omega_max = 5.0\n'
                      'n_times = 2\ndtype = "float64"\n')
    path = tmp_path / "run.h5"
    code, out, _ = run_cli(["simulate", "--config", str(config), "--modes", "12",
                            "--out", str(path), "--json", "--no-progress"], capsys)
    assert code == 0
    from crsky.io import runfile

    stored = runfile.read_config(path)
    assert stored["modes"] == 12 and stored["nside"] == 2 and stored["dtype"] == "float64"


@pytest.mark.parametrize("name", ["reduced.toml", "paper.toml"])
def test_shipped_configs_are_valid(name):
    from crsky.cli._common import load_toml
    from crsky.pipelines.ensemble import SimulationConfig

    SimulationConfig.from_dict(load_toml(CONFIGS / name))


@pytest.mark.parametrize(
    "flags, word",
    [
        (["--nside", "3"], "nside"),
        (["--sigma2", "-1"], "error: sigma2 "),
        (["--lmin", "200"], "lambda_min"),
        (["--modes", "0"], "error: modes "),
        (["--t-omega-max", "nan"], "t_omega_max"),
        (["--r-larmor", "0"], "r_larmor"),
        (["--r-larmor", "inf"], "r_larmor"),
        (["--solver", "rk4"], "solver"),
        (["--dtype", "int8"], "dtype"),
    ],
)
def test_bad_input_one_line_exit_2_before_compute(tmp_path, capsys, flags, word):
    path = tmp_path / "run.h5"
    code, out, err = run_cli(["simulate", *TINY, *flags, "--out", str(path)], capsys)
    assert code == 2
    assert word in err and len(err.strip().splitlines()) == 1
    assert not path.exists()  # nothing computed or written


def test_malformed_config_names_key_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("nside = 4\nmodez = 8\n")
    code, _, err = run_cli(["simulate", "--config", str(bad), "--out", str(tmp_path / "o.h5")],
                           capsys)
    assert code == 2 and "'modez' (line 2)" in err
    bad.write_text("nside = 4\nmodes = = 8\nseed = 1\n")
    code, _, err = run_cli(["simulate", "--config", str(bad), "--out", str(tmp_path / "o.h5")],
                           capsys)
    assert code == 2 and "line 2" in err and "malformed" in err
    bad.write_text("nside = 4\nmodes = [\n")
    code, _, err = run_cli(["simulate", "--config", str(bad), "--out", str(tmp_path / "o.h5")],
                           capsys)
    assert code == 2 and "line 2" in err


def test_existing_output_is_protected(tmp_path, capsys):
    path = tmp_path / "run.h5"
    path.write_bytes(b"precious")
    code, _, err = run_cli(["simulate", *TINY, "--out", str(path)], capsys)
    assert code == 2 and "--overwrite" in err
    assert path.read_bytes() == b"precious"
