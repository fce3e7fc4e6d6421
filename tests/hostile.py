"""Shared checks of the hostile-input tests: run a ``crsky`` command in-process and hold its
error to the promise of ``docs/promises.md`` (one line naming the parameter or file, no
traceback)."""

from crsky.cli import main


def run_cli(argv, capsys):
    """``crsky ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(command: str, err: str, *needles: str) -> None:
    """``err`` is one line ``crsky COMMAND: error: ...`` holding every needle."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"crsky {command}: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
