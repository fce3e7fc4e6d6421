"""``crsky eigen`` and ``crsky bgk`` through ``crsky.cli.main`` (JSON output, exit codes)."""

import json

import pytest

from crsky.cli import main


def test_eigen_json(capsys):
    assert (
        main(["eigen", "--eps", "2.1e-3", "--delta", "1e-4", "--profile", "matched", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    for key in (
        "lambda1",
        "lambda2",
        "lambda3",
        "lambda1_flat",
        "delta_lambda",
        "delta_lambda_asymptotic",
        "beam_width_mu",
        "beam_width_deg",
        "fractional_excess",
        "fractional_excess_asymptotic",
        "dlambda1_deps",
    ):
        assert isinstance(out[key], float), key
    assert out["lambda1_flat"] == pytest.approx(14.5280, abs=5e-5)  # docs/physics.md (B7)
    assert out["lambda1"] < out["lambda2"] < out["lambda3"]
    assert out["delta_lambda"] == pytest.approx(out["lambda1"] - out["lambda1_flat"])
    assert out["fractional_excess"] == pytest.approx(0.1, abs=0.01)  # beam paper (B11): ≈ 0.1
    assert out["dlambda1_deps"] > 0


def test_bgk_json(capsys):
    assert main(["bgk", "--p", "0.5", "--ell-max", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ell"] == list(range(1, 21))
    assert len(out["cl"]) == len(out["cl_over_c1"]) == len(out["dcl_over_c1_dp"]) == 20
    assert out["cl_over_c1"][0] == pytest.approx(1.0, rel=1e-14)
    assert out["dcl_over_c1_dp"][0] == pytest.approx(0.0, abs=1e-12)
    assert out["cl_over_c1"][1] == pytest.approx(out["cl"][1] / out["cl"][0], rel=1e-14)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["eigen", "--eps", "0"], "eps"),
        (["eigen", "--eps", "1.5", "--profile", "flat"], "eps"),
        (["eigen", "--eps", "1e-3", "--delta", "-1"], "delta"),
        (["eigen", "--eps", "1e-3", "--u", "1"], "u"),
        (["eigen", "--eps", "nan"], "eps"),
        (["eigen", "--eps", "1e-3", "--profile", "iroshnikov"], "profile"),
        (["bgk", "--p", "1.0"], "p"),
        (["bgk", "--p", "-0.5"], "p"),
        (["bgk", "--p", "inf"], "p"),
        (["bgk", "--p", "0.5", "--ell-max", "0"], "ell_max"),
    ],
)
def test_bad_input_one_line_exit_2(argv, name, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "error" in lines[0]
