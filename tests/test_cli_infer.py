"""``crsky infer`` and ``crsky mock``: bad input fails before sampling; a small run writes outputs.

The end-to-end run uses a SYNTHETIC emulator table (made in the test, not simulated) and noiseless
C_l at sigma = 1, r_L/Lc = 0.1; reference: those true values must lie in the 95 % interval.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_emulator import synthetic_ratio, write_table

from crsky.cli import main
from crsky.inference import data
from crsky.io import tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sigma_run(tmp_path):
    """A spectrum_sigma run file on a synthetic emulator and exact C_l at sigma=1, rl=0.1."""
    write_table(tmp_path / "emu.csv")
    ell = np.arange(1, 9)
    cl = 1e-6 * synthetic_ratio(1.0, 0.1, ell)
    sigma = np.asarray(data.cosmic_variance_sigma(cl, ell, 0.7, 1.8e-10))
    tables.write_cl_table(tmp_path / "cl.csv", data.ClTable(
        ell=ell, cl=cl, error=sigma, experiment=np.full(8, "HAWC"), f_sky=np.full(8, 0.7),
        noise=np.full(8, 1.8e-10), meta={"mock": "true", "truth": "sigma=1, rl_over_lc=0.1"}))
    text = """model = "spectrum_sigma"
[data]
cl_table = "cl.csv"
emulator = "emu.csv"
ell_min = 1
ell_max = 8
[sampler]
chains = 1
warmup = 150
samples = 150
seed = 1
[diagnostics]
ess_min_per_chain = 1e9
"""
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_small_run_writes_outputs_and_fails_impossible_thresholds(sigma_run, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["infer", str(sigma_run), "--out", str(out_dir), "--json",
                              "--samples", "160", "--seed", "2"], capsys)
    assert code == 1 and "warning: diagnostics failed" in err and "ess_bulk" in err
    printed = json.loads(out)
    for name in ("sigma", "rl_over_lc", "c1"):
        row = printed["parameters"][name]
        assert set(row) == {"median", "q68", "q95", "r_hat", "ess_bulk", "ess_tail"}
    assert printed["parameters"]["sigma"]["q95"][0] < 1.0 < printed["parameters"]["sigma"]["q95"][1]
    lo, hi = printed["parameters"]["rl_over_lc"]["q95"]
    assert lo < 0.1 < hi
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["data"]["mock"] == "true" and "laplace" in summary
    assert summary["diagnostics"]["passed"] is False
    for name in ("posterior.nc", "trace.png", "corner.png"):
        assert (out_dir / name).stat().st_size > 0
    # the command-line flags override the run file's [sampler] (chains 1, 150 draws, seed 1)
    assert summary["sampler"]["samples"] == 160 and summary["sampler"]["chains"] == 1
    assert summary["sampler"]["seed"] == 2 and summary["sampler"]["warmup"] == 150
    import arviz as az

    idata = az.from_netcdf(out_dir / "posterior.nc")
    assert idata.posterior.sizes["draw"] == 160
    assert {"prior", "prior_predictive", "posterior_predictive", "observed_data",
            "sample_stats"} <= set(idata.groups())
    for name in ("energy", "tree_depth", "step_size", "diverging", "acceptance_rate", "lp"):
        assert name in idata.sample_stats, name
    # ℓ labels the observed and predicted spectra
    np.testing.assert_array_equal(idata.observed_data["ell"], np.arange(1, 9))
    assert idata.posterior_predictive["cl_obs"].dims == ("chain", "draw", "ell")


def test_sampler_flags_are_validated_before_sampling(sigma_run, tmp_path, capsys):
    code, _, err = run_cli(["infer", str(sigma_run), "--out", str(tmp_path / "o"), "--chains",
                            "0"], capsys)
    assert code == 2 and "chains must be an integer >= 1" in err
    assert not (tmp_path / "o").exists()


def test_truths_from_data_headers():
    from crsky.plotting.posterior import truths_from_meta

    names = ("p", "q1", "sigma", "rl_over_lc")
    assert truths_from_meta({"truth": "p=0.5, q1=1e-06"}, names) == {"p": 0.5, "q1": 1e-6}
    assert truths_from_meta({"truth": "sigma = 1, r_larmor = 0.1"}, names) == {
        "sigma": 1.0, "rl_over_lc": 0.1}
    assert truths_from_meta({"truth": "p=half, colour=2"}, names) == {}
    assert truths_from_meta({}, names) == {}


def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (("[data]", "colour = 1\n[data]"), "unknown key 'colour' (line 2)"),
    (("[sampler]", "[priors]\nsgma = {dist='uniform', low=0.5, high=2}\n[sampler]"),
     "unknown parameter(s) 'sgma'"),
    (("[sampler]", "[priors]\nsigma = {dist='uniform', low=0.5, high=9}\n[sampler]"),
     "[0.5, 9] leaves the parameter's support (0.25, 4)"),
    (("ell_max = 8", "ell_max = 12"), "[1, 12] reaches beyond the data, which cover ell 1..8"),
    (("ell_min = 1", "ell_min = 10\nell_max = 12"), None),
    (("ell_min = 1", "ell_min = 0"), "ell_min must be an integer >= 1"),
    (('model = "spectrum_sigma"', 'model = "sky"'), "model must be one of"),
    (("chains = 1", "chains = 0"), "chains must be an integer >= 1"),
    (("seed = 1", "sed = 1"), "unexpected keyword argument 'sed'"),
    (("ell_max = 8", "ell_max = 8\nemulator_degree = 4"),
     "[data] emulator_degree must be below the number of values on each axis"),
    (("ell_max = 8", "ell_max = 8\nemulator_degree = 1.0"), "emulator_degree must be an integer"),
    (("[sampler]", "[priors]\nc1 = {dist='loguniform', low=1e-3, high=1e-1}\n[sampler]"),
     "the c1 prior [0.001, 0.1] excludes the data's C^_1 = 1e-06"),
])
def test_bad_run_files_fail_before_sampling(sigma_run, tmp_path, capsys, change, message):
    edit(sigma_run, *change)
    code, _, err = run_cli(["infer", str(sigma_run), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("crsky infer: error:")
    if message:
        assert message in err
    assert not (tmp_path / "o").exists()


def test_emulator_degree_is_passed_on_and_its_fit_recorded(sigma_run):
    """``emulator_degree`` reaches the emulator; the data header records the fit's chi2."""
    from crsky.cli.infer import build

    assert build(sigma_run)["data_meta"]["emulator"]["degree"] is None
    setup = build(edit(sigma_run, "ell_max = 8", "ell_max = 8\nemulator_degree = 2"))
    assert setup["kwargs"]["emulator"].degree == 2
    quality = setup["data_meta"]["emulator"]
    # 7 fitted multipoles (l = 2..8; l = 1 is exact), each over 5 sigma x 3 r_L nodes minus the
    # 6 terms of a quadratic in (ln sigma, ln r_L)
    assert quality["degree"] == 2 and quality["dof"] == 7 * (5 * 3 - 6)
    assert quality["chi2"] >= 0 and 0 <= quality["p_value"] <= 1


def test_existing_output_folder_is_refused(sigma_run, tmp_path, capsys):
    code, _, err = run_cli(["infer", str(sigma_run), "--out", str(tmp_path)], capsys)
    assert code == 2 and "already exists" in err


def test_mock_command_records_truth_seed_and_command(tmp_path, capsys):
    out = tmp_path / "mock.csv"
    argv = ["mock", "--experiments", str(ROOT / "data" / "experiments.toml"), "--p", "0.5",
            "--q1", "1e-6", "--seed", "7", "--out", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    table = tables.load_cl_table(out)
    assert table.meta["mock"] == "true" and table.meta["seed"] == "7"
    assert table.meta["truth"] == "p=0.5, q1=1e-06"
    assert table.meta["command"].startswith("crsky mock --experiments")
    assert table.experiments == ("IceCube", "HAWC")
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "--overwrite" in err
    # The recorded command regenerates the same table.
    assert run_cli(table.meta["command"].split()[1:], capsys)[0] == 0
    np.testing.assert_array_equal(tables.load_cl_table(out).cl, table.cl)


@pytest.mark.parametrize("run_file", sorted((ROOT / "inference").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_run_files_build(run_file):
    """Every shipped run file validates and builds its model (no sampling)."""
    from crsky.cli.infer import build

    setup = build(run_file)
    assert setup["sampler"].chains == 4 and setup["sampler"].samples == 1000
    assert set(setup["sampled"]) == set(setup["priors"])


@pytest.mark.parametrize("run_file", sorted((ROOT / "inference").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_run_files_wrap_at_100_columns(run_file):
    lines = run_file.read_text(encoding="utf-8").splitlines()
    assert [n for n, line in enumerate(lines, 1) if len(line) > 100] == []


def test_infer_sets_one_device_per_chain_before_jax_starts(tmp_path):
    """Building the spectrum_sigma model (emulator loaded) must not start JAX: the CPU device
    count set afterwards gives one device per chain, so the 4 chains run in parallel."""
    script = f"""
import jax
from crsky.inference import sampling
from crsky.cli import main
from crsky.io import tables

def report_devices(model, kwargs, config, **options):
    print("devices", len(jax.devices()), "chains", config.chains)
    raise SystemExit(0)

sampling.run_nuts = report_devices
main(["infer", {str(ROOT / "inference" / "simulated_sigma.toml")!r},
      "--out", {str(tmp_path / "out")!r}, "--no-laplace"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "devices 4 chains 4" in done.stdout


def test_table_forward_needs_the_va_prior_inside_the_table(tmp_path):
    """forward = "table" tabulates V_A/c over EXCESS_TABLE_DELTA: a prior reaching outside is
    rejected when the run file is built (before any tabulation or sampling)."""
    from crsky.cli.infer import build

    run = ROOT / "inference" / "milagro_beam.toml"
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "inference").mkdir()
    bad = tmp_path / "inference" / "bad.toml"
    bad.write_text(run.read_text())
    text = 'va_over_c = { dist = "loguniform", low = 3e-5, high = 3e-4 }'
    edit(bad, text, 'va_over_c = { dist = "loguniform", low = 3e-6, high = 3e-4 }')
    with pytest.raises(ValueError, match="va_over_c"):
        build(bad)
    assert build(run)["data_meta"]["excess_table"]["va_over_c"] == (1e-5, 1e-3)
