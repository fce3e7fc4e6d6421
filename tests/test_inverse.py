"""The inverse problem (crsky.physics.inverse): parametrisation, gradients, Fisher matrix, fits.

References: the plane-wave field of crsky.physics.turbulence (exact representation), central
finite differences of the forward map (gradients and the Jacobian behind the Fisher matrix), and
the true parameters of a noise-free mock (recovery). Everything in float64 (tests/conftest.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crsky.physics import inverse as inv
from crsky.physics.tracing import backtrack
from crsky.physics.turbulence import TurbulenceSpectrum, sample_modes, turbulent_field

R_LARMOR = 0.1
K = jnp.diag(jnp.array([0.025, 0.025, 0.54]))
GRADIENT = jnp.array([1.0, 0.0, 1.0]) / np.sqrt(2)


def small_problem(n_modes=2, sigma=0.5, t_omega=(1.0, 2.0), nside=2):
    basis = inv.make_basis(jax.random.PRNGKey(0), n_modes, 0.5 / R_LARMOR, 2 / R_LARMOR)
    problem = inv.make_problem(basis, nside, t_omega, R_LARMOR, K, dt=0.1)
    scale = inv.prior_scale_for(n_modes, sigma)
    coefficients = jnp.asarray(scale)[:, None] * jax.random.normal(
        jax.random.PRNGKey(1), (n_modes, 4)
    )
    return problem, inv.FieldParams(coefficients, GRADIENT), scale


def test_representation_of_plane_waves_is_exact():
    """basis_from_modes + to_modes reproduce Σ δB_n cos(k_n·x + β_n) (rounding, 1e-12) and are
    divergence-free (every wave's amplitude ⊥ its k)."""
    modes = sample_modes(jax.random.PRNGKey(3), TurbulenceSpectrum(sigma=0.8, n_modes=6))
    basis, coefficients = inv.basis_from_modes(modes)
    x = 3 * jax.random.normal(jax.random.PRNGKey(4), (20, 3))
    rebuilt = inv.to_modes(basis, coefficients)
    assert jnp.max(jnp.abs(turbulent_field(rebuilt, x) - turbulent_field(modes, x))) < 1e-12
    assert jnp.max(jnp.abs(jnp.sum(rebuilt.k * rebuilt.amplitude, -1))) < 1e-12
    assert jnp.allclose(jnp.linalg.norm(basis.e1, axis=-1), 1) and jnp.allclose(
        jnp.sum(basis.e1 * basis.e2, -1), 0, atol=1e-14
    )


def test_likelihood_gradient_matches_finite_differences():
    """jax.grad of −ln posterior against central differences (h = 1e-6: truncation ~h² and
    rounding ~1e-16/h, both far below the 1e-5 relative tolerance) at short T (tΩ ≤ 2)."""
    problem, truth, scale = small_problem()
    data, sigma = inv.mock_data(jax.random.PRNGKey(5), problem, truth, events=1e5)
    point = inv.FieldParams(truth.coefficients * 0.8 + 0.01, GRADIENT)

    @jax.jit
    def f(theta):
        p = inv.FieldParams(theta.reshape(point.coefficients.shape), GRADIENT)
        return inv.negative_log_posterior(problem, p, data, sigma, scale)

    theta = point.coefficients.ravel()
    grad = jax.grad(f)(theta)
    h = 1e-6
    fd = np.array([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h)
                   for i in range(theta.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))


def test_fisher_matrix_matches_finite_difference_jacobian():
    """Nearly linear regime (σ = 0.05, tΩ ≤ 1): F = JᵀΣ⁻¹J from reverse-mode AD equals the same
    product with J from central differences of the forward map (h = 1e-5; tolerance 1e-6
    relative to the largest entry, above the FD truncation ~h²·f''' and rounding)."""
    problem, truth, _ = small_problem(sigma=0.05, t_omega=(0.5, 1.0))
    pix_sigma = inv.pixel_sigma(1e6, problem.directions.shape[0])
    F = np.asarray(inv.fisher_matrix(problem, truth, pix_sigma))
    theta = truth.coefficients.ravel()

    @jax.jit
    def f(t):
        return inv.predict(problem, inv.FieldParams(t.reshape(truth.coefficients.shape),
                                                    GRADIENT)).ravel()

    h = 1e-5
    J = np.stack([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h)
                  for i in range(theta.size)], axis=-1)
    F_fd = J.T @ J / pix_sigma**2
    np.testing.assert_allclose(F, F_fd, atol=1e-6 * np.max(np.abs(F_fd)))
    # every one of the 8 coefficients is constrained at this event count: F is positive definite
    assert np.linalg.eigvalsh(F)[0] > 0


def test_jacobian_matches_finite_differences_and_whole_map_reverse_mode():
    """inverse.jacobian (reverse mode through one trajectory per pixel, monopole removed after)
    against two independent references at tΩ ≤ 1, with a free gradient and a fixed background
    wave: central differences of predict (h = 1e-5; truncation ~h²·f''' and rounding ~1e-16/h,
    below the 1e-6 tolerance relative to the largest entry), and jax.jacrev of predict (reverse
    mode through the whole map: the same derivatives, so equal to rounding, 1e-10)."""
    problem, truth, _ = small_problem(t_omega=(0.5, 1.0))
    other = inv.make_basis(jax.random.PRNGKey(7), 1, 1 / R_LARMOR, 1 / R_LARMOR)
    background = inv.to_modes(other, jnp.array([[0.1, -0.05, 0.02, 0.08]]))
    problem = inv.make_problem(problem.basis, 2, problem.t_omega, R_LARMOR, K, dt=0.1,
                               background=background)
    point = inv.FieldParams(truth.coefficients, jnp.array([0.3, -0.2, 0.9]))
    J = np.asarray(inv.jacobian(problem, point, free_gradient=True))
    theta = inv.flatten(point, free_gradient=True)
    assert J.shape == (2 * 48, theta.size)

    @jax.jit
    def f(t):
        return inv.predict(problem, inv._unflatten(t, point, True)).ravel()

    h = 1e-5
    J_fd = np.stack([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h)
                     for i in range(theta.size)], axis=-1)
    scale = np.max(np.abs(J_fd))
    np.testing.assert_allclose(J, J_fd, rtol=0, atol=1e-6 * scale)
    J_rev = np.asarray(jax.jacrev(f)(theta))
    np.testing.assert_allclose(J, J_rev, rtol=0, atol=1e-10 * scale)


def test_identifiable_directions_against_numpy():
    """Hand-built F = Q diag(λ) Qᵀ (Q orthogonal, known spectrum): with an isotropic prior the
    ratios are λ/Λ exactly and the count is #(λ > Λ); with a diagonal prior they equal numpy's
    eigenvalues of Λ^{-1/2} F Λ^{-1/2} and the directions solve F v = λ Λ v (rounding, 1e-10)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    lam = np.array([1e4, 300.0, 20.0, 5.0, 0.5, 0.0])
    fisher = q @ np.diag(lam) @ q.T
    ident = inv.identifiable_directions(fisher, 10.0)
    np.testing.assert_allclose(ident.ratio, lam / 10.0, atol=1e-10)
    assert int(ident.count) == 3
    # each direction is ± the matching column of Q
    np.testing.assert_allclose(np.abs(np.sum(ident.directions[:, :4] * q[:, :4], 0)), 1,
                               atol=1e-10)
    precision = rng.uniform(1.0, 50.0, 6)
    ident = inv.identifiable_directions(fisher, precision, threshold=2.0)
    w = np.diag(precision**-0.5)
    ref = np.sort(np.linalg.eigvalsh(w @ fisher @ w))[::-1]
    np.testing.assert_allclose(ident.ratio, ref, atol=1e-10 * ref[0])
    assert int(ident.count) == int(np.sum(ref > 2.0))
    v = np.asarray(ident.directions)
    np.testing.assert_allclose(fisher @ v, (precision[:, None] * v) * np.asarray(ident.ratio),
                               atol=1e-10 * ref[0] * precision.max())
    np.testing.assert_allclose(inv.prior_precision(np.array([2.0, 4.0]), free_gradient=True),
                               [0.25] * 4 + [1 / 16] * 4 + [0.0] * 3)
    with pytest.raises(ValueError, match="prior_precision"):
        inv.identifiable_directions(fisher, np.ones(5))
    with pytest.raises(ValueError, match="prior_precision"):
        inv.identifiable_directions(fisher, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        inv.identifiable_directions(fisher, 1.0, threshold=-1.0)
    with pytest.raises(ValueError, match="fisher"):
        inv.identifiable_directions(np.ones((3, 4)), 1.0)


def test_noise_free_recovery_to_machine_precision():
    """Few unknowns (2 waves, 8 coefficients), tΩ ≤ 2, noise-free data: the best of 4 prior
    starts recovers the true coefficients to 1e-9 (BFGS to rtol 1e-10 on a problem whose
    Fisher matrix is well conditioned; float64 rounding of the maps is ~1e-15)."""
    problem, truth, scale = small_problem()
    data, sigma = inv.mock_data(None, problem, truth, events=None)
    starts = inv.random_starts(jax.random.PRNGKey(7), 4, 2, scale, GRADIENT)
    result = inv.fit(problem, data, sigma, starts)
    best = result.best_params()
    assert jnp.max(jnp.abs(best.coefficients - truth.coefficients)) < 1e-9
    assert inv.map_correlation(inv.predict(problem, best), data) > 1 - 1e-12


def test_shooting_nodes_and_merit_on_continuous_paths():
    """Nodes: the data times before the last and the segment multiples away from them. With
    node states on the paths of the field the jumps vanish and the multiple-shooting merit is
    −ln posterior (to rounding), at any penalty weight."""
    assert inv.shooting_nodes([2.0, 4.0, 8.0], 2.0) == (2.0, 4.0, 6.0)
    assert inv.shooting_nodes([1.0, 2.0], 0.75) == (0.75, 1.0, 1.5)
    assert inv.shooting_nodes([1.0], 2.0) == ()
    problem, truth, scale = small_problem(t_omega=(1.0, 2.0))
    data, sigma = inv.mock_data(jax.random.PRNGKey(5), problem, truth, events=1e5)
    point = inv.FieldParams(truth.coefficients * 0.7 + 0.02, GRADIENT)
    nodes = inv.shooting_nodes(problem.t_omega, 0.5)
    states = inv.shooting_states(problem, point, nodes)
    exact = inv.negative_log_posterior(problem, point, data, sigma, scale)
    for weight in (1.0, 1e6):
        merit = inv.shooting_objective(problem, point, states, data, sigma, nodes, weight, scale)
        assert merit == pytest.approx(float(exact), rel=1e-11)
    # a jump of 0.01 r_L at one node (no data there) adds weight/2 · 0.01²
    jumped = states.at[0, 3, 0].add(0.01)
    merit = inv.shooting_objective(problem, point, jumped, data, sigma, nodes, 1e4, scale)
    assert merit > exact


def test_shooting_step_from_continuous_paths_is_the_gauss_newton_step():
    """From node states on the paths of θ, condensing gives the Gauss–Newton step of single
    shooting: (JᵀΣ⁻¹J + Λ) Δθ = −(JᵀΣ⁻¹r + Λθ), J from the whole-path Jacobian
    (inv.jacobian), solved with numpy; node steps = the linearised motion of the path."""
    problem, truth, scale = small_problem(t_omega=(1.0, 2.0))
    data, sigma = inv.mock_data(jax.random.PRNGKey(5), problem, truth, events=1e5)
    point = inv.FieldParams(truth.coefficients * 0.7 + 0.02, GRADIENT)
    nodes = inv.shooting_nodes(problem.t_omega, 0.5)
    states = inv.shooting_states(problem, point, nodes)
    theta = inv.flatten(point, False)
    delta, d_states = inv.shooting_step(problem, theta, point, states, data, sigma, nodes, scale)
    J = np.asarray(inv.jacobian(problem, point)) / np.asarray(sigma).reshape(-1, 1)
    r = np.asarray((inv.predict(problem, point) - data) / sigma).ravel()
    lam = np.asarray(inv.prior_precision(scale))
    expected = -np.linalg.solve(J.T @ J + np.diag(lam), J.T @ r + lam * np.asarray(theta))
    np.testing.assert_allclose(delta, expected, rtol=1e-8, atol=1e-12)
    # the node steps are the first-order motion of the paths: compare with a small step h Δθ
    h = 1e-5
    moved = inv.shooting_states(
        problem, inv.FieldParams(point.coefficients + h * delta.reshape(2, 4), GRADIENT), nodes)
    np.testing.assert_allclose((moved - states) / h, d_states, rtol=1e-3, atol=1e-6)


def test_noise_free_recovery_with_multiple_shooting():
    """The noise-free problem of test_noise_free_recovery_to_machine_precision, fitted through
    multiple shooting first (segments of tΩ 0.5): the truth to 1e-9."""
    problem, truth, scale = small_problem()
    data, sigma = inv.mock_data(None, problem, truth, events=None)
    starts = inv.random_starts(jax.random.PRNGKey(7), 4, 2, scale, GRADIENT)
    result = inv.fit(problem, data, sigma, starts,
                     shooting=inv.Shooting(segment=0.5, iterations=10))
    best = result.best_params()
    assert jnp.max(jnp.abs(best.coefficients - truth.coefficients)) < 1e-9


@pytest.mark.parametrize("kwargs, name", [
    ({"segment": 0.0}, "segment"), ({"iterations": 0}, "iterations"), ({"weight": -1.0}, "weight"),
])
def test_bad_shooting_settings_are_rejected(kwargs, name):
    with pytest.raises(ValueError, match=name):
        inv.Shooting(**kwargs)


def test_field_of_view_observation_against_observe_map():
    """A problem in equatorial pixels (B0 at the default direction) seen through a declination
    band: predict equals, to first order in δI, the numpy observation of the whole-sky map
    (observatory.observe_map without shot noise: counts over each ring's reference, minus 1) of
    intensities from paths back-tracked here from Rᵀ n̂ (healpy's pixel vectors)."""
    import healpy as hp

    from crsky.physics import observatory as ob
    from crsky.physics import sky

    problem, truth, scale = small_problem(t_omega=(1.0, 2.0), nside=4)
    rotation = ob.simulation_frame()
    mask = ob.field_of_view(4, -90.0, -20.0)
    seen = inv.make_problem(problem.basis, 4, (1.0, 2.0), R_LARMOR, K, 0.1, frame=rotation,
                            field_of_view=mask)
    small = inv.FieldParams(truth.coefficients, 1e-4 * GRADIENT)  # δI ~ 1e-5: first order
    model = np.asarray(inv.predict(seen, small))
    assert model.shape == (2, int(mask.sum()))
    n_eq = np.stack(hp.pix2vec(4, np.arange(192)), axis=-1)
    traj = backtrack(inv.to_modes(problem.basis, truth.coefficients), jnp.asarray(n_eq @ rotation),
                     np.array([1.0, 2.0]), R_LARMOR, solver="boris", dt=0.1)
    whole = np.asarray(sky.relative_intensity(traj.r, traj.p, small.gradient, K))
    for t in range(2):
        reference = ob.observe_map(whole[t], mask)[mask]
        # observe_map divides by the ring's mean intensity: they differ at second order in δI
        np.testing.assert_allclose(model[t], reference, rtol=0, atol=10 * np.abs(whole).max()**2)
        assert np.abs(reference).max() > 1e-6  # a real signal, not zeros
    # the fit sees n_obs values per map: data of the whole sky's length are refused
    starts = inv.random_starts(jax.random.PRNGKey(7), 2, 2, scale, small.gradient)
    with pytest.raises(ValueError, match="data"):
        inv.fit(seen, jnp.zeros((2, 192)), 1.0, starts)


def test_jacobian_through_the_field_of_view_matches_finite_differences():
    """inv.jacobian of a problem seen through a band against central differences of predict."""
    from crsky.physics import observatory as ob

    problem, truth, _ = small_problem(t_omega=(2.0,), nside=2)
    seen = inv.make_problem(problem.basis, 2, (2.0,), R_LARMOR, K, 0.1,
                            frame=ob.simulation_frame(), field_of_view=ob.field_of_view(
                                2, -90.0, 10.0))
    J = np.asarray(inv.jacobian(seen, truth))
    theta = np.asarray(truth.coefficients).ravel()
    h = 1e-6
    for i in (0, 5):
        step = np.zeros_like(theta)
        step[i] = h
        up, down = (inv.predict(seen, inv.FieldParams(jnp.asarray(theta + s).reshape(2, 4),
                                                      GRADIENT)) for s in (step, -step))
        np.testing.assert_allclose(J[:, i], np.ravel(up - down) / (2 * h), rtol=1e-5,
                                   atol=1e-8)


def test_bad_input_is_rejected():
    problem, truth, scale = small_problem()
    basis = problem.basis
    with pytest.raises(ValueError, match="t_omega"):
        inv.make_problem(basis, 2, [0.0, 1.0], R_LARMOR, K, 0.1)
    with pytest.raises(ValueError, match="t_omega"):
        inv.make_problem(basis, 2, [-1.0], R_LARMOR, K, 0.1)
    with pytest.raises(ValueError, match="nside"):
        inv.make_problem(basis, 3, [1.0], R_LARMOR, K, 0.1)
    with pytest.raises(ValueError, match="K"):
        inv.make_problem(basis, 2, [1.0], R_LARMOR, jnp.eye(2), 0.1)
    with pytest.raises(ValueError, match="events"):
        inv.pixel_sigma(-5.0, 48)
    with pytest.raises(ValueError, match="k_min"):
        inv.make_basis(jax.random.PRNGKey(0), 2, 5.0, 1.0)
    with pytest.raises(ValueError, match="frame"):
        inv.make_problem(basis, 2, [1.0], R_LARMOR, K, 0.1, frame=2 * np.eye(3))
    with pytest.raises(ValueError, match="field_of_view"):
        inv.make_problem(basis, 2, [1.0], R_LARMOR, K, 0.1, field_of_view=np.zeros(48, bool))
    with pytest.raises(ValueError, match="field_of_view"):
        inv.make_problem(basis, 2, [1.0], R_LARMOR, K, 0.1, field_of_view=np.ones(47, bool))
    # nside 1024: the dense observation operator would need ~3.6e15 bytes, refused at once
    with pytest.raises(ValueError, match="nside=1024"):
        inv.make_problem(basis, 1024, [1.0], R_LARMOR, K, 0.1,
                         field_of_view=np.ones(12 * 1024**2, bool))
    starts = inv.random_starts(jax.random.PRNGKey(7), 2, 2, scale, GRADIENT)
    with pytest.raises(ValueError, match="data"):
        inv.fit(problem, jnp.zeros((2, 47)), 1.0, starts)
    with pytest.raises(ValueError, match="starts"):
        inv.fit(problem, jnp.zeros((2, 48)), 1.0,
                inv.random_starts(jax.random.PRNGKey(7), 2, 3, np.ones(3), GRADIENT))


def direct_field(basis, coefficients, x):
    """B/B0 = ẑ + Σ_n [(a e1 + b e2) cos(k·x) + (c e1 + d e2) sin(k·x)] by a plain numpy sum over
    the waves (the parametrisation of crsky.physics.inverse), at points x of shape (..., 3)."""
    k, e1, e2 = (np.asarray(a) for a in (basis.k, basis.e1, basis.e2))
    c = np.asarray(coefficients)
    x = np.asarray(x)
    b = np.zeros(x.shape)
    b[..., 2] = 1.0
    for n in range(k.shape[0]):
        phase = x @ k[n]
        cos_vec = c[n, 0] * e1[n] + c[n, 1] * e2[n]
        sin_vec = c[n, 2] * e1[n] + c[n, 3] * e2[n]
        b += np.cos(phase)[..., None] * cos_vec + np.sin(phase)[..., None] * sin_vec
    return b


def test_field_along_paths_against_direct_sum():
    """The field along the paths equals a direct numpy sum of the waves at the returned positions
    (1e-12), for the true and for a different 'recovered' field; the positions are those of the
    paths through the true field (not the recovered one), and a CR moving at c cannot be farther
    than r_L τ from the observer."""
    problem, truth, _ = small_problem()
    recovered = inv.FieldParams(truth.coefficients + 0.05, truth.gradient)
    pixels, times = [0, 17, 47], [0.5, 1.0, 1.5, 2.5]
    along = inv.field_along_paths(problem, truth, recovered, pixels, times)
    assert along.r.shape == along.b_true.shape == along.b_recovered.shape == (4, 3, 3)
    np.testing.assert_allclose(along.t_omega, times)
    np.testing.assert_allclose(along.b_true, direct_field(problem.basis, truth.coefficients,
                                                          along.r), rtol=0, atol=1e-12)
    np.testing.assert_allclose(along.b_recovered, direct_field(
        problem.basis, recovered.coefficients, along.r), rtol=0, atol=1e-12)
    assert np.max(np.abs(along.b_recovered - along.b_true)) > 1e-2
    distance = np.linalg.norm(np.asarray(along.r), axis=-1)
    assert np.all(distance <= R_LARMOR * np.asarray(times)[:, None] * (1 + 1e-9))
    directions = problem.directions[np.asarray(pixels)]
    through_truth = backtrack(inv.to_modes(problem.basis, truth.coefficients), directions,
                              np.asarray(times), R_LARMOR, dt=problem.dt)
    through_recovered = backtrack(inv.to_modes(problem.basis, recovered.coefficients),
                                  directions, np.asarray(times), R_LARMOR, dt=problem.dt)
    np.testing.assert_allclose(along.r, through_truth.r, rtol=0, atol=1e-13)
    assert np.max(np.abs(along.r - through_recovered.r)) > 1e-6
    with pytest.raises(ValueError, match="pixels"):
        inv.field_along_paths(problem, truth, recovered, [48], times)
    with pytest.raises(ValueError, match="t_omega"):
        inv.field_along_paths(problem, truth, recovered, pixels, [1.0, 0.5])
