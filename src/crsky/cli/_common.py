"""Shared command-line plumbing: error reporting, output checks, JSON output, TOML configs.

Exit codes: 0 success, 1 diagnostics failed (``crsky infer``), 2 bad input (a bad value, file
or path; one line on stderr naming it), 130 interrupted (Ctrl-C; one line saying what is stored
and how to continue). Anything else is a bug and keeps its traceback.
"""

import json
import shlex
import sys
import tempfile
from pathlib import Path

from crsky.io.text import load_toml, to_builtin, toml_key_lines

__all__ = [
    "check_finite", "check_output", "command_line", "dispatch", "interrupted_run", "load_toml",
    "print_json", "toml_key_lines",
]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + text if text else ''}; choose smaller sizes"
    return text or type(exc).__name__


def _resource_exhausted(exc: BaseException) -> bool:
    """An accelerator or XLA allocation failure (jaxlib's XlaRuntimeError RESOURCE_EXHAUSTED)."""
    return type(exc).__name__ == "XlaRuntimeError" and "RESOURCE_EXHAUSTED" in str(exc)


def dispatch(args) -> int:
    """Run ``args.func(args)`` and turn its failures into exit codes.

    - ``ValueError`` (a bad value), ``OSError`` (a missing, unreadable or unwritable file, a
      busy run file) and running out of memory: one line on stderr, exit code 2;
    - ``KeyboardInterrupt`` (Ctrl-C): one line, with what the command's ``interrupted(args)``
      says (what is stored, how to continue), exit code 130;
    - anything else is a bug: it propagates with its traceback.

    The command line is an edge of the package, so it (not the library) turns on float64.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    prefix = f"crsky {args.command}"
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None)
        text = "interrupted"
        if note is not None:
            text += f"; {note(args)}"
        print(f"{prefix}: {text}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, MemoryError) as exc:
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as exc:
        if not _resource_exhausted(exc):
            raise
        print(f"{prefix}: error: the device ran out of memory; choose smaller sizes "
              f"({_one_line(exc)[:300]})", file=sys.stderr)
        return EXIT_BAD_INPUT
    return int(code or 0)


def _writable_folder(name: str, path: Path, folder: Path) -> None:
    if not folder.exists():
        raise FileNotFoundError(f"{name} {str(path)!r}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{name} {str(path)!r}: {str(folder)!r} is a file, not a folder")
    try:  # a real probe: permissions, read-only file systems and root alike
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise PermissionError(
            f"{name} {str(path)!r}: cannot write in folder {str(folder)!r}"
        ) from None


def check_output(name: str, path: str | Path, *, overwrite: bool = False,
                 folder: bool = False, exist_ok: bool = False) -> Path:
    """Check an output path before any work; return it as a ``Path``.

    Its parent must be an existing, writable folder. A file output (``folder=False``) must not
    be a folder, and must not exist unless ``overwrite`` (or ``exist_ok``: the command
    continues it, e.g. ``--resume``). A folder output (``folder=True``) must not be a file;
    it may exist (the command then checks the files it would replace). Raises an ``OSError``
    subclass naming ``name`` (the option) and the path.
    """
    path = Path(path)
    _writable_folder(name, path, path.parent if str(path.parent) else Path("."))
    if folder:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{name} {str(path)!r} is a file, not a folder")
        if path.is_dir():
            _writable_folder(name, path, path)
        return path
    if path.is_dir():
        raise IsADirectoryError(f"{name} {str(path)!r} is a folder, not a file")
    if path.exists() and not (overwrite or exist_ok):
        raise FileExistsError(f"{name} {str(path)!r} exists; pass --overwrite to replace it")
    return path


def check_finite(summary: dict, what: str) -> None:
    """Refuse to output a non-finite number: ``ValueError`` naming the first such key and
    ``what`` (the inputs that produced it)."""
    import numpy as np

    for key, value in summary.items():
        try:
            values = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{key} is not finite for {what}: outside the validated domain of the method"
            )


def command_line(argv: list[str], drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> str:
    """``crsky ARGV`` as a shell command, without the flags ``drop``, with ``add`` appended."""
    kept = [a for a in argv if a not in drop]
    kept += [a for a in add if a not in kept]
    return "crsky " + " ".join(shlex.quote(a) for a in kept)


def interrupted_run(out: str | Path, argv: list[str]) -> str:
    """What is stored in the run file ``out`` and the command that resumes it."""
    from crsky.io import runfile

    try:
        stored = len(runfile.completed(Path(out)))
    except (OSError, ValueError):
        stored = 0
    again = command_line(argv, drop=("--overwrite",), add=("--resume",))
    return f"{stored} realisations are safely stored in {out}; continue with: {again}"


def print_json(summary: dict) -> None:
    """Print ``summary`` (numpy/JAX values allowed) as JSON on stdout."""
    print(json.dumps(to_builtin(summary), indent=2, allow_nan=True))
