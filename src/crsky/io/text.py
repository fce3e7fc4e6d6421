"""Plain-file input/output shared by the library and the command line: TOML configs, CSV tables
with ``# key: value`` headers, and JSON-ready values."""

import csv
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


def read_table(path: str | Path, what: str) -> tuple[dict, list[str], int, list[tuple[int, list]]]:
    """Read a CSV table with optional ``# key: value`` header lines before the column names.

    Args:
        path: the file.
        what: its kind, for error messages (``"C_l table"``, ``"emulator table"``).

    Returns:
        ``(meta, columns, columns_line, rows)`` with ``rows`` a list of ``(line_number,
        cells)``; blank and ``#`` lines are skipped. ``ValueError`` names the file (and line) if
        it does not exist, has no column line or data rows, or a row has the wrong cell count.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    meta, columns, columns_line, rows = {}, None, 0, []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            key, sep, value = text.lstrip("#").partition(":")
            if sep and columns is None:
                meta[key.strip()] = value.strip()
            continue
        cells = [c.strip() for c in next(csv.reader([text]))]
        if columns is None:
            columns, columns_line = cells, number
            continue
        if len(cells) != len(columns):
            raise ValueError(
                f"{path}, line {number}: {len(cells)} cells, header has {len(columns)} columns"
            )
        rows.append((number, cells))
    if columns is None or not rows:
        raise ValueError(f"{path}: no data rows")
    return meta, columns, columns_line, rows
