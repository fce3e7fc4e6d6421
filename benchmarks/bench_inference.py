"""Benchmark: beam and spectrum posteriors (4 chains x 1000 draws after 1000 warm-up) on the CPU.

Runs ``crsky infer`` on the shipped run files (default ``inference/milagro_beam.toml``,
``inference/mock_icecube_hawc_p.toml``; any ``inference/<name>.toml`` with ``--runs``) and prints,
per run, the NUTS wall time (compilation included), the smallest bulk ESS and ESS per second,
then the posterior median and intervals of each sampled parameter. Chains run in parallel, one
CPU device per chain (as ``crsky infer`` does). Not a test. Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py [--runs milagro_beam] [--keep DIR]

and copy the printed table into benchmarks/RESULTS.md (section "Inference").
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpyro

numpyro.set_host_device_count(4)

from crsky.cli import main as crsky  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("milagro_beam", "mock_icecube_hawc_p")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS))
    parser.add_argument("--keep", help="write the run folders here (must not exist)")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("| run | chains x draws | NUTS wall (s) | min ESS bulk | ESS/s | max r_hat | "
          "divergences | Laplace (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    posteriors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            out = Path(args.keep or tmp) / run
            code = crsky(["infer", str(ROOT / "inference" / f"{run}.toml"), "--out", str(out)])
            summary = json.loads((out / "summary.json").read_text())
            params = summary["parameters"]
            ess = min(p["ess_bulk"] for p in params.values())
            r_hat = max(p["r_hat"] for p in params.values())
            wall = summary["nuts_wall_s"]
            sampler = summary["sampler"]
            print(f"| {run} | {sampler['chains']} x {sampler['samples']} | {wall:.1f} | "
                  f"{ess:.0f} | {ess / wall:.0f} | {r_hat:.4f} | "
                  f"{summary['diagnostics']['divergences']} | "
                  f"{summary['laplace']['wall_s']:.1f} | exit {code}", flush=True)
            posteriors[run] = {k: {q: v[q] for q in ("median", "q68", "q95")}
                               for k, v in params.items()}
    print(json.dumps(posteriors, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
