"""Hostile input to ``crsky plot``: damaged or foreign run files, missing datasets, bad output
folders, and the overwrite rule (no figure is replaced without ``--overwrite``).

Reference: ``docs/promises.md`` (one line naming the file, exit code 2, before any drawing).
"""

import shutil
from functools import partial

import h5py
import pytest
from hostile import assert_one_line as one_line
from hostile import run_cli

assert_one_line = partial(one_line, "plot")


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "not a readable HDF5 file"), (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "HDF5"),
     (b"ell,cl\n1,2\n", "not a readable HDF5 file"), (None, "does not exist")],
    ids=["empty", "truncated", "csv", "missing"],
)
def test_bad_run_files(content, needle, tmp_path, capsys):
    path = tmp_path / "run.h5"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run_cli(["plot", str(path), "--out", str(tmp_path / "fig")], capsys)
    assert code == 2
    assert_one_line(err, str(path), needle)
    assert not any((tmp_path / "fig").glob("*.png"))


def test_truncated_copy_of_a_real_run(tiny_run, tmp_path, capsys):
    path = tmp_path / "run.h5"
    path.write_bytes(tiny_run.read_bytes()[: tiny_run.stat().st_size // 2])
    code, _, err = run_cli(["plot", str(path), "--out", str(tmp_path / "fig")], capsys)
    assert code == 2
    assert_one_line(err, str(path))


@pytest.mark.parametrize("dataset", ["t_omega", "directions", "realisations"])
def test_run_file_with_a_missing_dataset(dataset, tiny_run, tmp_path, capsys):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_run, path)
    with h5py.File(path, "a") as f:
        del f[dataset]
    code, _, err = run_cli(["plot", str(path), "--out", str(tmp_path / "fig")], capsys)
    assert code == 2
    assert_one_line(err, str(path), repr(dataset))


def test_folder_given_as_run_file(tmp_path, capsys):
    code, _, err = run_cli(["plot", str(tmp_path), "--out", str(tmp_path / "fig")], capsys)
    assert code == 2
    assert_one_line(err, str(tmp_path), "folder")


def test_bad_output_folders(tiny_run, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, needle in ((a_file, "is a file, not a folder"),
                        (tmp_path / "missing" / "fig", "does not exist"),
                        (a_file / "fig", "is a file, not a folder")):
        code, _, err = run_cli(["plot", str(tiny_run), "--out", str(out)], capsys)
        assert code == 2, out
        assert_one_line(err, str(out), needle)


def test_figures_are_not_replaced_without_overwrite(tiny_run, tmp_path, capsys):
    """Also in the default folder RUN-plots/ on a second call."""
    path = tmp_path / "run.h5"
    shutil.copy(tiny_run, path)
    code, _, _ = run_cli(["plot", str(path)], capsys)
    assert code == 0
    figure = tmp_path / "run-plots" / "sky_map.png"
    before = figure.stat().st_mtime_ns
    code, _, err = run_cli(["plot", str(path)], capsys)
    assert code == 2
    assert_one_line(err, "--overwrite", "run-plots")
    assert figure.stat().st_mtime_ns == before
    code, _, _ = run_cli(["plot", str(path), "--overwrite"], capsys)
    assert code == 0
    assert figure.stat().st_mtime_ns > before


def test_realisation_not_in_the_run(tiny_run, tmp_path, capsys):
    code, _, err = run_cli(["plot", str(tiny_run), "--out", str(tmp_path / "f"),
                            "--realisation", "7"], capsys)
    assert code == 2
    assert_one_line(err, "realisation 7")
