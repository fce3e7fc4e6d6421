"""Multi-host ensemble with ``jax.distributed``: each process runs its share, then one merge.

Realisation ``i`` runs on process ``i mod P`` (:func:`crsky.pipelines.sharding.host_indices`); each
process writes its own run file ``<out>/host<p>.h5`` (resumable on its own) and, when all are
done, :func:`crsky.io.runfile.merge_runfiles` writes ``<out>/merged.h5``. No data crosses hosts
during the run: the trajectories of a realisation are split over the *local* devices only.

Runnable on one machine, with P local processes standing in for hosts::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multihost_example.py --processes 2 --out /tmp/mh

On a cluster, one process per host (``jax.distributed.initialize()`` reads SLURM/MPI/TPU
environments), then the merge once all have finished::

    srun -N 4 .venv/bin/python benchmarks/multihost_example.py --worker --out runs/mh
    .venv/bin/python benchmarks/multihost_example.py --merge --out runs/mh
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

# the reduced configuration of ``crsky simulate`` (seconds per realisation on a laptop CPU)
CONFIG = dict(nside=8, realisations=6, modes=64, t_omega_max=20.0, n_times=4)


def worker(out: Path, coordinator: str | None, processes: int | None, pid: int | None) -> None:
    import jax

    if coordinator:
        jax.distributed.initialize(coordinator, num_processes=processes, process_id=pid)
    else:
        jax.distributed.initialize()  # cluster auto-detection
    from crsky.pipelines.ensemble import SimulationConfig, run_ensemble
    from crsky.pipelines.sharding import host_indices

    config = SimulationConfig(**CONFIG)
    mine = host_indices(config.realisations)
    path = out / f"host{jax.process_index()}.h5"
    run_ensemble(config, path, indices=mine, resume=path.exists(), progress=False)
    print(f"process {jax.process_index()}/{jax.process_count()}: realisations {mine} -> {path}")


def merge(out: Path) -> None:
    from crsky.io.runfile import merge_runfiles
    from crsky.pipelines.ensemble import SimulationConfig

    hosts = sorted(out.glob("host*.h5"))
    merged = out / "merged.h5"
    merged.unlink(missing_ok=True)
    indices = merge_runfiles(hosts, merged)
    expected = list(range(SimulationConfig(**CONFIG).realisations))
    if indices != expected:
        sys.exit(f"missing realisations {sorted(set(expected) - set(indices))}: rerun the workers")
    print(f"merged {len(hosts)} run files, realisations {indices} -> {merged}")


def free_port() -> int:
    """A TCP port free on this machine now (the OS picks it), for the local coordinator."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder of the run files")
    p.add_argument("--processes", type=int, help="launch this many local processes, then merge")
    p.add_argument("--worker", action="store_true", help="run this process's share")
    p.add_argument("--merge", action="store_true", help="merge the per-host run files")
    p.add_argument("--coordinator", help="host:port of process 0 (local launch)")
    p.add_argument("--process-id", type=int)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.worker:
        worker(a.out, a.coordinator, a.processes, a.process_id)
    elif a.merge:
        merge(a.out)
    elif a.processes:
        coordinator = f"localhost:{free_port()}"  # a fixed port clashes with parallel runs
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", "--out", str(a.out), "--processes",
                 str(a.processes), "--coordinator", coordinator, "--process-id", str(i)],
                env=os.environ | {"JAX_PLATFORMS": "cpu"},
            )
            for i in range(a.processes)
        ]
        while any(proc.poll() is None for proc in procs):
            if any(proc.poll() for proc in procs):  # one failed: the others would wait forever
                for proc in procs:
                    proc.kill()
                break
            time.sleep(0.5)
        if any(proc.wait() for proc in procs):
            sys.exit("a worker failed; rerun to resume")
        merge(a.out)
    else:
        p.error("give --processes, --worker or --merge")


if __name__ == "__main__":
    main()
