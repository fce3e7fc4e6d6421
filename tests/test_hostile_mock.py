"""Hostile input to ``crsky mock``: bad seeds, experiments files of the wrong type or shape,
binary files, output paths.

Reference: ``docs/promises.md`` (one line naming the parameter, file and key; exit code 2).
"""

from functools import partial

import pytest
from hostile import assert_one_line as one_line
from hostile import run_cli

assert_one_line = partial(one_line, "mock")


BASE = ["mock", "--p", "0.5", "--q1", "1e-3", "--seed", "1"]


def test_negative_seed(tmp_path, capsys):
    code, _, err = run_cli(["mock", "--p", "0.5", "--q1", "1e-3", "--seed", "-1", "--out",
                            str(tmp_path / "m.csv")], capsys)
    assert code == 2
    assert_one_line(err, "seed", ">= 0")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("icecube = 5", "[icecube]"),
        ("[icecube]\nf_sky = 'abc'", "[icecube]"),
        ("[icecube]\nf_sky = [0.5, 0.6]", "[icecube]"),
        ("", "at least one experiment"),
    ],
)
def test_experiments_file_of_the_wrong_shape(body, needle, tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(body + "\n")
    code, _, err = run_cli([*BASE, "--experiments", str(path), "--out", str(tmp_path / "m.csv")],
                           capsys)
    assert code == 2
    assert_one_line(err, needle)
    if body:
        assert str(path) in err


def test_binary_experiments_file(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_bytes(b"\xff\xfe\x00binary" * 10)
    code, _, err = run_cli([*BASE, "--experiments", str(path), "--out", str(tmp_path / "m.csv")],
                           capsys)
    assert code == 2
    assert_one_line(err, str(path), "not a text file")


def test_output_paths(tmp_path, capsys):
    existing = tmp_path / "m.csv"
    existing.write_text("keep")
    for out, needle in ((existing, "--overwrite"), (tmp_path / "no" / "m.csv", "does not exist"),
                        (tmp_path, "is a folder")):
        code, _, err = run_cli([*BASE, "--out", str(out)], capsys)
        assert code == 2
        assert_one_line(err, str(out), needle)
    assert existing.read_text() == "keep"


def test_overflowing_amplitude(tmp_path, capsys):
    code, _, err = run_cli(["mock", "--p", "0.99", "--q1", "1e307", "--seed", "1", "--out",
                            str(tmp_path / "m.csv")], capsys)
    assert code == 2
    assert_one_line(err, "q1=1e+307", "not finite")
    assert not (tmp_path / "m.csv").exists()
