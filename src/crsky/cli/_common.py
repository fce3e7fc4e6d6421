"""Shared command-line plumbing: error reporting, JSON output, TOML configs."""

import json
import sys
import tomllib
from pathlib import Path

import numpy as np


def dispatch(args) -> int:
    """Run ``args.func(args)``; a ``ValueError`` becomes one line on stderr and exit code 2.

    The command line is an edge of the package, so it (not the library) turns on float64.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        code = args.func(args)
    except ValueError as exc:
        message = " ".join(str(exc).split())
        print(f"crsky {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


def _to_builtin(obj):
    if isinstance(obj, dict):
        return {str(k): _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_builtin(v) for v in obj]
    if isinstance(obj, np.generic | np.ndarray) or type(obj).__module__.startswith("jax"):
        arr = np.asarray(obj)
        return arr.tolist() if arr.ndim else arr.item()
    return obj


def print_json(summary: dict) -> None:
    """Print ``summary`` (numpy/JAX values allowed) as JSON on stdout."""
    print(json.dumps(_to_builtin(summary), indent=2, allow_nan=True))


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
