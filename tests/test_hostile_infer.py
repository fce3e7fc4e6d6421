"""Hostile input to ``crsky infer``: run files with values of the wrong type or shape, binary
or missing data files, bad output folders. Every case must stop before sampling.

Reference: ``docs/promises.md`` (one line naming the run file and key, exit code 2).
"""

import shutil
from functools import partial
from pathlib import Path

import pytest
from hostile import assert_one_line as one_line
from hostile import run_cli

assert_one_line = partial(one_line, "infer")


ROOT = Path(__file__).resolve().parents[1]
SPECTRUM = """model = "spectrum_p"
[data]
cl_table = "mock.csv"
ell_min = 1
ell_max = 18
experiments = ["HAWC"]
"""


@pytest.fixture
def folder(tmp_path):
    shutil.copy(ROOT / "data" / "mock_icecube_hawc_cl.csv", tmp_path / "mock.csv")
    return tmp_path


BAD = [
    ("cl_table = 5", "cl_table must be a file name"),
    ("cl_table = ['mock.csv']", "cl_table must be a file name"),
    ("ell_min = [1, 2]", "ell_min must be an integer"),
    ("ell_max = 'ten'", "ell_max must be an integer"),
    ("ell_max = 2.5", "ell_max must be an integer"),
    ('experiments = "HAWC"', "experiments must be a list"),
    ("experiments = [1, 2]", "experiments must be a list"),
    ("experiments = []", "at least one experiment"),
]


@pytest.mark.parametrize(("line", "needle"), BAD, ids=[b for b, _ in BAD])
def test_data_values_of_the_wrong_type(line, needle, folder, capsys):
    key = line.split("=")[0].strip()
    body = "\n".join(
        line if text.startswith(key + " ") else text for text in SPECTRUM.splitlines()
    )
    run = folder / "run.toml"
    run.write_text(body + "\n")
    code, _, err = run_cli(["infer", str(run), "--out", str(folder / "out")], capsys)
    assert code == 2
    assert_one_line(err, str(run), needle)
    assert not (folder / "out").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [("data = 5", "'data'"), ("priors = 5", "'priors'"), ("sampler = [1]", "'sampler'"),
     ("diagnostics = 'strict'", "'diagnostics'")],
)
def test_tables_given_as_values(extra, needle, folder, capsys):
    if extra.startswith("data"):
        body = SPECTRUM.split("[data]")[0] + extra + "\n"
    else:
        body = SPECTRUM.split("[data]")[0] + extra + "\n[data]" + SPECTRUM.split("[data]")[1]
    run = folder / "run.toml"
    run.write_text(body)
    code, _, err = run_cli(["infer", str(run), "--out", str(folder / "out")], capsys)
    assert code == 2
    assert_one_line(err, str(run), needle, "must be a table")


@pytest.mark.parametrize(
    ("section", "needle"),
    [("[sampler]\nchains = 'four'", "chains"), ("[sampler]\nseed = -3", "seed"),
     ("[sampler]\nwarmup = [1]", "warmup"),
     ("[sampler]\nsamples = 1000000000000", "samples=1000000000000 needs about"),
     ("[diagnostics]\nr_hat_max = 'x'", "r_hat_max"),
     ("[priors]\np = 5", "prior 'p'"), ("[priors]\np = { dist = 'uniform', low = 'a', high = 1 }",
                                        "prior 'p' low")],
)
def test_sections_with_values_of_the_wrong_type(section, needle, folder, capsys):
    run = folder / "run.toml"
    run.write_text(SPECTRUM + section + "\n")
    code, _, err = run_cli(["infer", str(run), "--out", str(folder / "out")], capsys)
    assert code == 2
    assert_one_line(err, str(run), needle)


def test_binary_table(folder, capsys):
    (folder / "mock.csv").write_bytes(bytes(range(256)))
    run = folder / "run.toml"
    run.write_text(SPECTRUM)
    code, _, err = run_cli(["infer", str(run), "--out", str(folder / "out")], capsys)
    assert code == 2
    assert_one_line(err, str(folder / "mock.csv"), "not a text file")


def test_missing_table_and_folder_as_table(folder, capsys):
    run = folder / "run.toml"
    for target in ("absent.csv", "."):
        run.write_text(SPECTRUM.replace('"mock.csv"', f'"{target}"'))
        code, _, err = run_cli(["infer", str(run), "--out", str(folder / "out")], capsys)
        assert code == 2
        assert_one_line(err, "C_l table")


OBSERVED = {"width_deg": "10.0", "fractional_excess": "0.1", "p_bmax_tev": "10.0",
            "energy_tev": "[1.0, 2.0]"}


@pytest.mark.parametrize(
    ("key", "text", "needle"),
    [("width_deg", "width_deg = 5", "[width_deg]"),
     ("energy_tev", "[energy_tev]\nvalue = [1, 2, 3]\nsource = 's'", "energy_tev.value"),
     ("energy_tev", "[energy_tev]\nvalue = 2\nsource = 's'", "energy_tev.value"),
     ("width_deg", "[width_deg]\nvalue = [1, 2]\nsource = 's'", "width_deg.value"),
     ("width_deg", "[width_deg]\nvalue = 'wide'\nsource = 's'", "width_deg.value")],
)
def test_beam_observations_of_the_wrong_shape(key, text, needle, tmp_path, capsys):
    tables = [text if k == key else f"[{k}]\nvalue = {v}\nsource = 's'"
              for k, v in OBSERVED.items()]
    (tmp_path / "beam.toml").write_text("\n".join(tables) + "\n")
    run = tmp_path / "run.toml"
    run.write_text('model = "beam"\n[data]\nobservations = "beam.toml"\n'
                   "[data.log_sigma]\nwidth_deg = 0.3\n")
    code, _, err = run_cli(["infer", str(run), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert_one_line(err, str(tmp_path / "beam.toml"), needle)


def test_output_folder_checks(folder, capsys):
    run = folder / "run.toml"
    run.write_text(SPECTRUM)
    a_file = folder / "file"
    a_file.write_text("x")
    for out, needle in ((a_file, "is a file"), (folder / "no" / "out", "does not exist"),
                        (folder, "already exists")):
        code, _, err = run_cli(["infer", str(run), "--out", str(out)], capsys)
        assert code == 2
        assert_one_line(err, str(out), needle)
