"""crsky: a differentiable JAX framework for modelling the cosmic-ray sky.

The layout follows the data:

- :mod:`crsky.physics.turbulence`  synthetic Kolmogorov turbulence (sum of random plane waves)
- :mod:`crsky.physics.tracing`     Lorentz-force back-tracking with diffrax (adaptive Tsit5 or
  Boris)
- :mod:`crsky.physics.diffusion`   running diffusion tensor K_ij(T) from an ensemble
- :mod:`crsky.pipelines.ensemble`    streamed, resumable ensembles of field realisations (run files)

Units throughout the simulation side (relative-diffusion paper, section 3): lengths in the
turbulence correlation length ``Lc``, magnetic field in the regular field ``B0``, time in
``Lc / c``; the Larmor radius ``r_L = p c / (e B0)`` is given in ``Lc`` and the gyro-frequency is
``Omega = c / r_L``.

crsky never changes global JAX settings at import. Computations that need float64 (most
validation work) require ``jax.config.update("jax_enable_x64", True)`` by the caller; the command
line enables it.
"""

__version__ = "0.1.0"
