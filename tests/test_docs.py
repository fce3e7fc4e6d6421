"""The API documentation site builds without warnings (``mkdocs build --strict``).

Reference: mkdocs' strict mode turns every warning (broken link, page missing from the nav,
docstring the mkdocstrings handler cannot parse, module that fails to import) into an error, so
a clean build means every ``::: crsky.<module>`` page in ``docs/api`` renders.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers.python") is None,
    reason="mkdocs and mkdocstrings-python are not installed (pip install -e '.[test]')",
)
def test_mkdocs_build_strict(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        # not -q: mkdocs only counts the warnings it logs, so a quiet build passes strict mode
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr
    assert (tmp_path / "site" / "api" / "physics" / "turbulence" / "index.html").is_file()


def test_every_public_module_has_an_api_page():
    """Each public module of ``src/crsky`` outside the command line (``crsky.<tier>.<module>``,
    and a package whose ``__init__`` defines functions) is documented by a ``::: crsky.<name>``
    block."""
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "api").rglob("*.md"))
    src = ROOT / "src" / "crsky"
    modules = sorted(
        ".".join(("crsky", *p.relative_to(src).with_suffix("").parts)).removesuffix(".__init__")
        for p in src.rglob("*.py")
        if "cli" not in p.relative_to(src).parts
        and (not p.stem.startswith("_") or p.stem == "__init__" and "\ndef " in p.read_text())
    )
    missing = [m for m in modules if f"::: {m}\n" not in pages]
    assert not missing, f"modules without an API page in docs/api: {missing}"


def test_every_cli_command_has_an_api_entry():
    """Each ``crsky.cli.<command>`` module (``crsky.cli.COMMANDS``) is in ``docs/api/cli.md``."""
    cli = (ROOT / "docs" / "api" / "cli.md").read_text()
    commands = sorted(
        p.stem for p in (ROOT / "src" / "crsky" / "cli").glob("*.py") if not p.stem.startswith("_")
    )
    missing = [c for c in commands if f"::: crsky.cli.{c}\n" not in cli]
    assert not missing, f"CLI modules without an entry in docs/api/cli.md: {missing}"


def test_api_pages_follow_the_nav():
    """Every page in ``docs/api`` is in the mkdocs navigation (strict mode only warns about
    pages left out when ``validation.omitted_files`` says so; this holds without it)."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(ROOT / "docs" / "api").as_posix()
                   for p in (ROOT / "docs" / "api").rglob("*.md"))
    missing = [p for p in pages if f"api/{p}" not in nav]
    assert not missing, f"docs/api pages missing from the mkdocs nav: {missing}"
