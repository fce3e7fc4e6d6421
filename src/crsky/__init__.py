"""crsky: a differentiable JAX framework for modelling the cosmic-ray sky.

One import gives the names an analysis needs; each is loaded on first use, so ``import crsky``
itself imports neither JAX nor healpy::

    import crsky
    ens = crsky.simulate(crsky.SimulationConfig.load("reduced").replace(realisations=2))
    print(ens.statistics("parallel").cl_mean[-1])      # <C_l> at the last time

Public names (module in brackets):

- field: ``TurbulenceSpectrum``, ``Modes``, ``sample_modes``, ``magnetic_field``
  [physics.turbulence]
- trajectories: ``backtrack``, ``healpix_directions``, ``Trajectories`` [physics.tracing];
  ``DiffusionTensor`` [physics.diffusion]
- maps and spectra: ``relative_intensity`` [physics.sky]; ``power_spectrum``, ``map2alm``
  [physics.spectra]; ``SpectrumStatistics`` [physics.anisotropy]
- ensembles: ``SimulationConfig``, ``Ensemble`` [io.run]; ``simulate``, ``run_ensemble``
  [pipelines.ensemble]; ``load_run`` (:func:`crsky.io.runfile.load`)
- analytic models: the modules ``bgk`` (``bgk.cl``, ``bgk.cl_shape``), ``pitch_angle``
  (``pitch_angle.solve``) and ``beam`` (``beam.observables``, ``beam.predict``,
  ``beam.source_distance``) [physics]
- observatories: the module ``observatory`` (``simulation_frame``, ``observe_map``,
  ``pseudo_cl``, ``mixing_matrix``) [physics]
- the inverse problem: the module ``inverse`` (``make_problem``, ``fit``, ``fisher_matrix``)
  [physics]
- inference: ``models`` (the NumPyro models) [inference.models]; ``run_nuts``,
  ``SamplerConfig`` [inference.sampling]; ``fit_laplace`` [inference.fitting];
  ``load_cl_table`` [io.tables]
- built-in files: ``resources`` (configurations, inference run files, data tables)

The modules, tier by tier (a tier imports only from the tiers before it):

``crsky.physics``: pure, differentiable physics

- ``turbulence``: synthetic Kolmogorov turbulence, a regular field plus random plane waves
- ``tracing``: Lorentz-force back-tracking with diffrax (Boris or adaptive Tsit5)
- ``diffusion``: running diffusion tensor K_ij(T) from back-tracked ensembles
- ``sky``: relative-intensity maps of the Liouville mapping and their basis-map summaries
- ``spectra``: HEALPix spherical-harmonic transforms and angular power spectra (JAX, healpy)
- ``anisotropy``: ensemble statistics of C_ℓ versus back-tracking time (noise, sum rules)
- ``pathwise``: C_ℓ of one realisation differentiable in σ and r_L
- ``bgk``: steady-state C_ℓ of the BGK-like closure
- ``pitch_angle``: pitch-angle eigenproblem of a CR beam (finite elements)
- ``beam``: beam observables, unit conversions and the beam paper's further claims (the knee,
  energy dependence, source distance, sustainability)
- ``observatory``: the sky as an experiment sees it: frames, field of view, reference-map
  filter, Poisson counts, pseudo-C_ℓ and its mixing matrix
- ``inverse``: the turbulent field inferred from an arrival-direction map (Fourier
  coefficients, Fisher information, MAP and Laplace fits)

``crsky.inference``: data, models, posteriors

- ``data``: containers of C_ℓ tables, experiments and beam observations; mock tables
- ``emulator``: interpolating emulator of simulated spectra in σ
- ``models``: NumPyro models of the beam and of C_ℓ spectra, with their priors
- ``sampling``: NUTS runs and convergence diagnostics
- ``fitting``: MAP and Laplace fits

``crsky.io``: files

- ``run``: the configuration of an ensemble and the ensemble itself
- ``budget``: memory a run needs, estimated before anything is allocated
- ``runfile``: HDF5 run files of ensembles (write, resume, load, merge)
- ``tables``: CSV/TOML tables of data, experiments and emulators
- ``text``: TOML configurations, CSV tables, JSON-ready values
- ``fits``: HEALPix FITS maps
- ``posterior``: posterior files (NetCDF and JSON summaries)

``crsky.pipelines``: drivers

- ``ensemble``: ensembles of field realisations, in memory or streamed to a run file
- ``sharding``: trajectories over devices and realisations over hosts
- ``tabulate``: C_ℓ and emulator tables from ensembles
- ``inference``: inference run files assembled into models, data and sampler settings

``crsky.plotting``: figures (spectra, sky maps, emulator, beam, posterior, inverse problem)

``crsky.cli``: the ``crsky`` command, one module per subcommand

``crsky.resources``: built-in configurations, inference run files and data tables

Units throughout the simulation side (relative-diffusion paper, Ahlers & Mertsch, section 3):
lengths in the turbulence correlation length ``Lc``, magnetic field in the regular field ``B0``,
time in ``Lc / c``; the Larmor radius ``r_L = p c / (e B0)`` is given in ``Lc`` and the
gyro-frequency is ``Omega = c / r_L``.

crsky never changes global JAX settings at import. Computations that need float64 (most
validation work) require ``jax.config.update("jax_enable_x64", True)`` by the caller; the command
line enables it.
"""

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_EXPORTS = {
    "TurbulenceSpectrum": ("crsky.physics.turbulence", "TurbulenceSpectrum"),
    "Modes": ("crsky.physics.turbulence", "Modes"),
    "sample_modes": ("crsky.physics.turbulence", "sample_modes"),
    "magnetic_field": ("crsky.physics.turbulence", "magnetic_field"),
    "backtrack": ("crsky.physics.tracing", "backtrack"),
    "healpix_directions": ("crsky.physics.tracing", "healpix_directions"),
    "Trajectories": ("crsky.physics.tracing", "Trajectories"),
    "DiffusionTensor": ("crsky.physics.diffusion", "DiffusionTensor"),
    "relative_intensity": ("crsky.physics.sky", "relative_intensity"),
    "power_spectrum": ("crsky.physics.spectra", "power_spectrum"),
    "map2alm": ("crsky.physics.spectra", "map2alm"),
    "SpectrumStatistics": ("crsky.physics.anisotropy", "SpectrumStatistics"),
    "bgk": ("crsky.physics.bgk", None),
    "pitch_angle": ("crsky.physics.pitch_angle", None),
    "beam": ("crsky.physics.beam", None),
    "observatory": ("crsky.physics.observatory", None),
    "inverse": ("crsky.physics.inverse", None),
    "models": ("crsky.inference.models", None),
    "run_nuts": ("crsky.inference.sampling", "run_nuts"),
    "SamplerConfig": ("crsky.inference.sampling", "SamplerConfig"),
    "fit_laplace": ("crsky.inference.fitting", "fit_laplace"),
    "SimulationConfig": ("crsky.io.run", "SimulationConfig"),
    "Ensemble": ("crsky.io.run", "Ensemble"),
    "load_run": ("crsky.io.runfile", "load"),
    "load_cl_table": ("crsky.io.tables", "load_cl_table"),
    "simulate": ("crsky.pipelines.ensemble", "simulate"),
    "run_ensemble": ("crsky.pipelines.ensemble", "run_ensemble"),
    "resources": ("crsky.resources", None),
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str):
    """Load a public name on first use (PEP 562) and keep it."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crsky' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
