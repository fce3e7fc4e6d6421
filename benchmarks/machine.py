"""One line describing the machine a benchmark ran on (for ``RESULTS.md``)."""

import os
import platform
import subprocess


def describe() -> str:
    """The accelerator's kind, or the CPU model and core count (``lscpu``)."""
    import jax

    if jax.default_backend() != "cpu":
        return f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"
