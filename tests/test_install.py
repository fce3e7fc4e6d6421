"""crsky as a user gets it: the wheel, installed non-editable into a fresh virtual environment,
runs its commands from a folder that holds no repository files.

Reference: the installed package itself. ``crsky.__file__`` must lie inside the temporary
environment (the editable crsky of the test environment must not leak in), the built-in names
(``--config reduced``, ``milagro_beam``) must resolve from the wheel's resources, and the
commands must write their report files.

To stay fast the temporary environment reuses the test environment's dependencies: it is made
``--without-pip`` and sees the test environment's site-packages through a ``.pth`` line (a
path line only; ``.pth`` files in that folder, such as the editable install's finder, are not
run), and the wheel is installed with ``pip --python ... --no-deps``.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

# Measured 747 s on the shared 2-core machine at load ~15 (wheel build and venv 100 s, the
# reduced simulate from a fresh process 350 s, the quick demo 240 s): slow.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pyproject.toml", "README.md", "src", "configs", "inference", "data")


def _run(argv, cwd, env, timeout=600):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, environment, work folder) with the wheel installed non-editable."""
    tmp = tmp_path_factory.mktemp("install")
    # build from a copy of the shipped files, so the build leaves nothing in the repository
    source = tmp / "source"
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = os.environ | {"OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # the build back-end of this environment when it has one (no index needed), else pip's own
    isolation = ["--no-build-isolation"] if _has("setuptools") and _has("wheel") else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(tmp / "dist"),
          str(source)], tmp, env)
    (wheel,) = (tmp / "dist").glob("crsky-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "crsky/resources/configs/reduced.toml" in names
    assert "crsky/resources/inference/milagro_beam.toml" in names

    target = tmp / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   tmp, env).stdout.strip()
    Path(purelib, "_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", str(wheel)], tmp, env)
    work = tmp / "work"
    work.mkdir()
    return python, env, work


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_installed_package_is_the_wheel(installed):
    python, env, work = installed
    code = "import crsky, crsky.io.run; print(crsky.__file__); print(crsky.io.run.__file__)"
    files = _run([str(python), "-c", code], work, env).stdout.split()
    venv_root = python.parent.parent.resolve()
    for file in files:
        assert Path(file).resolve().is_relative_to(venv_root), file
    assert not Path(files[0]).resolve().is_relative_to(ROOT / "src")


def test_built_in_names_work_from_any_folder(installed):
    python, env, work = installed
    crsky = [str(python.parent / "crsky")]
    done = _run(crsky + ["simulate", "--config", "reduced", "--realisations", "1",
                         "--t-omega-max", "5", "--n-times", "3", "--out", "run.h5", "--json",
                         "--no-progress"], work, env)
    summary = json.loads(done.stdout)
    assert summary["realisations"] == 1 and summary["n_trajectories"] == 768  # nside 8
    assert (work / "run.h5").is_file()
    done = _run(crsky + ["infer", "milagro_beam", "--help"], work, env)
    assert "usage: crsky infer" in done.stdout


def test_quick_demo_writes_its_report(installed):
    python, env, work = installed
    _run([str(python.parent / "crsky"), "demo", "--quick", "--out", "report"], work, env)
    report = (work / "report" / "report.md").read_text()
    for name in ("fig2_spectrum_vs_time.png", "sky_map.png", "beam_eigenfunction.png"):
        assert (work / "report" / name).read_bytes()[:4] == b"\x89PNG"
        assert name in report
    summary = json.loads((work / "report" / "summary.json").read_text())
    assert any(key.startswith("BGK exponent p") for key in summary)
