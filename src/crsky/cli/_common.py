"""Shared command-line plumbing: error reporting, JSON output, TOML configs."""

import json
import sys

from crsky.io.text import load_toml, to_builtin, toml_key_lines

__all__ = ["dispatch", "load_toml", "print_json", "toml_key_lines"]


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


def print_json(summary: dict) -> None:
    """Print ``summary`` (numpy/JAX values allowed) as JSON on stdout."""
    print(json.dumps(to_builtin(summary), indent=2, allow_nan=True))
