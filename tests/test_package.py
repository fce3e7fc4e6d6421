"""The top-level ``crsky`` namespace: every public name resolves to the object of its module,
``import crsky`` loads no heavy dependency (JAX, healpy, NumPyro are imported on first use), and
the package docstring names every module of every tier."""

import subprocess
import sys
from pathlib import Path

import pytest

import crsky

SRC = Path(crsky.__file__).parent


@pytest.mark.parametrize("name", crsky.__all__)
def test_public_names_resolve_to_their_module_objects(name):
    import importlib

    module, attribute = crsky._EXPORTS[name]
    expected = importlib.import_module(module)
    if attribute is not None:
        expected = getattr(expected, attribute)
    assert getattr(crsky, name) is expected
    assert name in dir(crsky)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        crsky.no_such_name  # noqa: B018


def test_import_is_light():
    """Reference: ``sys.modules`` of a fresh interpreter after ``import crsky``."""
    code = ("import sys, crsky; heavy = [m for m in ('jax', 'healpy', 'numpyro', 'h5py', "
            "'matplotlib', 'diffrax') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_docstring_lists_every_module():
    doc = crsky.__doc__
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if len(parts) == 2 and parts[0] != "cli" and not parts[1].startswith("_"):
            assert f"``{parts[1]}``" in doc, parts  # "- ``turbulence``: ..." under its tier
        if len(parts) == 2 and parts[1] == "__init__":
            assert f"``crsky.{parts[0]}``" in doc, parts
