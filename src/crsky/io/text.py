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


def read_text(path: str | Path, what: str) -> str:
    """The text of ``path`` (UTF-8); a missing file, a folder or a binary file raise an error
    naming ``what`` and the file (``FileNotFoundError``, ``IsADirectoryError``, ``ValueError``)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} {str(path)!r} is not a text file (byte {exc.start} is not UTF-8)"
        ) from None


def load_toml(path: str | Path) -> dict:
    """Read a TOML file; a syntax error becomes a ``ValueError`` naming file and line."""
    path = Path(path)
    text = read_text(path, "config file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = str(exc).replace("end of document", f"line {len(text.splitlines())}, the end")
        raise ValueError(f"config file {str(path)!r} is malformed: {where}") from None


def toml_key_lines(path: str | Path) -> dict[str, int]:
    """Line number of each top-level ``key = ...`` in a TOML file (for error messages)."""
    lines = {}
    for number, line in enumerate(read_text(path, "config file").splitlines(), start=1):
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
    meta, columns, columns_line, rows = {}, None, 0, []
    for number, raw in enumerate(read_text(path, what).splitlines(), start=1):
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
