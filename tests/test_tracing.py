"""Back-tracking against independent references.

- σ = 0: the exact helix of a charged particle in a uniform field (analytic).
- Turbulent field, tΩ ≤ 10: Boris (small step) vs adaptive Tsit5, and one trajectory vs scipy's
  DOP853 applied to a plain-numpy Lorentz force written here.
"""

import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from crsky.physics.tracing import backtrack, healpix_directions, log_times, propagate
from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes, stack_modes

R_L = 0.1


@pytest.fixture(scope="module")
def modes():
    return sample_modes(jax.random.PRNGKey(11), TurbulenceSpectrum(sigma=1.0, n_modes=64))


def helix(n_hat, tau, r_larmor):
    """Analytic back-tracked helix in B0 ẑ: p̂(0) = −n̂, dx/dτ = −r_L p̂, dp̂/dτ = −p̂ × ẑ."""
    p0 = -np.asarray(n_hat)
    p_perp, phi0 = np.hypot(p0[0], p0[1]), np.arctan2(p0[1], p0[0])
    phi = tau + phi0  # (p_x, p_y) rotate counter-clockwise at unit rate
    p = np.stack([p_perp * np.cos(phi), p_perp * np.sin(phi), np.full_like(tau, p0[2])], -1)
    x = np.stack(
        [
            -r_larmor * p_perp * (np.sin(phi) - np.sin(phi0)),
            r_larmor * p_perp * (np.cos(phi) - np.cos(phi0)),
            -r_larmor * p0[2] * tau,
        ],
        -1,
    )
    return x, p


def test_helix_exact_with_adaptive_solver():
    """σ = 0: radius r_L sin α, period 2π/Ω, pitch 2π r_L cos α to ≤ 1e-8 (float64)."""
    modes = sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=0.0, n_modes=8))
    dirs = healpix_directions(2)
    tau = np.array([0.5, np.pi, 2 * np.pi, 10.0, 30.0])
    traj = backtrack(modes, dirs, tau, R_L, solver="tsit5", rtol=1e-12, atol=1e-14)
    for i, n_hat in enumerate(np.asarray(dirs)):
        x, p = helix(n_hat, tau, R_L)
        np.testing.assert_allclose(traj.r[:, i], x, atol=1e-8)
        np.testing.assert_allclose(traj.p[:, i], p, atol=1e-8)
    # after one period the transverse position returns and z advanced by one pitch
    r_period = np.asarray(traj.r[2])
    p0 = -np.asarray(dirs)
    np.testing.assert_allclose(r_period[:, :2], 0.0, atol=1e-8)
    np.testing.assert_allclose(r_period[:, 2], -2 * np.pi * R_L * p0[:, 2], atol=1e-8)
    # gyration radius: distance from the guiding centre is r_L sin α at all times
    centre = np.stack([R_L * p0[:, 1], -R_L * p0[:, 0]], -1)
    radius = np.linalg.norm(np.asarray(traj.r[..., :2]) - centre, axis=-1)
    expected = np.broadcast_to(R_L * np.hypot(p0[:, 0], p0[:, 1]), radius.shape)
    np.testing.assert_allclose(radius, expected, atol=1e-8)


def test_boris_helix_second_order_and_norm_preserving():
    modes = sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=0.0, n_modes=8))
    dirs = healpix_directions(1)
    tau = np.array([10.0])
    errors = []
    for dt in (0.02, 0.01):
        traj = backtrack(modes, dirs, tau, R_L, solver="boris", dt=dt)
        x = np.stack([helix(n, tau, R_L)[0][0] for n in np.asarray(dirs)])
        errors.append(np.max(np.abs(np.asarray(traj.r[0]) - x)))
        # Boris rotation is exactly norm preserving: |p̂| = 1 to float64 rounding
        assert float(jnp.max(jnp.abs(jnp.linalg.norm(traj.p, axis=-1) - 1))) < 1e-13
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.1)  # second order


def test_propagate_from_any_state_follows_the_helix():
    """σ = 0, start states at random positions and directions: the helix through each start
    (the analytic one from the origin, shifted: a uniform field has no preferred point), to the
    Boris error of dt = 0.005 over τ = 3 (~1e-6 Lc)."""
    modes = sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=0.0, n_modes=8))
    rng = np.random.default_rng(4)
    r0 = rng.normal(size=(5, 3))
    p0 = rng.normal(size=(5, 3))
    p0 /= np.linalg.norm(p0, axis=-1, keepdims=True)
    tau = np.array([1.0, 3.0])
    traj = propagate(modes, jnp.asarray(r0), jnp.asarray(p0), tau, R_L, dt=0.005)
    for i in range(5):
        x, p = helix(-p0[i], tau, R_L)
        np.testing.assert_allclose(traj.r[:, i], r0[i] + x, atol=1e-5)
        np.testing.assert_allclose(traj.p[:, i], p, atol=1e-4)


def test_propagate_continues_a_backtracking(modes):
    """In turbulence, back-tracking to τ1 and continuing from there for τ2 − τ1 is back-tracking
    to τ2: the same Boris steps (τ1 on the step grid), equal to rounding."""
    dirs = healpix_directions(1)
    first = backtrack(modes, dirs, np.array([2.0]), R_L, solver="boris", dt=0.1)
    rest = propagate(modes, first.r[0], first.p[0], np.array([1.5, 3.0]), R_L, dt=0.1)
    whole = backtrack(modes, dirs, np.array([3.5, 5.0]), R_L, solver="boris", dt=0.1)
    np.testing.assert_allclose(rest.r, whole.r, atol=1e-11)
    np.testing.assert_allclose(rest.p, whole.p, atol=1e-11)
    with pytest.raises(ValueError, match="r0 and p0"):
        propagate(modes, first.r[0], first.p[0, :5], np.array([1.0]), R_L, dt=0.1)
    with pytest.raises(ValueError, match="dt"):
        propagate(modes, first.r[0], first.p[0], np.array([1.0]), R_L, dt=-0.1)


def test_boris_conserves_momentum_in_turbulence(modes):
    traj = backtrack(modes, healpix_directions(2), np.array([5.0, 50.0]), R_L, solver="boris")
    assert float(jnp.max(jnp.abs(jnp.linalg.norm(traj.p, axis=-1) - 1))) < 1e-12


def test_boris_agrees_with_tsit5_in_turbulence(modes):
    """tΩ ≤ 10: Boris converges to Tsit5 (rtol 1e-10) at second order, to ≲ 1e-6 at dt = 1e-3.

    The absolute error depends on the field realisation (chaos amplifies it with tΩ); the
    ratio of the errors at dt = 2e-3 and 1e-3 does not.
    """
    dirs = healpix_directions(1)[:6]
    tau = np.array([1.0, 5.0, 10.0])
    ref = backtrack(modes, dirs, tau, R_L, solver="tsit5", rtol=1e-10, atol=1e-12)
    errors = []
    for dt in (2e-3, 1e-3):
        boris = backtrack(modes, dirs, tau, R_L, solver="boris", dt=dt)
        errors.append(float(jnp.max(jnp.abs(boris.r - ref.r))))
        assert float(jnp.max(jnp.abs(boris.p - ref.p))) < 4e-5 * (dt / 1e-3) ** 2
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)  # 2nd order; measured 3.9994+
    assert errors[1] < 5e-6  # measured 0.7e-6 to 1.4e-6 over three field seeds


def _numpy_lorentz(modes):
    k, a, beta = (np.asarray(v) for v in (modes.k, modes.amplitude, modes.phase))

    def rhs(tau, y):
        x, p = y[:3], y[3:]
        b = np.cos(k @ x + beta) @ a + np.array([0.0, 0.0, 1.0])
        return np.concatenate([-R_L * p, -np.cross(p, b)])

    return rhs


def test_one_trajectory_against_scipy(modes):
    n_hat = np.asarray(hp.pix2vec(4, 17))
    tau = np.array([2.0, 10.0])
    ref = solve_ivp(
        _numpy_lorentz(modes), (0, 10.0), np.concatenate([np.zeros(3), -n_hat]),
        method="DOP853", t_eval=tau, rtol=1e-12, atol=1e-14,
    )
    traj = backtrack(modes, jnp.asarray(n_hat[None]), tau, R_L, solver="tsit5",
                     rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(traj.r[:, 0], ref.y[:3].T, atol=1e-8)
    np.testing.assert_allclose(traj.p[:, 0], ref.y[3:].T, atol=1e-8)


def test_float32_matches_float64_at_short_times():
    m64 = sample_modes(jax.random.PRNGKey(4), TurbulenceSpectrum(sigma=1.0, n_modes=64))
    m32 = sample_modes(
        jax.random.PRNGKey(4), TurbulenceSpectrum(sigma=1.0, n_modes=64), dtype=jnp.float32
    )
    dirs = healpix_directions(1)
    tau = np.array([1.0, 5.0])
    t64 = backtrack(m64, dirs, tau, R_L, dt=0.01)
    t32 = backtrack(m32, dirs.astype(jnp.float32), tau, R_L, dt=0.01)
    assert t32.r.dtype == jnp.float32
    # float32 rounding (~1e-7) amplified by the chaotic flow over τ = 5 stays ≪ r_L
    assert float(jnp.max(jnp.abs(t32.r - t64.r))) < 1e-4


def test_gradient_in_sigma_matches_finite_differences():
    """Pathwise d⟨r_z²⟩/dσ at short times, common random numbers (same key)."""
    dirs = healpix_directions(1)
    tau = np.array([3.0])

    def msd(sigma):
        m = sample_modes(jax.random.PRNGKey(5), TurbulenceSpectrum(sigma=sigma, n_modes=32))
        traj = backtrack(m, dirs, tau, R_L, dt=0.01)
        return jnp.mean(traj.r[-1, :, 2] ** 2)

    grad = jax.grad(msd)(0.8)
    h = 1e-5
    fd = (msd(0.8 + h) - msd(0.8 - h)) / (2 * h)
    assert float(grad) == pytest.approx(float(fd), rel=1e-6)


def test_jit_and_shapes(modes):
    dirs = healpix_directions(1)
    tau = log_times(20.0, 4)
    traced = jax.jit(lambda m, d: backtrack(m, d, tau, R_L, dt=0.05))(modes, dirs)
    assert traced.r.shape == traced.p.shape == (4, 12, 3)
    assert traced.n_steps.shape == (12,)
    np.testing.assert_allclose(traced.t_omega, tau)


@pytest.mark.parametrize("solver", ["boris", "tsit5"])
def test_stacked_realisations_equal_one_at_a_time(solver):
    # R = 3 fields stacked (one Boris loop / vmapped Tsit5) vs each field on its own: same
    # arithmetic up to the order of the sum over modes (float64 rounding at τ ≤ 5)
    spectrum = TurbulenceSpectrum(sigma=1.0, n_modes=32)
    fields = [sample_modes(jax.random.PRNGKey(20 + i), spectrum) for i in range(3)]
    batch = stack_modes(fields)
    dirs, tau = healpix_directions(1), np.array([1.0, 5.0])
    kwargs = dict(solver=solver, dt=0.02, rtol=1e-8, atol=1e-10)
    out = jax.jit(lambda m, d: backtrack(m, d, tau, R_L, **kwargs))(batch, dirs)
    assert out.r.shape == out.p.shape == (3, 2, 12, 3)
    assert out.n_steps.shape == (3, 12) and out.t_omega.shape == (3, 2)
    for i, m in enumerate(fields):
        ref = backtrack(m, dirs, tau, R_L, **kwargs)
        np.testing.assert_allclose(out.r[i], ref.r, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out.p[i], ref.p, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(out.n_steps[i], ref.n_steps)
        np.testing.assert_array_equal(out.t_omega[i], ref.t_omega)


def test_modes_of_wrong_shape_named():
    m = sample_modes(jax.random.PRNGKey(0), TurbulenceSpectrum(sigma=1.0, n_modes=8))
    dirs, tau = healpix_directions(1), np.array([1.0])
    bad = [
        (jax.tree.map(lambda a: a[None, None], m), r"^modes\.k must have shape"),
        # only k stacked: the one realisation's phases would be reused for all three
        (m.__class__(k=jnp.stack([m.k] * 3), amplitude=m.amplitude, phase=m.phase),
         r"^modes\.amplitude must have the shape"),
        (m.__class__(k=m.k, amplitude=m.amplitude, phase=m.phase[:4]), r"^modes\.phase"),
    ]
    for modes, message in bad:
        with pytest.raises(ValueError, match=message):
            backtrack(modes, dirs, tau, R_L, dt=0.1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(t_omega=np.array([2.0, 1.0])), "t_omega"),
        (dict(t_omega=np.array([-1.0])), "t_omega"),
        (dict(r_larmor=0.0), "r_larmor"),
        (dict(r_larmor=float("inf")), "r_larmor"),
        (dict(solver="rk4"), "solver"),
        (dict(dt=-0.1), "dt"),
        (dict(directions=np.ones((3, 2))), "directions"),
    ],
)
def test_bad_input_names_parameter(modes, kwargs, name):
    args = dict(directions=np.eye(3), t_omega=np.array([1.0]), r_larmor=R_L) | kwargs
    with pytest.raises(ValueError, match=name):
        backtrack(modes, args.pop("directions"), args.pop("t_omega"), args.pop("r_larmor"),
                  **args)


def test_healpix_directions_and_times():
    d = np.asarray(healpix_directions(4))
    assert d.shape == (192, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-14)
    with pytest.raises(ValueError, match="nside"):
        healpix_directions(3)
    np.testing.assert_allclose(log_times(100.0, 3), [1.0, 10.0, 100.0])
    with pytest.raises(ValueError, match="n_times"):
        log_times(100.0, 0)
