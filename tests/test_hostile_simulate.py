"""Hostile input to ``crsky simulate``: sizes beyond memory, bad files and paths, wrong TOML
types, two writers on one run file, Ctrl-C.

Reference: the promises of ``docs/promises.md``: bad input is one line on stderr naming the
parameter or file, exit code 2, before any compute; Ctrl-C is one line with the stored count and
the ``--resume`` command, exit code 130; a run file has one writer.
"""

import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from hostile import assert_one_line as one_line
from hostile import popen_interruptible, run_cli

from crsky.io import runfile

assert_one_line = partial(one_line, "simulate")

TINY = ["--nside", "2", "--modes", "16", "--t-omega-max", "20", "--n-times", "4",
        "--no-progress"]


def peak_growth(fn, *args):
    """``fn(*args)`` and the growth in bytes of this process's peak resident memory during it."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    value = fn(*args)
    return value, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


# Sizes that cannot fit: each must be refused at once, naming the parameter (the estimate is
# bytes, so the message carries "needs about" and "available").
HUGE = [
    (["--nside", "4096"], "nside=4096"),
    (["--modes", "1000000000"], "modes=1000000000"),
    (["--n-times", "1000000000"], "n_times=1000000000"),
    (["--t-omega-max", "1e12"], "t_omega_max=1e+12"),
    (["--dt", "1e-30"], "dt=1e-30"),
    (["--dt", "1e-12", "--t-omega-max", "1e6"], "t_omega_max=1e+06, dt=1e-12"),
]


@pytest.mark.parametrize(("flags", "name"), HUGE, ids=[" ".join(f) for f, _ in HUGE])
def test_huge_request_is_refused_naming_the_parameter(flags, name, tmp_path, capsys):
    (code, _, err), growth = peak_growth(
        run_cli, ["simulate", *TINY, *flags, "--out", str(tmp_path / "r.h5")], capsys
    )
    assert code == 2
    assert growth < 2**28  # refused from an estimate: nothing large allocated
    assert re.search("needs about .* of memory|beyond any run", err), err
    assert_one_line(err, name)
    assert not (tmp_path / "r.h5").exists()


def test_huge_request_is_refused_under_a_memory_limit(tmp_path):
    """In a process limited to 3 GiB of address space (RLIMIT_AS), the refusal still comes as
    one line and exit 2 (no MemoryError, no traceback): nothing large is allocated, and the
    estimate is compared with the limit."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    for flags in (["--nside", "4096"],):  # one case: each process start costs seconds
        result = subprocess.run(
            [sys.executable, "-m", "crsky", "simulate", *TINY, *flags,
             "--out", str(tmp_path / "r.h5")],
            capture_output=True, text=True, timeout=120, preexec_fn=limit,
            env=os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
        )
        assert result.returncode == 2, result.stderr
        assert "needs about" in result.stderr and "Traceback" not in result.stderr


BAD_TOML = [
    ("nside = 'eight'", "'nside'"),
    ("modes = [1, 2]", "'modes'"),
    ("sigma2 = { a = 1 }", "'sigma2'"),
    ("solver = 5", "'solver'"),
    ("[nside]\nx = 1", "'nside'"),
    ("nside = ", "malformed"),
]


@pytest.mark.parametrize(("body", "name"), BAD_TOML)
def test_config_values_of_the_wrong_type(body, name, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(body + "\n")
    code, _, err = run_cli(["simulate", "--config", str(config), "--out",
                            str(tmp_path / "r.h5")], capsys)
    assert code == 2
    assert_one_line(err, name)


def test_binary_config(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_bytes(bytes(range(256)) * 4)
    code, _, err = run_cli(["simulate", "--config", str(config), "--out",
                            str(tmp_path / "r.h5")], capsys)
    assert code == 2
    assert_one_line(err, str(config), "not a text file")


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (tmp_path / "missing" / "r.h5", "does not exist"),
        (a_file / "r.h5", "is a file, not a folder"),
        (tmp_path, "is a folder, not a file"),
        (Path("/proc/crsky-test/r.h5"), "/proc/crsky-test"),
    ]
    for out, needle in cases:
        code, _, err = run_cli(["simulate", *TINY, "--realisations", "1", "--out", str(out)],
                               capsys)
        assert code == 2, out
        assert_one_line(err, str(out), needle)


def test_existing_output_needs_overwrite_or_resume(tmp_path, capsys):
    out = tmp_path / "r.h5"
    out.write_text("not a run")
    code, _, err = run_cli(["simulate", *TINY, "--out", str(out)], capsys)
    assert code == 2
    assert_one_line(err, str(out), "--overwrite")
    assert out.read_text() == "not a run"


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 40, b"plain text\n"])
def test_resume_from_a_damaged_or_foreign_file(content, tmp_path, capsys):
    out = tmp_path / "r.h5"
    out.write_bytes(content)
    code, _, err = run_cli(["simulate", *TINY, "--out", str(out), "--resume"], capsys)
    assert code == 2
    assert_one_line(err, str(out))


def test_resume_from_a_run_file_without_its_datasets(tmp_path, capsys):
    import h5py

    out = tmp_path / "r.h5"
    with h5py.File(out, "w") as f:
        f.attrs["format"] = runfile.FORMAT
        f.attrs["config"] = "{}"
    code, _, err = run_cli(["simulate", *TINY, "--out", str(out), "--resume"], capsys)
    assert code == 2
    assert_one_line(err, str(out))


def _wait_for(condition, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended early\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _stored(path: Path) -> int:
    try:
        return len(runfile.completed(path))
    except (OSError, ValueError):
        return 0


def test_reader_meeting_a_write_in_progress_waits_for_it(tiny_run, tmp_path):
    """Readers take no HDF5 lock, so they can meet a run file mid-write (HDF5 then reports
    'addr overflow' and similar). While a live writer holds the lock, the read is retried and
    returns the finished file; without a writer the same torn bytes are one ValueError."""
    path = tmp_path / "run.h5"
    whole = tiny_run.read_bytes()
    expected = runfile.completed(tiny_run)
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        runfile.completed(path)
    with runfile.writer_lock(path):
        finisher = threading.Timer(1.0, path.write_bytes, (whole,))
        finisher.start()
        try:
            assert runfile.completed(path) == expected
            assert runfile.load(path).indices.tolist() == expected
        finally:
            finisher.join()


def test_two_writers_readers_and_interrupt_then_resume(tmp_path, capsys):
    """One subprocess writes a run of a billion realisations (streamed: its to-do list is not
    materialised). While it runs: a second writer is refused at once, also with --overwrite;
    a reader does not block. SIGINT after the first stored realisation ends it with one line,
    the stored count and the --resume command, exit 130, and releases the lock; resuming
    (with the realisation count lowered so that it ends) completes the run."""
    out = tmp_path / "r.h5"
    argv = ["simulate", *TINY, "--realisations", "1000000000", "--out", str(out)]
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=1",
                        "OMP_NUM_THREADS": "1"}
    writer = popen_interruptible([sys.executable, "-m", "crsky", *argv], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for(lambda: _stored(out) >= 1, 120, "the first realisation", writer)
        assert runfile.lock_path(out).exists()
        for extra in ([], ["--overwrite"], ["--resume"]):
            code, _, err = run_cli([*argv, *extra], capsys)
            assert code == 2, extra
            assert_one_line(err, str(out), f"process {writer.pid}")
        # a reader takes no lock and does not wait (it may catch the file mid-write, then
        # reads again)
        assert any(_stored(out) >= 1 for _ in range(5))
        writer.send_signal(signal.SIGINT)
        _, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 130, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    match = re.fullmatch(
        r"crsky simulate: interrupted; (\d+) realisations are safely stored in (.+); "
        r"continue with: (crsky .*)", lines[-1])
    assert match, err
    assert int(match[1]) == _stored(out) >= 1
    again = shlex.split(match[3])
    assert again[1:] == [*argv, "--resume"]
    assert not runfile.lock_path(out).exists()
    # the resumed run, told to stop at stored + 1 realisations, completes them
    want = int(match[1]) + 1
    again[again.index("--realisations") + 1] = str(want)
    code, _, err = run_cli(again[1:], capsys)
    assert code == 0, err
    assert runfile.completed(out) == list(range(want))


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "r.h5"
    runfile.lock_path(path).write_text(f"{dead.pid} {socket.gethostname()}\n")
    with runfile.writer_lock(path) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock.exists()


def test_lock_of_a_live_process_is_refused(tmp_path):
    path = tmp_path / "r.h5"
    with runfile.writer_lock(path):
        with pytest.raises(runfile.RunFileBusy, match=f"process {os.getpid()}"):
            with runfile.writer_lock(path):
                pass
    with runfile.writer_lock(path):  # released: free again
        pass
