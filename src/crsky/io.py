"""Plain-file input/output shared by the library and the command line: TOML configs and
JSON-ready values."""

import tomllib
from pathlib import Path

import numpy as np


def to_builtin(obj):
    """``obj`` with numpy/JAX values turned into Python numbers and lists (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_builtin(v) for v in obj]
    if isinstance(obj, np.generic | np.ndarray) or type(obj).__module__.startswith("jax"):
        arr = np.asarray(obj)
        return arr.tolist() if arr.ndim else arr.item()
    return obj


def load_toml(path: str | Path) -> dict:
    """Read a TOML file; a syntax error becomes a ``ValueError`` naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = str(exc).replace("end of document", f"line {len(text.splitlines())}, the end")
        raise ValueError(f"config file {str(path)!r} is malformed: {where}") from None


def toml_key_lines(path: str | Path) -> dict[str, int]:
    """Line number of each top-level ``key = ...`` in a TOML file (for error messages)."""
    lines = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        key, sep, _ = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            lines.setdefault(key.strip().strip('"'), number)
    return lines
