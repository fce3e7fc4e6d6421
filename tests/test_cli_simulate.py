"""`crsky simulate` and `crsky plot` from the command line: JSON summary, configs, bad input."""

import json
from pathlib import Path

import numpy as np
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
    for key in ("n_trajectories", "momentum_drift_max", "field_rms_over_b0",
                "kappa_parallel_at_t_max", "kappa_perp_at_t_max", "wall_seconds",
                "mode_evaluations_per_second", "ell", "t_omega", "noise", "sum_rule_lhs",
                "sum_rule_rhs"):
        assert key in summary, key
    assert summary["n_trajectories"] == 2 * 48
    assert set(summary["cl_hat"]) == {"parallel", "perpendicular"}
    assert len(summary["cl_mean"]["parallel"]) == 4  # one spectrum per saved time
    assert len(summary["ell"]) == 2 * 2 + 1  # default ell_max = 2 nside
    assert summary["momentum_drift_max"] < 1e-4  # float32 Boris
    assert summary["peak_device_bytes"] is None  # the CPU keeps no allocator statistics
    # κ named as what it is: the running value at the last saved time, with that time
    assert "kappa_parallel" not in summary and "kappa_perp_err" not in summary
    assert summary["t_omega_max"] == 20.0 == summary["t_omega"][-1]
    assert summary["kappa_parallel_at_t_max"] == summary["kappa_parallel_vs_t"][-1]
    assert summary["kappa_perp_at_t_max"] == summary["kappa_perp_vs_t"][-1]
    assert summary["kappa_parallel_at_t_max_err"] > 0 and summary["units"]["kappa"] == "Lc c"
    check_units(path)
    code, out, _ = run_cli(["plot", str(path), "--out", str(tmp_path / "fig"), "--fits"], capsys)
    assert code == 0
    import healpy as hp

    assert hp.read_map(tmp_path / "fig" / "sky_map.fits").shape == (48,)  # loadable by healpy
    check_fits_header(tmp_path / "fig" / "sky_map.fits")
    for name in ("fig2_spectrum_vs_time", "fig3_spectrum_shape", "sky_map"):
        png = tmp_path / "fig" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_units(path):
    """Every dataset of the run file carries its unit (read with h5py)."""
    import h5py

    from crsky.io.runfile import UNITS

    with h5py.File(path, "r") as f:
        assert f["t_omega"].attrs["unit"].startswith("1/Omega")
        assert f["directions"].attrs["unit"].startswith("1")
        group = f["realisations/r00000"]
        assert group["modes/k"].attrs["unit"] == "1/Lc"
        assert group["modes/amplitude"].attrs["unit"] == "B0"
        assert group["r_mean"].attrs["unit"] == "Lc"
        names = []
        group.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(names) == sorted(set(UNITS) - {"t_omega", "directions", "r", "p"})
        assert all(group[n].attrs["unit"] == UNITS[n] for n in names)


def check_fits_header(path):
    """The δI map's header says quantity, unit, frame, time and gradient (read with astropy)."""
    from astropy.io import fits as afits

    header = afits.getheader(path, 1)
    assert header["TTYPE1"] == "DELTA_I" and header["QUANTITY"].startswith("relative intensity")
    assert header["BUNIT"] == "" and "dimensionless" in header.comments["BUNIT"]
    assert header["FRAME"] == "B0_ALONG_Z" and header["B0DIR"] == "+Z"
    assert header["TOMEGA"] == 20.0 and header["T_LCC"] == pytest.approx(2.0)  # tΩ r_L
    assert header["GRADDIR"] == "parallel" and header["GRADNORM"] == 1.0
    assert (header["GRADX"], header["GRADY"], header["GRADZ"]) == (0.0, 0.0, 1.0)
    assert header["REALIS"] == 0 and header["ORDERING"] == "RING"


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
        (["--lambda-min", "200"], "lambda_min"),
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


def test_resume_records_the_realisations_asked_for(tmp_path, capsys):
    """``--resume --realisations N`` grows the run and the stored configuration says N (the
    configuration equals what the file holds); a smaller N keeps the larger count stored."""
    from crsky.io import runfile

    path = tmp_path / "run.h5"
    tiny1 = [a if a != "2" or i != 3 else "1" for i, a in enumerate(TINY)]  # --realisations 1
    assert tiny1[2:4] == ["--realisations", "1"]
    assert run_cli(["simulate", *tiny1, "--out", str(path)], capsys)[0] == 0
    assert runfile.read_config(path)["realisations"] == 1
    assert run_cli(["simulate", *TINY, "--out", str(path), "--resume"], capsys)[0] == 0
    assert runfile.read_config(path)["realisations"] == 2 == len(runfile.completed(path))
    assert run_cli(["simulate", *tiny1, "--out", str(path), "--resume"], capsys)[0] == 0
    assert runfile.read_config(path)["realisations"] == 2 == len(runfile.completed(path))


def test_tsit5_default_tolerances_are_the_library_ones_in_float64():
    """The configuration's Tsit5 defaults: those of ``backtrack`` in float64; in float32 the
    tightest a step controller meets (rtol of a few ulps)."""
    import inspect

    from crsky.physics.tracing import backtrack
    from crsky.pipelines.ensemble import SimulationConfig

    library = inspect.signature(backtrack).parameters
    c64 = SimulationConfig(solver="tsit5", dtype="float64")
    assert (c64.rtol, c64.atol) == (library["rtol"].default, library["atol"].default)
    c32 = SimulationConfig(solver="tsit5")
    assert (c32.rtol, c32.atol) == (1e-6, 1e-8)
    assert SimulationConfig(rtol=1e-9, dtype="float64").rtol == 1e-9  # given values are kept
    assert SimulationConfig(**c64.to_dict()) == c64  # stored resolved, reloads equal


@pytest.mark.slow  # compiling the adaptive solver: 80-140 s on a loaded 2-core machine
def test_tsit5_defaults_agree_with_a_tight_reference(tmp_path, capsys):
    """A float64 Tsit5 run with default tolerances (the library's rtol 1e-8, atol 1e-10)
    against scipy's DOP853 at rtol 1e-12 on the stored field, tΩ ≤ 10 (before chaos amplifies
    rounding). Measured on 12 trajectories of another 16-mode field to tΩ = 10: 2.7e-8 Lc at
    these defaults, 1.1e-5 Lc at the former default rtol 1e-6 (which this bound rejects)."""
    from scipy.integrate import solve_ivp

    from crsky.io import runfile

    path = tmp_path / "run.h5"
    argv = ["simulate", "--nside", "1", "--realisations", "1", "--modes", "16", "--t-omega-min",
            "1", "--t-omega-max", "10", "--n-times", "2", "--solver", "tsit5", "--dtype",
            "float64", "--save-trajectories", "--no-progress", "--out", str(path)]
    assert run_cli(argv, capsys)[0] == 0
    config = runfile.read_config(path)
    assert (config["rtol"], config["atol"]) == (1e-8, 1e-10)
    run = runfile.load(path, ("r", "modes/k", "modes/amplitude", "modes/phase"))
    k, a, beta = (run[f"modes/{n}"][0] for n in ("k", "amplitude", "phase"))
    r_l = config["r_larmor"]

    def rhs(tau, y):  # dx/dτ = −r_L p̂, dp̂/dτ = −p̂ × (ẑ + δB(x)) (back-tracking)
        x, p = y[:3], y[3:]
        b = np.cos(k @ x + beta) @ a + np.array([0.0, 0.0, 1.0])
        return np.concatenate([-r_l * p, -np.cross(p, b)])

    ref = np.stack([
        solve_ivp(rhs, (0, 10.0), np.concatenate([np.zeros(3), -n]), method="DOP853",
                  t_eval=run["t_omega"], rtol=1e-12, atol=1e-14).y[:3].T
        for n in run["directions"]
    ], axis=1)
    assert np.max(np.abs(run["r"][0] - ref)) < 5e-7
