"""Command line: ``crsky <command> ...``; one module per command.

Every command validates its input before computing; a bad value prints one line naming the
parameter and exits with code 2.
"""

import argparse
import importlib
import os

from crsky import __version__

# Modules under crsky.cli, each exposing ``register(subparsers)``.
COMMANDS = ("simulate", "plot", "cltable", "infer", "mock", "emulator", "eigen", "bgk", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The ``crsky`` argument parser with all sub-commands registered."""
    parser = argparse.ArgumentParser(
        prog="crsky", description="Model the cosmic-ray sky and infer the turbulence behind it."
    )
    parser.add_argument("--version", action="version", version=f"crsky {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"crsky.cli.{name}").register(sub)
    return parser


def use_all_cpu_cores() -> None:
    """Expose each CPU core as a JAX device (before JAX starts), so ensembles and NumPyro chains
    use every core; a user's own ``--xla_force_host_platform_device_count`` wins. GPUs are
    unaffected."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
        os.environ["XLA_FLAGS"] = f"{flags} {count}".strip()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crsky`` script; returns the process exit code."""
    from crsky.cli._common import dispatch

    use_all_cpu_cores()
    args = build_parser().parse_args(argv)
    return dispatch(args)
