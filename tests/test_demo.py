"""`crsky demo` (what `make demo` runs), in its quick configuration: a complete report folder,
and a second run never overwrites the first."""

import json
import re

import numpy as np
import pytest

from crsky.cli import main
from crsky.cli.demo import fresh_folder
from crsky.io import run, runfile


def counted(monkeypatch, module, name, calls):
    """Replace ``module.name`` by a wrapper that counts its calls in ``calls[name]``."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_quick_demo_writes_report(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo-output"
    calls = {}
    for module, name in ((runfile, "load"), (run, "ensemble_statistics"),
                         (run, "diffusion_tensor")):
        counted(monkeypatch, module, name, calls)
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    # The run file is read, and K(T) computed, once for the summary of the ensemble and once
    # for the figures and the fit of p; the statistics once per orientation each time.
    assert calls == {"load": 2, "ensemble_statistics": 4, "diffusion_tensor": 2}
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    report = (out / "report.md").read_text()
    for name in ("fig2_spectrum_vs_time.png", "fig3_spectrum_shape.png", "sky_map.png",
                 "beam_eigenfunction.png", "posterior_l/corner.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert name in report
    # summary.json: numbers, with errors/intervals and units as separate fields
    summary = json.loads((out / "summary.json").read_text())
    p = summary["bgk_p"]
    assert 0 < p["value"] < 1 and p["unit"] == "1" and p["ell_range"] == [1, 8]
    assert p["interval_68"][0] < p["value"] < p["interval_68"][1]
    # ε = Δϑ²/j1² for a 10° beam (physics.md (B10)), j1 the first zero of J1 (scipy)
    from scipy.special import jn_zeros

    eps = summary["beam_eps"]
    assert eps["value"] == pytest.approx((np.radians(10.0) / jn_zeros(1, 1)[0]) ** 2, rel=1e-12)
    kappa = summary["kappa_parallel_at_t_max"]
    assert kappa["unit"] == "Lc c" and kappa["t_omega"] == 50.0 and kappa["error"] > 0
    l_pc = summary["l_pc"]
    assert l_pc["unit"] == "pc" and l_pc["interval_95"][0] < l_pc["value"] < l_pc["interval_95"][1]
    # report.md: a Markdown table of three cells per row; the '|' of |p| is escaped
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert rows[0] == "| quantity | value | unit |" and len(rows) == 2 + len(summary)
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 5, row  # 3 cells between 4 bars
    assert r"max \|p̂\| drift" in report


def test_fresh_folder_never_reuses(tmp_path):
    first = fresh_folder(tmp_path / "demo-output")
    (first / "report.md").write_text("earlier")
    second = fresh_folder(tmp_path / "demo-output")
    assert second.name == "demo-output-2" and (first / "report.md").read_text() == "earlier"
    assert fresh_folder(tmp_path / "demo-output").name == "demo-output-3"
