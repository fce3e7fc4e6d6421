"""Command line: ``crsky <command> ...``; one module per command.

Every command validates its input before computing; a bad value, file or path prints one line
naming it and exits with code 2; Ctrl-C prints one line (what is stored, how to continue) and
exits with code 130 (``docs/promises.md``).
"""

import argparse
import importlib
import os
import sys

from crsky import __version__

# Modules under crsky.cli, each exposing ``register(subparsers)``.
COMMANDS = (
    "simulate", "plot", "cltable", "observe", "infer", "mock", "emulator", "eigen", "beam", "bgk",
    "demo", "invert",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` ends each option with ``(default: ...)``, except where there is no default
    (``None``, a switch that is off) or the help text states it already."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _UsageError(Exception):
    """A command line that argparse cannot read (unknown option, bad choice, missing value)."""


class _Parser(argparse.ArgumentParser):
    """Every (sub-)command parser formats its help with :class:`HelpFormatter` and reports a
    command line it cannot read in one line, as every other bad input (exit code 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The ``crsky`` argument parser with all sub-commands registered."""
    parser = _Parser(
        prog="crsky", description="Model the cosmic-ray sky and infer the turbulence behind it."
    )
    parser.add_argument("--version", action="version", version=f"crsky {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"crsky.cli.{name}").register(sub)
    return parser


def configure_cpu_backend() -> None:
    """XLA:CPU settings, before JAX starts; a user's own setting of either flag wins.

    - each CPU core is a JAX device, so ensembles and NumPyro chains use every core;
    - the concurrency-optimised scheduler is off, a precaution: with it, the eigen solver's
      program deadlocked intermittently (jaxlib 0.10.2) while it still decomposed one matrix
      twice (README, "Known issue").

    GPUs are unaffected.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags += f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    if "xla_cpu_enable_concurrency_optimized_scheduler" not in flags:
        flags += " --xla_cpu_enable_concurrency_optimized_scheduler=false"
    os.environ["XLA_FLAGS"] = flags.strip()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crsky`` script; returns the process exit code."""
    from crsky.cli._common import dispatch

    configure_cpu_backend()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)
        return 2
    args.argv = argv  # for the command that resumes an interrupted run
    return dispatch(args)
