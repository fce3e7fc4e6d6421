"""benchmarks/device_check.sh, rehearsed on the CPU at toy sizes (DRY=1).

GPU time is scarce, so the script must work the first time it runs on a device: every stage
has to run, and leave the files its results are read from.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from crsky.io.tables import load_cl_table

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_dry_run_leaves_every_result(tmp_path):
    out = tmp_path / "out"
    env = os.environ | {
        "DRY": "1", "OUT": str(out), "PY": sys.executable, "RUNS": str(tmp_path / "runs"),
        "WHL": str(tmp_path / "no-wheels"), "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True,
        text=True, timeout=900,
    )
    log = (out / "log.txt").read_text()
    assert proc.returncode == 0, proc.stderr[-2000:] + log[-2000:]  # the failed stages
    # every stage ran to its end; none was stopped or failed
    exits = [line.rsplit("exit ", 1)[1] for line in log.splitlines() if " exit " in line]
    assert exits == ["0"] * 10, log
    # the device's files: at most 8 come back from a call
    assert len(list(out.iterdir())) <= 8
    bench = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert [(row["variant"], row["realisations"]) for row in bench] == [
        ("engine", 1), ("engine", 2), ("engine", 1), ("fori", 1), ("fused", 1)]
    assert all(row["mode_evaluations_per_second_median"] > 0 for row in bench)
    assert json.loads((out / "roofline.json").read_text())["tracer_fraction_of_roof"] > 0
    paper = json.loads((out / "paper.json").read_text())
    assert paper["realisations"] == 4 and paper["realisations_computed"] == 4
    assert len(json.loads((out / "paper_realisations.json").read_text())) == 4
    table = load_cl_table(out / "paper_cl.csv")
    assert table.ell[0] == 1 and table.ell[-1] == 16
    steps = [json.loads(line) for line in (out / "step.jsonl").read_text().splitlines()]
    assert [row["dt"] for row in steps] == [0.02, 0.01]
