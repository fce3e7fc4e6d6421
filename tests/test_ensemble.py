"""Ensembles and run files: determinism, incremental writes, resume after Ctrl-C and kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from hostile import popen_interruptible

from crsky.io import runfile
from crsky.pipelines.ensemble import SimulationConfig, run_ensemble

SMALL = dict(nside=2, realisations=3, modes=16, t_omega_max=5.0, n_times=3, dtype="float64")


def run_small(path, **kwargs):
    config = SimulationConfig(**(SMALL | kwargs))
    return run_ensemble(config, path, progress=False)


def assert_same_realisations(a, b):
    ra, rb = runfile.load(a), runfile.load(b)
    np.testing.assert_array_equal(ra.indices, rb.indices)
    for name in ("modes/k", "modes/amplitude", "modes/phase", "rr_mean", "r_mean"):
        np.testing.assert_array_equal(ra.arrays[name], rb.arrays[name])


def test_summary_and_statistics_share_one_diffusion_tensor(tmp_path, monkeypatch):
    from crsky.io import run as run_module
    from crsky.pipelines import ensemble

    run_small(tmp_path / "run.h5")
    run = runfile.load(tmp_path / "run.h5")
    calls = []
    original = run_module.diffusion_tensor
    monkeypatch.setattr(run_module, "diffusion_tensor",
                        lambda *a: calls.append(1) or original(*a))
    summary = ensemble.summarise(run)
    assert len(calls) == 1  # cached on the ensemble: once for K(T), both orientations
    for orientation in ("parallel", "perpendicular"):
        np.testing.assert_array_equal(summary["cl_hat"][orientation],
                                      run.statistics(orientation).cl_hat)
    assert run.diffusion() is run.diffusion()


def test_statistics_take_a_name_or_a_gradient(tmp_path):
    """A named orientation is the unit gradient along z (parallel) or x; spectra scale with
    |g|² (eq. (2.1) is linear in g), so 2 ẑ gives 4 times the spectra of "parallel"."""
    run_small(tmp_path / "run.h5")
    run = runfile.load(tmp_path / "run.h5")
    named = run.statistics("parallel")
    doubled = run.statistics(np.array([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(doubled.cl_mean, 4 * named.cl_mean, rtol=1e-12)
    np.testing.assert_allclose(doubled.sum_rules.variance_rhs, 4 * named.sum_rules.variance_rhs,
                               rtol=1e-12)
    np.testing.assert_array_equal(named.K_liouville, run.diffusion().K[-1])
    fixed = run.statistics("perpendicular", K_liouville=np.eye(3))
    np.testing.assert_array_equal(fixed.K_liouville, np.eye(3))
    with pytest.raises(ValueError, match="orientation"):
        run.statistics("diagonal")
    with pytest.raises(ValueError, match="grad_n_over_n"):
        run.statistics(np.ones(2))


def test_simulate_in_memory_equals_the_run_file(tmp_path):
    """One loop computes the realisations; simulate() keeps them, run_ensemble writes them:
    the arrays are identical bit for bit (same seed, same program)."""
    from crsky.pipelines.ensemble import simulate

    config = SimulationConfig(**SMALL)
    memory = simulate(config, progress=False)
    run_ensemble(config, tmp_path / "run.h5", progress=False)
    stored = runfile.load(tmp_path / "run.h5")
    assert memory.config == stored.config == config
    np.testing.assert_array_equal(memory.indices, stored.indices)
    np.testing.assert_array_equal(memory.t_omega, stored.t_omega)
    np.testing.assert_array_equal(memory.directions, stored.directions)
    assert set(memory.arrays) == set(stored.arrays)
    for name in memory.arrays:
        np.testing.assert_array_equal(memory.arrays[name], stored.arrays[name], err_msg=name)
    for name in ("momentum_drift_max", "field_rms_over_b0", "n_steps"):
        np.testing.assert_array_equal(memory.attrs[name], stored.attrs[name])
    np.testing.assert_array_equal(memory.statistics("parallel").cl_hat,
                                  stored.statistics("parallel").cl_hat)
    with pytest.raises(ValueError, match="config"):
        simulate(SMALL)


def test_config_load_replace_and_spectrum():
    """Built-in names resolve to the shipped TOML files; replace() checks keys like a file."""
    reduced = SimulationConfig.load("reduced")
    assert reduced.replace(realisations=2).realisations == 2
    assert reduced.replace(t_omega_max=20).t_omega_max == 20.0
    with pytest.raises(ValueError, match="'nsides'"):
        reduced.replace(nsides=4)
    with pytest.raises(ValueError, match="reduced_typo"):
        SimulationConfig.load("reduced_typo")
    spectrum = reduced.spectrum
    assert spectrum.n_modes == reduced.modes and spectrum.sigma == pytest.approx(reduced.sigma)
    assert (spectrum.lambda_min, spectrum.lambda_max) == (reduced.lambda_min, reduced.lambda_max)


def test_same_seed_identical_and_other_seed_different(tmp_path):
    run_small(tmp_path / "a.h5")
    run_small(tmp_path / "b.h5")
    assert_same_realisations(tmp_path / "a.h5", tmp_path / "b.h5")
    run_small(tmp_path / "c.h5", seed=1)
    assert not np.array_equal(
        runfile.load(tmp_path / "a.h5").arrays["rr_mean"],
        runfile.load(tmp_path / "c.h5").arrays["rr_mean"],
    )


def test_run_file_layout_and_summary(tmp_path):
    path = tmp_path / "run.h5"
    summary = run_small(path, save_trajectories=True)
    run = runfile.load(path, names=("r", "p", "modes/k", "rr_mean"))
    assert run.arrays["r"].shape == (3, 3, 48, 3)
    assert run.arrays["modes/k"].shape == (3, 16, 3)
    assert run.config.nside == 2
    np.testing.assert_allclose(run.t_omega, np.geomspace(1, 5, 3))
    # stored moments are the trajectory averages of the stored positions
    r = run.arrays["r"]
    np.testing.assert_allclose(
        run.arrays["rr_mean"], np.einsum("rtmi,rtmj->rtij", r, r) / 48, rtol=1e-12
    )
    assert summary["n_trajectories"] == 3 * 48
    assert summary["momentum_drift_max"] < 1e-12
    assert summary["kappa_parallel"] > 0 and summary["kappa_perp"] > 0
    with h5py.File(path) as f:
        assert f.attrs["format"] == "crsky-run"
        assert set(f["realisations"]) == {"r00000", "r00001", "r00002"}


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    path = tmp_path / "run.h5"
    run_small(path, realisations=1)
    with pytest.raises(ValueError, match="--overwrite"):
        run_small(path, realisations=1)
    config = SimulationConfig(**(SMALL | dict(realisations=1, seed=5)))
    run_ensemble(config, path, overwrite=True, progress=False)
    assert runfile.read_config(path)["seed"] == 5


def test_resume_extends_and_rejects_changed_config(tmp_path):
    path = tmp_path / "run.h5"
    run_small(path, realisations=2)
    summary = run_ensemble(SimulationConfig(**SMALL), path, resume=True, progress=False)
    assert summary["realisations_computed"] == 1
    run_small(tmp_path / "ref.h5")
    assert_same_realisations(path, tmp_path / "ref.h5")
    with pytest.raises(ValueError, match="modes"):
        run_ensemble(SimulationConfig(**(SMALL | dict(modes=8))), path, resume=True,
                     progress=False)


def test_realisations_per_call_equal_one_at_a_time_to_rounding(tmp_path):
    # 3 realisations two per call (the second call padded), 48 CRs in chunks of 20 (the last
    # chunk padded too); reference: one realisation per call. The stacked matmuls may sum the
    # modes in another order, so equal to float64 rounding (1e-15 seen), not bit for bit.
    run_small(tmp_path / "one.h5", chunk=20)
    summary = run_small(tmp_path / "two.h5", chunk=20, realisations_per_call=2)
    assert summary["realisations_computed"] == 3
    one, two = runfile.load(tmp_path / "one.h5"), runfile.load(tmp_path / "two.h5")
    np.testing.assert_array_equal(one.arrays["modes/k"], two.arrays["modes/k"])
    for name in ("r_mean", "rr_mean", "spectra/mean", "maps_last"):
        np.testing.assert_allclose(two.arrays[name], one.arrays[name], rtol=1e-10, atol=1e-13)
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "two.h5") as b:
        for name in ("r00000", "r00001", "r00002"):  # the padding is not counted
            steps = a["realisations"][name].attrs["n_steps"]
            assert b["realisations"][name].attrs["n_steps"] == steps >= 48 * 250  # tΩ 5 / 0.02


def test_realisation_independent_of_its_call_companions(tmp_path):
    # per_call = 2 over 3 realisations: uninterrupted the calls are [0, 1], [2, (2)]; started
    # with indices [1, 2] and resumed they are [1, 2], [0, (0)]. Every realisation lands in
    # another call at another position, yet the program is the same: identical bits.
    run_small(tmp_path / "a.h5", realisations_per_call=2)
    config = SimulationConfig(**(SMALL | dict(realisations_per_call=2)))
    run_ensemble(config, tmp_path / "b.h5", indices=[1, 2], progress=False)
    run_ensemble(config, tmp_path / "b.h5", resume=True, progress=False)
    a, b = runfile.load(tmp_path / "a.h5"), runfile.load(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.indices, b.indices)
    for name in ("rr_mean", "r_mean", "spectra/mean", "maps_last"):
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


def test_realisations_per_call_is_part_of_the_configuration(tmp_path):
    path = tmp_path / "run.h5"
    run_small(path, realisations=2)
    config = SimulationConfig(**(SMALL | dict(realisations_per_call=2)))
    with pytest.raises(ValueError, match="realisations_per_call"):
        run_ensemble(config, path, resume=True, progress=False)


def test_compiled_once_and_timed_without_compilation(tmp_path, monkeypatch):
    from crsky.pipelines import ensemble

    calls = []

    def slow_tracer(config, batch):  # a compilation that takes 3 s longer
        calls.append(batch)
        compiled, seconds = original(config, batch)
        time.sleep(3.0)
        return compiled, seconds + 3.0

    original = ensemble._tracer
    monkeypatch.setattr(ensemble, "_tracer", slow_tracer)
    summary = run_small(tmp_path / "run.h5", realisations_per_call=2)
    assert calls == [2]  # one program for both calls, the padded one too
    assert summary["compile_seconds"] >= 3.0
    assert summary["wall_seconds"] < 3.0  # the 3 s are not in the run's time


def test_partial_write_is_discarded_on_resume(tmp_path):
    path = tmp_path / "run.h5"
    run_small(path, realisations=2)
    with h5py.File(path, "a") as f:  # what a kill -9 during a write leaves behind
        f["realisations"].create_group("_partial00002").create_dataset("rr_mean", data=[1.0])
    assert runfile.completed(path) == [0, 1]
    run_ensemble(SimulationConfig(**SMALL), path, resume=True, progress=False)
    run_small(tmp_path / "ref.h5")
    assert_same_realisations(path, tmp_path / "ref.h5")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_cli_run_resumes_without_loss(tmp_path, sig):
    """Ctrl-C / kill -9 a CLI run after its first realisation, resume, compare with a full run.

    After the first (compiling) realisation each takes ~0.1 s: 40 of them leave a ~4 s window
    for the signal (with 10, a loaded CI machine once saw the run end before the signal).
    """
    args = ["--nside", "1", "--realisations", "40", "--modes", "16", "--t-omega-max", "300",
            "--n-times", "3", "--dtype", "float64", "--no-progress"]
    path = tmp_path / "run.h5"
    cmd = [sys.executable, "-m", "crsky", "simulate", *args, "--out", str(path)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = popen_interruptible(cmd, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            if path.exists() and len(runfile.completed(path)) >= 1:
                break
        except (OSError, KeyError):
            continue  # file not created yet or being written
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    done = runfile.completed(path)
    assert 1 <= len(done) < 40
    subprocess.run([*cmd, "--resume"], env=env, check=True)
    subprocess.run([*cmd[:-1], str(tmp_path / "ref.h5")], env=env, check=True)
    assert_same_realisations(path, tmp_path / "ref.h5")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(nside=6), "nside"),
        (dict(sigma2=-1.0), "sigma2"),
        (dict(lambda_min=200.0), "lambda_min"),
        (dict(modes=0), "modes"),
        (dict(t_omega_max=float("nan")), "t_omega_max"),
        (dict(r_larmor=0.0), "r_larmor"),
        (dict(solver="euler"), "solver"),
        (dict(dtype="float16"), "dtype"),
        (dict(realisations=0), "realisations"),
        (dict(seed=-1), "seed"),
        (dict(realisations_per_call=0), "realisations_per_call"),
        (dict(realisations=2, realisations_per_call=3), "realisations_per_call"),
    ],
)
def test_config_validation(kwargs, name):
    """The message starts with the configuration key (as in the TOML file) that is wrong."""
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        SimulationConfig(**kwargs)


def test_config_checks_modes_and_sigma2_once_under_their_own_names(monkeypatch):
    from crsky import _validate

    checked = []
    for check in ("positive_int", "non_negative"):
        original = getattr(_validate, check)
        monkeypatch.setattr(
            _validate, check,
            lambda name, value, f=original: checked.append((name, value)) or f(name, value),
        )
    SimulationConfig(modes=64, sigma2=4.0)
    assert checked.count(("modes", 64)) == 1 and checked.count(("sigma2", 4.0)) == 1
    # not again as turbulence's n_modes and σ (σ² = 4 was checked as σ)
    assert not [c for c in checked if c[0] in ("n_modes", "sigma")]


def test_config_from_toml_mapping_names_key_and_line():
    with pytest.raises(ValueError, match=r"'nsides' \(line 3\)"):
        SimulationConfig.from_dict({"nsides": 4}, {"nsides": 3})
    with pytest.raises(ValueError, match="'modes'.*integer"):
        SimulationConfig.from_dict({"modes": 1.5})
    assert SimulationConfig.from_dict({"sigma2": 2}).sigma2 == 2.0
    assert json.loads(json.dumps(SimulationConfig().to_dict()))["nside"] == 8


def test_healpy_and_jax_spectra_back_ends_agree(tmp_path):
    """spectra_method='healpy' (reference) and 'jax' store the same cross-spectra (same seed)."""
    run_small(tmp_path / "jax.h5", realisations=1)
    run_small(tmp_path / "healpy.h5", realisations=1, spectra_method="healpy")
    a, b = runfile.load(tmp_path / "jax.h5"), runfile.load(tmp_path / "healpy.h5")
    assert a.arrays["spectra/cross_spectra"].shape == (1, 3, 5, 6, 6)  # ell_max = 2 nside = 4
    scale = np.max(np.abs(a.arrays["spectra/cross_spectra"]))
    np.testing.assert_allclose(b.arrays["spectra/cross_spectra"],
                               a.arrays["spectra/cross_spectra"],
                               atol=1e-10 * scale)
