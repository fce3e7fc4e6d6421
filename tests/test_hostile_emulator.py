"""Hostile input to ``crsky emulator``: output paths are checked before any ensemble runs, the
overwrite rule, and Ctrl-C reports the stored realisations and the command that continues.

Reference: ``docs/promises.md``.
"""

import shlex
import shutil
from functools import partial

import pytest
from hostile import assert_one_line as one_line
from hostile import run_cli

assert_one_line = partial(one_line, "emulator")


def argv(runs, out, *extra):
    return ["emulator", "--config", "emulator", "--sigmas", "0.5", "1.0", "--runs", str(runs),
            "--out", str(out), "--no-progress", *extra]


def test_bad_paths_are_reported_before_any_ensemble(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [(tmp_path / "runs", tmp_path / "missing" / "t.csv", "does not exist"),
             (tmp_path / "runs", a_file, "--overwrite"),
             (tmp_path / "runs", tmp_path, "is a folder"),
             (a_file, tmp_path / "t.csv", "is a file, not a folder")]
    for runs, out, needle in cases:
        code, _, err = run_cli(argv(runs, out), capsys)
        assert code == 2
        assert_one_line(err, needle)
        assert not (tmp_path / "runs").exists()  # no ensemble ran
    assert a_file.read_text() == "x"


@pytest.mark.parametrize(("grid", "needle"), [
    (["--sigmas", "1.0", "0.5"], "sigmas"),
    (["--sigmas", "-1", "1"], "sigmas"),
    (["--sigmas", "1", "--rl-over-lc", "0.2", "0.1"], "rl_over_lcs"),
    (["--sigmas", "1", "--rl-over-lc", "0", "0.1"], "rl_over_lcs"),
    (["--sigmas", "1", "--test-realisations", "1"], "test_realisations"),
])
def test_bad_grid(grid, needle, tmp_path, capsys):
    code, _, err = run_cli(["emulator", "--config", "emulator", *grid, "--runs",
                            str(tmp_path / "runs"), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 2
    assert_one_line(err, needle)


def test_interrupt_names_stored_realisations_and_the_command(tiny_run, tmp_path, capsys,
                                                             monkeypatch):
    import crsky.pipelines.tabulate as tabulate

    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(tiny_run, runs / "sigma_0.5_rl_0.1_dt_0.02.h5")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tabulate, "build_table", interrupted)
    command = argv(runs, tmp_path / "t.csv")
    code, _, err = run_cli(command, capsys)
    assert code == 130
    assert "Traceback" not in err
    head, _, again = err.strip().partition("; continue with: ")
    assert head == f"crsky emulator: interrupted; 2 realisations are safely stored in {runs}"
    assert shlex.split(again) == ["crsky", *command]
