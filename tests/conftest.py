"""Test set-up: pin threads (threaded BLAS/healpy are 10-100x slower on 2 cores) and use float64.

Tests that exercise float32 request it explicitly through a ``dtype`` argument.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# XLA:CPU's concurrency-optimised scheduler deadlocked an earlier eigen solver (jaxlib 0.10.2);
# off as a precaution, like the CLI (crsky.cli.configure_cpu_backend). test_pitch_angle checks
# the solver with it on.
if "xla_cpu_enable_concurrency_optimized_scheduler" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_concurrency_optimized_scheduler=false"
    ).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run file of 2 realisations at nside 2 (seconds), shared by the tests that
    only read one; copy it before changing it."""
    from crsky.pipelines.ensemble import SimulationConfig, run_ensemble

    path = tmp_path_factory.mktemp("tiny_run") / "run.h5"
    config = SimulationConfig(nside=2, realisations=2, modes=16, t_omega_max=20.0, n_times=4)
    run_ensemble(config, path, progress=False)
    return path
