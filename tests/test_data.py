"""Data loaders: C_l tables (validation errors name file, line, column), beam and experiment files.

References: the shipped data files against the values the papers quote (exact;
docs/physics.md (R15) and data/README.md); the cosmic-variance
formula against its closed form at a hand-computed point (1e-15 relative, float64 round-off).
"""

import math
from pathlib import Path

import numpy as np
import pytest

from crsky.inference import data
from crsky.io import tables
from crsky.pipelines import tabulate

ROOT = Path(__file__).resolve().parents[1]
HEADER = "ell,cl,error,experiment,f_sky,noise"


def write(tmp_path, text, name="cl.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cl_table_round_trip(tmp_path):
    table = data.ClTable(
        ell=np.array([1, 2, 3, 2]), cl=np.array([1e-6, -2e-9, 3e-9, 4e-9]),
        error=np.array([1e-7, 2e-9, 1e-9, 1e-9]), experiment=np.array(["A", "A", "A", "B"]),
        f_sky=np.array([0.3, 0.3, 0.3, 0.7]), noise=np.array([2.5e-11] * 3 + [math.nan]),
        meta={"mock": "true", "seed": "3"},
    )
    path = tmp_path / "t.csv"
    tables.write_cl_table(path, table)
    back = tables.load_cl_table(path)
    for column in data.CL_COLUMNS:
        np.testing.assert_array_equal(getattr(back, column), getattr(table, column))
    assert back.meta == table.meta
    assert back.experiments == ("A", "B")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("ell,cl,error,experiment,f_sky\n1,1,1,A,0.3\n", "line 1: missing column(s) noise"),
        (f"{HEADER}\n1,1e-6,-1e-7,A,0.3,0\n", "line 2, column 'error': error must be > 0"),
        (f"{HEADER}\n1,nan,1e-7,A,0.3,0\n", "line 2, column 'cl': value must be finite"),
        (f"{HEADER}\n1,inf,1e-7,A,0.3,0\n", "line 2, column 'cl': value must be finite"),
        (f"{HEADER}\n1,1,1,A,0.3,0\n2,1,1,A,0.3,0\n1,1,1,A,0.3,0\n",
         "line 4, column 'ell': duplicate ell=1 for experiment 'A' (first on line 2)"),
        (f"{HEADER}\n1.5,1,1,A,0.3,0\n", "line 2, column 'ell': ell must be an integer"),
        (f"{HEADER}\n1,1,1,A,1.3,0\n", "line 2, column 'f_sky': f_sky must lie in (0, 1]"),
        (f"{HEADER}\n1,1,1,A,0.3,-1\n", "line 2, column 'noise': noise must be >= 0"),
        (f"{HEADER}\n1,x,1,A,0.3,0\n", "line 2, column 'cl': 'x' is not a number"),
        (f"{HEADER}\n1,1,1,A,0.3\n", "line 2: 5 cells, header has 6 columns"),
        (f"{HEADER}\n1,1,1,A,0.3,0\n2,1,1,A,0.4,0\n", "line 3, column 'f_sky': 0.4 differs"),
        (f"{HEADER},extra\n1,1,1,A,0.3,0,1\n", "unknown or repeated column(s) ['extra']"),
        (f"# only: header\n{HEADER}\n", "no data rows"),
    ],
)
def test_cl_table_errors_name_file_row_column(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(ValueError) as info:
        tables.load_cl_table(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_cl_table_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tables.load_cl_table(tmp_path / "nope.csv")


def test_shipped_observations_match_observations_md():
    beam = tables.load_beam_observations(ROOT / "data" / "milagro_beam.toml")
    assert (beam.width_deg, beam.fractional_excess, beam.p_bmax_tev) == (10.0, 0.1, 10.0)
    assert beam.energy_tev == (1.0, 2.0)
    assert all("beam paper" in s for s in beam.sources.values())
    exps = tables.load_experiments(ROOT / "data" / "experiments.toml")
    assert (exps["IceCube"].f_sky, exps["IceCube"].noise) == (0.3, 2.5e-11)
    assert (exps["HAWC"].f_sky, exps["HAWC"].noise) == (0.7, 1.8e-10)


def test_shipped_mock_table_is_labelled_and_consistent():
    pytest.importorskip("crsky.physics.bgk")  # the mock table is made with the BGK closure
    table = tables.load_cl_table(ROOT / "data" / "mock_icecube_hawc_cl.csv")
    assert table.meta["mock"] == "true"
    assert {"truth", "seed", "command"} <= set(table.meta)
    exps = tables.load_experiments(ROOT / "data" / "experiments.toml")
    for name in table.experiments:
        rows = table.experiment == name
        assert np.all(table.f_sky[rows] == exps[name].f_sky)
        assert np.all(table.noise[rows] == exps[name].noise)
        assert table.ell[rows].max() == exps[name].ell_max


def test_beam_file_errors(tmp_path):
    path = write(tmp_path, '[width_deg]\nvalue = -1\nsource = "x"\n', "b.toml")
    with pytest.raises(ValueError, match="width_deg.value must be > 0"):
        tables.load_beam_observations(path)
    path = write(tmp_path, '[width]\nvalue = 1\nsource = "x"\n', "c.toml")
    with pytest.raises(ValueError, match="unknown quantity 'width'"):
        tables.load_beam_observations(path)


def test_cosmic_variance_sigma_closed_form():
    # l = 4, f_sky = 0.5: sqrt(2 / (9 * 0.5)) = 2/3.
    got = float(data.cosmic_variance_sigma(1e-8, 4, 0.5, 2e-9))
    assert got == pytest.approx((2 / 3) * 1.2e-8, rel=1e-15)


def test_mock_table_draws_have_the_stated_scatter():
    """Pulls (cl - truth)/error of a mock are standard normal (over 5000 rows)."""
    bgk = pytest.importorskip("crsky.physics.bgk")

    exp = data.Experiment("X", 0.3, 2.5e-11, 50, "test")
    pulls = []
    for seed in range(100):
        table = data.mock_cl_table(0.5, 1e-6, [exp], seed, ell_min=1)
        truth = np.asarray(bgk.cl(0.5, table.ell, 1e-6))
        pulls.append((table.cl - truth) / table.error)
    pulls = np.concatenate(pulls)
    # Mean and variance of 5000 N(0,1) draws: standard errors 0.014 and 0.02; 4-sigma bounds.
    assert abs(pulls.mean()) < 0.06
    assert abs(pulls.var() - 1) < 0.08
    assert table.meta["truth"] == "p=0.5, q1=1e-06"
    assert table.meta["seed"] == "99"


def test_cl_table_from_run_computes_only_its_orientation(tmp_path, monkeypatch):
    from crsky.io import run as run_module
    from crsky.io import runfile
    from crsky.pipelines import ensemble

    config = ensemble.SimulationConfig(nside=2, realisations=2, modes=16, t_omega_max=5.0,
                                       n_times=3, dtype="float64")
    ensemble.run_ensemble(config, tmp_path / "run.h5", progress=False)
    run = runfile.load(tmp_path / "run.h5")
    expected = run.statistics("perpendicular")
    calls = []
    original = run_module.ensemble_statistics
    monkeypatch.setattr(run_module, "ensemble_statistics",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    table = tabulate.cl_table_from_run(run, "perpendicular")
    assert len(calls) == 1  # the parallel gradient is not computed
    np.testing.assert_array_equal(table.cl, np.asarray(expected.cl_hat[-1])[table.ell])
    np.testing.assert_array_equal(table.error, np.asarray(expected.cl_hat_err[-1])[table.ell])


def test_cl_table_from_run_at_a_saved_time(tmp_path):
    from crsky.io import runfile
    from crsky.pipelines import ensemble

    config = ensemble.SimulationConfig(nside=2, realisations=2, modes=16, t_omega_max=5.0,
                                       n_times=3, dtype="float64")
    ensemble.run_ensemble(config, tmp_path / "run.h5", progress=False)
    run = runfile.load(tmp_path / "run.h5")
    stats = run.statistics("parallel")
    t_mid = float(run.t_omega[1])
    table = tabulate.cl_table_from_run(run, t_omega=t_mid * (1 + 1e-9))
    np.testing.assert_array_equal(table.cl, np.asarray(stats.cl_hat[1])[table.ell])
    np.testing.assert_array_equal(table.noise, float(stats.noise[1]))
    assert table.meta["source"].endswith(f"t_omega = {t_mid:.6g}")
    assert table.meta["realisations"] == "2 (of 2 configured)"
    with pytest.raises(ValueError, match="t_omega must be one of the run's saved times 1, "):
        tabulate.cl_table_from_run(run, t_omega=3.0)
