"""The fast back-tracking formulations against references on the same field.

References: numpy float64 cosines; the direct field formulation (``jnp.cos`` of radian
phases); diffrax's Tsit5 at tight tolerance (the reference solver); one ``diffeqsolve`` per
trajectory under ``vmap`` (the plain Boris batching). Tolerances are stated with their reason.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky.physics.tracing import Boris, LorentzTerm, backtrack, healpix_directions
from crsky.physics.turbulence import (
    TurbulenceSpectrum,
    cos_turns,
    sample_modes,
    turbulent_field,
)

EPS32 = float(np.finfo(np.float32).eps)


def test_cos_turns_float32_within_two_ulp():
    # reference: numpy cos of the exactly reduced float64 phase; 2 ulp of 1 = 2.4e-7
    u = np.random.default_rng(0).uniform(-3000, 3000, 200_000).astype(np.float32)
    r = u.astype(np.float64) - np.round(u.astype(np.float64))
    got = np.asarray(cos_turns(jnp.asarray(u)), np.float64)
    assert np.max(np.abs(got - np.cos(2 * np.pi * r))) < 2 * EPS32


def test_cos_turns_float64_within_four_ulp():
    u = np.random.default_rng(1).uniform(-3000, 3000, 200_000)
    r = u - np.round(u)
    got = np.asarray(cos_turns(jnp.asarray(u)))
    assert np.max(np.abs(got - np.cos(2 * np.pi * r))) < 4 * np.finfo(np.float64).eps


def test_field_matches_radian_cos_formulation_float64():
    # the direct formulation: jnp.cos(k·x + β); phases up to ~1e4 rad, float64 rounding
    # of the phase (|φ| eps ≈ 2e-12) bounds the difference
    modes = sample_modes(
        jax.random.PRNGKey(3), TurbulenceSpectrum(sigma=1.0, n_modes=128), dtype=jnp.float64
    )
    x = jax.random.uniform(jax.random.PRNGKey(4), (500, 3), jnp.float64, -20, 20)
    old = jnp.cos(x @ modes.k.T + modes.phase) @ modes.amplitude
    np.testing.assert_allclose(turbulent_field(modes, x), old, rtol=0, atol=1e-10)


def test_field_float32_at_large_phases_is_limited_by_phase_rounding():
    # Phases reach |k x| ~ 1.6e4 rad. With full-precision (not TF32) products the float32 field
    # differs from float64 (same float32 inputs) by at most Σ_n |δB_n| · 2π |u_n| · c eps32;
    # c = 4 covers the rounding of the 3-term dot, the scaling by 1/2π and the reduction.
    # A TF32 product (eps ≈ 1e-3) would exceed this bound by ~1e4.
    modes = sample_modes(
        jax.random.PRNGKey(5), TurbulenceSpectrum(sigma=1.0, n_modes=256), dtype=jnp.float32
    )
    x = jax.random.uniform(jax.random.PRNGKey(6), (400, 3), jnp.float32, -25, 25)
    k, a, b = (np.asarray(v, np.float64) for v in (modes.k, modes.amplitude, modes.phase))
    xs = np.asarray(x, np.float64)
    phase = xs @ k.T + b
    ref = np.cos(phase) @ a
    got = np.asarray(turbulent_field(modes, x), np.float64)
    bound = 4 * EPS32 * (np.abs(phase) + 2 * np.pi) @ np.linalg.norm(a, axis=1) + 1e-5
    assert np.all(np.linalg.norm(got - ref, axis=1) < bound)
    assert np.max(np.abs(phase)) > 1e4


def test_field_products_are_requested_at_highest_precision():
    # GPUs may run float32 matmuls in TF32 unless told otherwise; both dots must say HIGHEST
    modes = sample_modes(
        jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=1.0, n_modes=8), dtype=jnp.float32
    )
    text = jax.jit(turbulent_field).lower(modes, jnp.zeros((4, 3), jnp.float32)).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert len(dots) == 2
    assert all(line.count("HIGHEST") == 2 for line in dots)


@pytest.fixture(scope="module")
def setup():
    modes = sample_modes(
        jax.random.PRNGKey(7), TurbulenceSpectrum(sigma=1.0, n_modes=64), dtype=jnp.float64
    )
    return modes, healpix_directions(2, jnp.float64)


def test_batched_boris_equals_per_trajectory_diffeqsolve(setup):
    # reference: one diffeqsolve per trajectory under vmap (the straightforward batching); identical
    # arithmetic, so agreement to float64 rounding accumulated over 200 steps
    modes, dirs = setup
    t = np.array([1.0, 4.0])
    got = backtrack(modes, dirs, t, 0.1, dt=0.02)
    term = LorentzTerm(modes=modes, r_larmor=jnp.asarray(0.1))

    def one(n_hat):
        sol = diffrax.diffeqsolve(
            term, Boris(), 0.0, 4.0, None,
            (jnp.zeros(3), -n_hat), saveat=diffrax.SaveAt(ts=jnp.asarray(t)),
            stepsize_controller=diffrax.StepTo(ts=jnp.linspace(0.0, 4.0, 201)), max_steps=200,
        )
        return sol.ys

    r, p = jax.vmap(one, out_axes=1)(dirs)
    np.testing.assert_allclose(got.r, r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.p, p, rtol=0, atol=1e-12)
    assert np.all(np.asarray(got.n_steps) == 200)


def test_boris_refuses_a_term_without_the_field(setup):
    """Boris reads B through its LorentzTerm; a plain ODETerm (no field) is refused by name."""
    modes, dirs = setup
    plain = diffrax.ODETerm(lambda t, y, args: y)
    with pytest.raises(Exception, match="LorentzTerm"):
        diffrax.diffeqsolve(plain, Boris(), 0.0, 1.0, 0.1, (jnp.zeros(3), -dirs[0]))


def test_boris_converges_to_tsit5_at_second_order(setup):
    # reference: Tsit5 at rtol 1e-11; Boris is 2nd order, so halving dt divides the error by ~4
    modes, dirs = setup
    t = np.array([2.0])
    ref = backtrack(modes, dirs, t, 0.1, solver="tsit5", dt=0.01, rtol=1e-11, atol=1e-13)
    errors = [
        float(jnp.max(jnp.abs(backtrack(modes, dirs, t, 0.1, dt=dt).r - ref.r)))
        for dt in (0.02, 0.01)
    ]
    assert errors[0] < 1e-4
    assert 3.0 < errors[0] / errors[1] < 5.0


def test_float32_boris_tracks_float64_at_short_times(setup):
    # float32 vs float64 on the same field: the phase rounding (~1e-3 rad at |x| ~ 1) perturbs
    # r by ~1e-6 Lc per unit τ before chaos amplifies it; documented in benchmarks/RESULTS.md
    modes, dirs = setup
    modes32 = jax.tree.map(lambda a: a.astype(jnp.float32), modes)
    t = np.array([1.0, 4.0])
    r64 = backtrack(modes, dirs, t, 0.1, dt=0.02).r
    r32 = backtrack(modes32, dirs.astype(jnp.float32), t, 0.1, dt=0.02).r
    np.testing.assert_allclose(np.asarray(r32, np.float64), r64, rtol=0, atol=1e-5)


def test_float32_boris_diffusion_matches_float64_tsit5_statistics():
    # ⟨r_i r_j⟩ at τ = 40 from float32 Boris vs the float64 Tsit5 reference, same field and
    # directions. Trajectories decorrelate by chaos, so compare the means within 4 standard
    # errors of the difference (per-trajectory scatter / sqrt(M), both runs).
    modes = sample_modes(
        jax.random.PRNGKey(8), TurbulenceSpectrum(sigma=1.0, n_modes=64), dtype=jnp.float64
    )
    dirs = healpix_directions(8, jnp.float64)
    t = np.array([40.0])
    ref = np.asarray(
        backtrack(modes, dirs, t, 0.1, solver="tsit5", dt=0.02, rtol=1e-6, atol=1e-8).r[-1]
    )
    modes32 = jax.tree.map(lambda a: a.astype(jnp.float32), modes)
    got = np.asarray(backtrack(modes32, dirs.astype(jnp.float32), t, 0.1, dt=0.02).r[-1])
    for i, j in ((0, 0), (1, 1), (2, 2), (0, 1)):
        a, b = ref[:, i] * ref[:, j], got[:, i] * got[:, j]
        err = np.sqrt((a.var() + b.var()) / len(a))
        assert abs(a.mean() - b.mean()) < 4 * err, (i, j, a.mean(), b.mean(), err)
