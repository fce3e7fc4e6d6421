"""Shared checks of the hostile-input tests: run a ``crsky`` command in-process and hold its
error to the promise of ``docs/promises.md`` (one line naming the parameter or file, no
traceback)."""

import signal
import subprocess

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


def popen_interruptible(cmd, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd, **kwargs)`` whose child answers Ctrl-C (SIGINT) even when this
    test process was started with SIGINT ignored (e.g. as a background job of a
    non-interactive shell), which the child would otherwise inherit through ``exec``."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return subprocess.Popen(cmd, **kwargs)
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
