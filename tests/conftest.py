"""Test set-up: pin threads (threaded BLAS/healpy are 10-100x slower on 2 cores) and use float64.

Tests that exercise float32 request it explicitly through a ``dtype`` argument.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
