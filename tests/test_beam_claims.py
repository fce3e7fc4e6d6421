"""The beam paper's further claims: l from each observable, the knee, energy scalings, source
distance, sustainability (crsky.physics.beam) and ``crsky beam``.

References: SI constants by hand (knee scale), the closed forms of the paper (width j1 √ε,
eq. 15, eq. 5 with the converged λ1 = 14.528 of D ≡ 1), the matched-asymptotic excess
x/(1 + x) and its exact log-slope 1/(1 + x), and central finite differences for gradients.
"""

import io
import json

import jax
import numpy as np
import pytest

from crsky.cli import main
from crsky.physics import beam, pitch_angle
from crsky.plotting.beam import plot_energy_dependence, plot_l_posteriors, plot_sustainability

POINT = {"l_pc": 1.0, "b0_ugauss": 3.0, "va_over_c": 1e-4, "alpha": 1e-3, "q_c": 4.6}


def test_knee_scale_against_si_constants():
    # r_g = E/(e c B0): 3 PeV in 3 μG, e cancels; 1 pc = 3.0856775814913673e16 m
    r_m = 3e15 / (299_792_458.0 * 3e-10)
    assert float(beam.knee_scale_pc(3.0)) == pytest.approx(r_m / 3.0856775814913673e16, 1e-12)
    assert float(beam.knee_scale_pc(3.0)) == pytest.approx(1.0810, abs=1e-4)
    # with l = r_g(knee) the theory has no free parameter: ε = E/E_knee whatever B0
    for b0 in (1.0, 5.0):
        eps = beam.eps_from_scale(beam.knee_scale_pc(b0), 6.0, b0)
        assert float(eps) == pytest.approx(6.0 / 3000.0, rel=1e-12)


def test_predict_against_closed_forms():
    out = beam.predict(energy_tev=1.5, **POINT)
    eps = float(beam.eps_from_scale(1.0, 1.5, 3.0))
    assert float(out["eps"]) == pytest.approx(eps, rel=1e-14)
    # Beam paper: Δϑ = j1 √ε; eq. (15) through crsky.physics.beam.p_bmax_tev
    assert float(out["width_deg"]) == pytest.approx(np.degrees(3.8317059702 * np.sqrt(eps)), 1e-9)
    assert float(out["p_bmax_tev"]) == pytest.approx(
        float(beam.p_bmax_tev(1.0, 3.0, 1e-4, 1e-3, 4.6)), rel=1e-14)
    # the eigen excess lies within 6 % of the matched asymptotics x/(1 + x) (ε ≤ 0.02)
    fast = beam.predict(energy_tev=1.5, forward="asymptotic", **POINT)
    x = 14.52800341 * 3.8317059702**2 * eps / 4
    assert float(fast["fractional_excess"]) == pytest.approx(x / (1 + x), rel=1e-8)
    assert float(out["fractional_excess"]) == pytest.approx(x / (1 + x), rel=0.06)


def test_energy_scalings_and_where_they_break():
    energies = [0.3, 1.0, 3.0, 10.0, 30.0]
    table = beam.energy_dependence(1.0, 3.0, energies, 1e-4, 1e-3)
    # width ∝ √E exactly (Δϑ = j1 √ε, ε ∝ E)
    np.testing.assert_allclose(table["width_index"], 0.5, rtol=1e-10)
    # excess index against central differences of the eigen excess in ln E (h = 1e-3)
    for e, index in zip(energies[1:3], table["excess_index"][1:3], strict=True):
        f = [np.log(float(beam.predict(energy_tev=e * np.exp(s), **POINT)["fractional_excess"]))
             for s in (-1e-3, 1e-3)]
        assert float(index) == pytest.approx((f[1] - f[0]) / 2e-3, rel=1e-5)
    # matched asymptotics: d ln(x/(1 + x))/d ln E = 1/(1 + x); excess ∝ E breaks as x grows
    x = 14.528 * pitch_angle.peak_width(np.asarray(table["eps"])) / 2
    np.testing.assert_allclose(table["excess_index"], 1 / (1 + x), rtol=0.06)
    assert table["excess_index"][0] > 0.95 and table["excess_index"][-1] < 0.8


def test_source_distance_against_eq5_by_hand():
    # the beam paper's parameters: l = 1 pc, δ = 1e-4, ε = 2.1e-3; A_src = 1 decays to A_obs = 1e-3
    eps, delta = 2.1e-3, 1e-4
    length = 6.0 / (delta * np.log(1 / eps) + eps**1.5)  # eq. (5): c/ν_ϑ = 6 l/(δ ln(1/ε) + ε^1.5)
    assert length == pytest.approx(8415, rel=1e-3)
    d = beam.source_distance(1.0, eps, delta, 1.0)
    assert float(d.scattering_length_pc) == pytest.approx(length, rel=1e-12)
    # λ1 of the matched profile exceeds the flat 14.528 by δλ ≈ 0.1 (< 1 %)
    assert float(d.distance_pc) == pytest.approx(length * np.log(1e3) / 14.528, rel=0.01)
    assert float(d.mode_separation) == pytest.approx(float(d.lambda2 - d.lambda1) * float(d.z))
    # the inverse: the first mode decays by A_obs/A_src over that distance
    att = beam.first_mode_attenuation(d.distance_pc, 1.0, eps, delta)
    assert float(att) == pytest.approx(1e-3, rel=1e-10)
    # L ∝ l at fixed ε, and dL/dδ against a central difference
    assert float(beam.source_distance(3.0, eps, delta, 1.0).distance_pc) == pytest.approx(
        3 * float(d.distance_pc), rel=1e-12)
    g = jax.grad(lambda v: beam.source_distance(1.0, eps, v, 1.0).distance_pc)(delta)
    h = 1e-3 * delta
    fd = (float(beam.source_distance(1.0, eps, delta + h, 1.0).distance_pc)
          - float(beam.source_distance(1.0, eps, delta - h, 1.0).distance_pc)) / (2 * h)
    assert float(g) == pytest.approx(fd, rel=1e-5)


def test_sustainability_crosses_at_p_bmax():
    # eqs. (13)-(15): F_B/F_th = α ε²/(A δ) = 1 exactly at p_Bmax (A with λ1 = 14.528)
    p_max = float(beam.p_bmax_tev(1.0, 3.0, 1e-4, 1e-3, 4.6))
    eps = beam.eps_from_scale(1.0, p_max, 3.0)
    ratio = beam.beam_content_ratio(eps, 1e-3) / beam.threshold_ratio(1e-4, 4.6)
    assert float(ratio) == pytest.approx(1.0, rel=1e-12)
    # F_B ∝ p² at fixed l: above p_Bmax the beam exceeds the threshold
    above = beam.beam_content_ratio(2 * eps, 1e-3) / beam.threshold_ratio(1e-4, 4.6)
    assert float(above) == pytest.approx(4.0, rel=1e-12)


def test_figures_are_pngs():
    table = beam.energy_dependence(1.0, 3.0, [1.0, 3.0, 10.0], 1e-4, 1e-3)
    e = np.geomspace(1, 100, 5)
    rng = np.random.default_rng(0)
    samples = {"width": np.exp(rng.normal(0, 1, 200)), "joint": np.exp(rng.normal(0, 0.5, 200))}
    b0 = {k: np.exp(rng.normal(1, 0.3, 200)) for k in samples}
    for fig in (plot_energy_dependence(table),
                plot_sustainability(e, e**2 * 1e-6, 4e-5, 30.0),
                plot_l_posteriors(samples, (0.32, 3.2), "t", b0, 3.24)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: beam.predict(0.001, 3.0, 1.5, 1e-4, 1e-3), "l_pc"),  # ε = 0.54 ≥ 0.02
        (lambda: beam.predict(1.0, 0.0, 1.5, 1e-4, 1e-3), "b0_ugauss"),
        (lambda: beam.predict(1.0, 3.0, -1.0, 1e-4, 1e-3), "energy_tev"),
        (lambda: beam.predict(1.0, 3.0, 1.5, 1e-4, 1e-3, forward="x"), "forward"),
        (lambda: beam.energy_dependence(1.0, 3.0, [2.0, 1.0], 1e-4, 1e-3), "energies_tev"),
        (lambda: beam.source_distance(1.0, 2e-3, 1e-4, 1e-4), "source_anisotropy"),
        (lambda: beam.source_distance(1.0, 2e-3, 0.0, 1.0), "va_over_c"),
        (lambda: beam.knee_scale_pc(3.0, -3.0), "knee_pev"),
        (lambda: beam.threshold_ratio(1e-4, 2.0), "q_c"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_cli_json(capsys, tmp_path):
    png = tmp_path / "e.png"
    argv = ["beam", "--knee-pev", "3", "--b0-ugauss", "3", "--energy-tev", "6",
            "--source-anisotropy", "1", "--energies", "1", "3", "10", "--figure", str(png),
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("l_pc", "eps", "width_deg", "fractional_excess", "p_bmax_tev",
                "source_distance_pc"):
        assert isinstance(out[key], float), key
    assert out["l_pc"] == pytest.approx(1.0810, abs=1e-4)
    assert out["eps"] == pytest.approx(6 / 3000, rel=1e-12)  # ε = E/E_knee
    assert out["energy_dependence"]["width_index"] == pytest.approx([0.5] * 3, rel=1e-10)
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["beam", "--l-pc", "1", "--energy-tev", "-1"], "energy_tev"),
        (["beam", "--l-pc", "1", "--b0-ugauss", "0"], "b0_ugauss"),
        (["beam", "--l-pc", "0.001"], "l_pc"),
        (["beam", "--l-pc", "1", "--source-anisotropy", "1e-4"], "source_anisotropy"),
        (["beam", "--l-pc", "1", "--figure", "x.png"], "--figure"),
        (["beam", "--l-pc", "1", "--energy-range", "3", "1", "4"], "--energy-range"),
    ],
)
def test_cli_bad_input_exit_2(argv, name, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err


def test_excess_table_against_the_direct_solver():
    """Reference: crsky.physics.beam.observables (the eigen excess) at points off the nodes of
    a small table; the interpolant must agree to the error it measured itself (asked ≤ 1e-3),
    and its gradient in ε must match a central difference of the interpolant (1e-6)."""
    table = beam.tabulate_excess((1e-4, 1e-2), (5e-5, 2e-4), n_eps=8, n_delta=3)
    assert 0 < table.max_rel_error < 1e-3
    for eps, delta in ((3e-4, 7e-5), (4e-3, 1.5e-4)):
        direct = float(beam.observables(eps, delta).fractional_excess)
        got = float(beam.table_fractional_excess(table, eps, delta))
        assert got == pytest.approx(direct, rel=2 * table.max_rel_error)
    g = jax.grad(lambda e: beam.table_fractional_excess(table, e, 1e-4))(2e-3)
    h = 1e-6
    fd = (float(beam.table_fractional_excess(table, 2e-3 + h, 1e-4))
          - float(beam.table_fractional_excess(table, 2e-3 - h, 1e-4))) / (2 * h)
    assert float(g) == pytest.approx(fd, rel=1e-6)


def test_flat_eigenvalue_against_legendre_galerkin():
    """Independent reference for λ1 of D ≡ 1 (eq. 9): a Legendre–Galerkin solve in numpy
    (K = diag(2n(n+1)/(2n+1)), M the tridiagonal ∫ P_m μ P_n), 40 terms, machine precision."""
    n = np.arange(40)
    k = np.diag(2.0 * n * (n + 1) / (2 * n + 1))
    m = np.zeros((40, 40))
    off = 2.0 * (n[:-1] + 1) / ((2 * n[:-1] + 1) * (2 * n[:-1] + 3))
    m[n[1:], n[:-1]] = m[n[:-1], n[1:]] = off
    lam = np.linalg.eigvals(np.linalg.solve(m, k)).real
    lam1 = np.min(lam[lam > 1e-6])
    assert lam1 == pytest.approx(beam.LAMBDA1_FLAT, rel=1e-9)
    flat = pitch_angle.solve(2e-3, 1e-4, 0.0, "flat", 1)
    assert float(flat.lambdas[0]) == pytest.approx(lam1, rel=1e-8)
