"""Hostile input to ``crsky cltable``: bad run files, bad output paths, the overwrite rule and
bad times/multipoles.

Reference: ``docs/promises.md`` (one line naming the file or parameter, exit code 2, before any
compute; never replace without ``--overwrite``).
"""

from functools import partial

import pytest
from hostile import assert_one_line as one_line
from hostile import run_cli

assert_one_line = partial(one_line, "cltable")


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage", b"# C_l\nell,cl\n"])
def test_non_hdf5_run_file(content, tmp_path, capsys):
    path = tmp_path / "run.h5"
    path.write_bytes(content)
    code, _, err = run_cli(["cltable", str(path), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 2
    assert_one_line(err, str(path))


def test_bad_output_paths(tiny_run, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, needle in ((tmp_path / "missing" / "t.csv", "does not exist"),
                        (a_file / "t.csv", "is a file, not a folder"),
                        (tmp_path, "is a folder, not a file"),
                        (a_file, "--overwrite")):
        code, _, err = run_cli(["cltable", str(tiny_run), "--out", str(out)], capsys)
        assert code == 2, out
        assert_one_line(err, str(out), needle)
    assert a_file.read_text() == "x"


def test_overwrite_replaces(tiny_run, tmp_path, capsys):
    out = tmp_path / "t.csv"
    out.write_text("old")
    code, _, err = run_cli(["cltable", str(tiny_run), "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert out.read_text().startswith("# mock: false")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--t-omega", "3.3"], "t_omega"), (["--t-omega", "-1"], "t_omega"),
     (["--ell-max", "0"], "ell_max"), (["--ell-max", "1000"], "ell_max")],
)
def test_bad_values(flags, needle, tiny_run, tmp_path, capsys):
    code, _, err = run_cli(["cltable", str(tiny_run), "--out", str(tmp_path / "t.csv"), *flags],
                           capsys)
    assert code == 2
    assert_one_line(err, needle)
    assert not (tmp_path / "t.csv").exists()
