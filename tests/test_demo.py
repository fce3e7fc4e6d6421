"""`crsky demo` (what `make demo` runs), in its quick configuration: a complete report folder,
and a second run never overwrites the first."""

import json

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
    summary = json.loads((out / "summary.json").read_text())
    p = summary["BGK exponent p (grad n || B0, 1 <= l <= 8)"]
    assert 0 < float(p.split()[0]) < 1
    assert summary["beam eps from 10 deg"] == "2.07e-03"  # ε = Δϑ²/j1² for 10° (PHYSICS.md §A)


def test_fresh_folder_never_reuses(tmp_path):
    first = fresh_folder(tmp_path / "demo-output")
    (first / "report.md").write_text("earlier")
    second = fresh_folder(tmp_path / "demo-output")
    assert second.name == "demo-output-2" and (first / "report.md").read_text() == "earlier"
    assert fresh_folder(tmp_path / "demo-output").name == "demo-output-3"
