"""Sharding over devices and hosts: results identical to one device; merged run files.

The multi-device checks run in a subprocess with ``--xla_force_host_platform_device_count=4``
(the flag must be set before jax is imported). Reference: the unsharded tracer on the same
per-device blocks (bitwise), and on all trajectories in one call (float64 rounding: XLA picks
its matmul kernel by shape, so the sum over modes may be ordered differently).
"""

import contextlib
import os
import socket
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from crsky.io import runfile
from crsky.io.runfile import merge_runfiles
from crsky.pipelines.ensemble import SimulationConfig, run_ensemble
from crsky.pipelines.sharding import host_indices

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from crsky.pipelines.sharding import device_mesh, shard_trajectories
    from crsky.physics.tracing import backtrack, healpix_directions
    from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes, stack_modes

    assert jax.device_count() == 4
    t = np.array([0.5, 3.0])
    dirs = healpix_directions(2, jnp.float64)[:45]  # 45: not a multiple of 4 (padding)
    spectrum = TurbulenceSpectrum(sigma=1.0, n_modes=32)
    modes = [sample_modes(jax.random.PRNGKey(i), spectrum) for i in range(3)]
    batch = stack_modes(modes)
    for solver in ("boris", "tsit5"):
        def trace(m, d):
            return backtrack(m, d, t, 0.1, solver=solver, dt=0.02, rtol=1e-7, atol=1e-9)
        single = jax.jit(trace)
        sharded = jax.jit(lambda m, d: shard_trajectories(trace, m, d))
        out = sharded(modes[0], dirs)
        # bitwise: the single-device tracer on each device's block of 12 (last one padded)
        padded = jnp.concatenate([dirs, jnp.repeat(dirs[:1], 3, axis=0)])
        blocks = [single(modes[0], padded[i:i + 12]) for i in range(0, 48, 12)]
        for name in ("r", "p"):
            ref = jnp.concatenate([getattr(b, name) for b in blocks], axis=1)[:, :45]
            assert jnp.array_equal(getattr(out, name), ref), (solver, name)
        steps = jnp.concatenate([b.n_steps for b in blocks])[:45]
        assert jnp.array_equal(out.n_steps, steps)
        # one call on all 45 trajectories: equal to float64 rounding at short times
        ref = single(modes[0], dirs)
        np.testing.assert_allclose(out.r, ref.r, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(out.t_omega, ref.t_omega)
        # realisations x trajectories on a 2 x 2 mesh, 3 realisations (padded to 4)
        outb = jax.jit(lambda m, d: shard_trajectories(trace, m, d, device_mesh(2)))(batch, dirs)
        assert outb.r.shape == (3, 2, 45, 3) and outb.n_steps.shape == (3, 45)
        for i, m in enumerate(modes):
            np.testing.assert_allclose(outb.r[i], single(m, dirs).r, rtol=0, atol=1e-12)
        # the same with backtrack's stacked realisations (one loop per device, no vmap)
        stacked = jax.jit(
            lambda m, d: shard_trajectories(trace, m, d, device_mesh(2), stacked=True)
        )(batch, dirs)
        assert stacked.r.shape == (3, 2, 45, 3) and stacked.n_steps.shape == (3, 45)
        np.testing.assert_allclose(stacked.r, outb.r, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(stacked.n_steps, outb.n_steps)
    print("OK")
    """
)


@pytest.mark.parametrize("devices", [4])
def test_sharded_equals_single_device(devices):
    env = os.environ | {
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")


def test_host_indices_partition_the_realisations():
    shares = [host_indices(10, p, 3) for p in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(sum(shares, [])) == list(range(10))
    with pytest.raises(ValueError, match="process_index"):
        host_indices(10, 3, 3)


SMALL = dict(nside=2, realisations=3, modes=16, t_omega_max=5.0, n_times=3, dtype="float64")


def _split(single, paths, owner):
    """Per-host run files holding realisation i on host owner(i), copied from ``single``."""
    config = runfile.read_config(single)
    with h5py.File(single, "r", locking=False) as f:
        t_omega, directions = f["t_omega"][()], f["directions"][()]
    for path in paths:
        runfile.create(path, config, t_omega, directions)
    with h5py.File(single, "r", locking=False) as src:
        for index in runfile.completed(single):
            with h5py.File(paths[owner(index)], "a") as dst:
                name = f"r{index:05d}"
                src.copy(src["realisations"][name], dst["realisations"], name=name)


def test_merge_runfiles_equals_single_host(tmp_path):
    # reference: the single-host run file; per-host files hold realisation i on host i mod 2
    # (readers open without HDF5 locks, as crsky.io.runfile does)
    single = tmp_path / "single.h5"
    run_ensemble(SimulationConfig(**SMALL), single, progress=False)
    hosts = [tmp_path / f"host{p}.h5" for p in range(2)]
    _split(single, hosts, lambda i: i % 2)
    assert merge_runfiles(hosts, tmp_path / "merged.h5") == [0, 1, 2]
    a, b = runfile.load(single), runfile.load(tmp_path / "merged.h5")
    assert a.config == b.config
    for name in ("t_omega", "directions", "indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert set(a.arrays) == set(b.arrays) and set(a.attrs) == set(b.attrs)
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    for attr in a.attrs:
        np.testing.assert_array_equal(a.attrs[attr], b.attrs[attr])


def test_merge_runfiles_refuses_duplicates_and_mixed_configs(tmp_path):
    single = tmp_path / "single.h5"
    run_ensemble(SimulationConfig(**SMALL), single, progress=False)
    hosts = [tmp_path / f"host{p}.h5" for p in range(2)]
    _split(single, hosts, lambda i: 0)
    with pytest.raises(ValueError, match="realisation 0 is in both"):
        merge_runfiles([hosts[0], single], tmp_path / "m1.h5")
    other = tmp_path / "other.h5"
    run_ensemble(SimulationConfig(**(SMALL | dict(seed=1))), other, progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        merge_runfiles([hosts[1], other], tmp_path / "m2.h5")


def test_multihost_example_two_processes(tmp_path):
    # benchmarks/multihost_example.py end to end: two jax.distributed processes (local
    # coordinator) each write their realisations, the merge holds all of them; reference: the
    # same configuration run by one process (realisation i = fold_in(seed, i) on any host)
    example = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "multihost_example.py")
    with socket.socket() as busy:  # the port it once fixed is taken: it must pick a free one
        with contextlib.suppress(OSError):  # held by another process already: as good
            busy.bind(("", 12355))
            busy.listen()
        proc = subprocess.run(
            [sys.executable, example, "--processes", "2", "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert runfile.completed(tmp_path / "host0.h5") == [0, 2, 4]
    assert runfile.completed(tmp_path / "host1.h5") == [1, 3, 5]
    merged = runfile.load(tmp_path / "merged.h5")
    config = merged.config
    single = tmp_path / "single.h5"
    run_ensemble(config, single, progress=False)
    ref = runfile.load(single)
    np.testing.assert_array_equal(merged.indices, ref.indices)
    np.testing.assert_array_equal(merged.arrays["modes/k"], ref.arrays["modes/k"])
    # first saved time (tΩ = 1): before chaos amplifies rounding differences of other chunkings
    for name in ("r_mean", "rr_mean", "spectra/mean"):
        np.testing.assert_allclose(merged.arrays[name][:, 0], ref.arrays[name][:, 0],
                                   rtol=1e-4, atol=1e-7)
