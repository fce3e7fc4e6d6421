"""Hostile input to the public Python functions: sizes beyond memory refused before allocating,
values of the wrong type named, non-unit directions, single strings where lists belong.

Reference: ``docs/promises.md``; every error is a ``ValueError`` (or an ``OSError`` subclass
for files) whose message starts with the parameter's name.
"""

import resource

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky import _validate
from crsky.io import runfile
from crsky.physics import spectra, tracing, turbulence


def quickly(fn, *args, **kwargs):
    """Call ``fn``; its peak resident memory must not grow by more than 256 MiB (a refusal
    comes from an estimate, before anything large is allocated)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        fn(*args, **kwargs)
    finally:
        assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 2**28


def test_huge_sizes_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"^nside=4096, lmax=12287 needs about .* TiB"):
        quickly(spectra.make_plan, 4096)
    with pytest.raises(ValueError, match=r"^n_modes=1000000000 needs about"):
        quickly(turbulence.TurbulenceSpectrum, n_modes=10**9)
    with pytest.raises(ValueError, match=r"^n_times=1000000000000 needs about"):
        quickly(tracing.log_times, 100.0, 10**12)
    with pytest.raises(ValueError, match=r"Boris steps"):
        quickly(tracing.check_step_grid, 1e12, 0.1)
    with pytest.raises(ValueError, match=r"beyond any run"):
        quickly(tracing.check_step_grid, 1.0, 1e-300)


def test_backtrack_refuses_an_absurd_step_grid():
    modes = turbulence.sample_modes(jax.random.PRNGKey(0), turbulence.TurbulenceSpectrum(n_modes=4))
    with pytest.raises(ValueError, match="Boris steps"):
        quickly(tracing.backtrack, modes, jnp.array([[0.0, 0.0, 1.0]]), np.array([1e12]), 0.1,
                dt=0.1)


@pytest.mark.parametrize("direction", [[0.0, 0.0, 5.0], [0.0, 0.0, 0.0], [0.6, 0.0, 0.6]])
def test_backtrack_refuses_non_unit_directions(direction):
    modes = turbulence.sample_modes(jax.random.PRNGKey(0), turbulence.TurbulenceSpectrum(n_modes=4))
    dirs = jnp.array([[1.0, 0.0, 0.0], direction])
    with pytest.raises(ValueError, match=r"^directions must be unit vectors .* row 1"):
        tracing.backtrack(modes, dirs, np.array([1.0]), 0.1)


def test_unit_directions_in_float32_pass():
    modes = turbulence.sample_modes(
        jax.random.PRNGKey(0), turbulence.TurbulenceSpectrum(n_modes=4), dtype=jnp.float32
    )
    dirs = tracing.healpix_directions(1, jnp.float32)
    traj = tracing.backtrack(modes, dirs, np.array([1.0]), 0.1)
    assert np.all(np.isfinite(np.asarray(traj.r)))


@pytest.mark.parametrize("value", ["abc", [1, "x"], {"a": 1}, b"1"])
def test_strings_and_tables_where_numbers_belong(value):
    with pytest.raises(ValueError, match="^sigma must be a number"):
        _validate.positive("sigma", value)
    with pytest.raises(ValueError, match="^width must be"):
        _validate.number("width", value)


def test_number_refuses_lists_and_bools():
    with pytest.raises(ValueError, match="single number"):
        _validate.number("x", [1.0, 2.0])
    with pytest.raises(ValueError, match="single number"):
        _validate.number("x", True)
    assert _validate.number("x", 3) == 3.0


def test_available_memory_follows_the_address_space_limit():
    import resource

    assert _validate.available_memory() > 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    assert soft == resource.RLIM_INFINITY or _validate.available_memory() <= soft


def test_spectrum_data_refuses_a_single_string():
    from crsky.inference import models
    from crsky.inference.data import ClTable

    n = 4
    table = ClTable(ell=np.arange(1, n + 1), cl=np.ones(n), error=np.ones(n),
                    experiment=np.array(["HAWC"] * n), f_sky=np.ones(n), noise=np.zeros(n))
    with pytest.raises(ValueError, match=r"^experiments must be a list .* such as \['HAWC'\]"):
        models.spectrum_data(table, 1, 4, "HAWC")
    assert models.spectrum_data(table, 1, 4, ["HAWC"]).experiments == ("HAWC",)


def test_runfile_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        runfile.load(tmp_path / "nope.h5")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        runfile.load(tmp_path)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="bad.h5.*not a readable HDF5 file"):
        runfile.load(bad)


def test_realisations_are_streamed():
    """A billion realisations build a configuration at once: nothing scales with the count."""
    from crsky.pipelines.ensemble import SimulationConfig

    quickly(SimulationConfig, nside=2, realisations=10**9, modes=16)
