"""Observed and mock data for inference: beam observables, C_l tables, experiments, mock spectra.

Everything read here is documented in ``data/README.md``; every observed number is stored with
a source line naming the paper or experiment publication it comes from.

C_l table (CSV, one row per experiment and multipole)::

    # key: value            optional header lines (mock, truth, seed, command, source, ...)
    ell,cl,error,experiment,f_sky,noise
    2,3.1e-08,4.2e-09,IceCube,0.3,2.5e-11

- ``ell``: integer multipole >= 0;
- ``cl``: noise-subtracted estimate ``C_l - N`` (rel.-diffusion paper eq. 3.1; may be negative);
- ``error``: published 1-sigma error (> 0), used only with ``error_model = "table"``;
- ``experiment``: name; ``f_sky`` in (0, 1] and ``noise`` >= 0 are the experiment's sky fraction
  and shot-noise level, the same on all its rows; an empty ``noise`` cell means "not known" and
  makes the noise a free parameter of the spectrum models.

Loaders raise ``ValueError`` naming the file, line and column of the first problem.
"""

from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from crsky import _validate
from crsky.physics import bgk

CL_COLUMNS = ("ell", "cl", "error", "experiment", "f_sky", "noise")
BEAM_OBSERVABLES = ("width_deg", "fractional_excess", "p_bmax_tev")


def cosmic_variance_sigma(cl, ell, f_sky, noise):
    """Gaussian 1-sigma error of a noise-subtracted ``C_l`` on a partial sky.

    ``sigma = sqrt(2 / ((2 l + 1) f_sky)) (C_l + N)``: the standard partial-sky cosmic variance
    plus noise (Knox 1995), with ``f_sky`` and ``N`` as in the rel.-diffusion paper's Fig. 1
    caption; docs/physics.md (R16). Broadcasts over ``cl``, ``ell``, ``f_sky``, ``noise`` (same
    units as C_l).
    """
    # Partial-sky cosmic variance plus noise (Knox 1995); docs/physics.md (R16)
    return jnp.sqrt(2.0 / ((2.0 * ell + 1.0) * f_sky)) * (cl + noise)


# --------------------------------------------------------------------------- beam observables


@dataclass(frozen=True)
class BeamObservations:
    """MILAGRO beam observables (values only; their uncertainties are assumptions of a run).

    ``width_deg``: beam angular width (deg); ``fractional_excess``: beam excess relative to the
    large-scale anisotropy; ``p_bmax_tev``: beam cut-off momentum (TeV/c);
    ``energy_tev``: (low, high) range of the beam median energy (TeV); ``sources``: source line
    per quantity.
    """

    width_deg: float
    fractional_excess: float
    p_bmax_tev: float
    energy_tev: tuple[float, float]
    sources: dict = field(default_factory=dict)




# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Experiment:
    """An anisotropy experiment: sky fraction, noise level ``N`` and the largest usable ``l``."""

    name: str
    f_sky: float
    noise: float
    ell_max: int
    source: str




# --------------------------------------------------------------------------- C_l tables


@dataclass(frozen=True)
class ClTable:
    """A validated C_l table: 1-d numpy arrays of equal length, one entry per row.

    ``noise`` is NaN where the file left it empty (unknown). ``meta`` holds the header lines.
    """

    ell: np.ndarray
    cl: np.ndarray
    error: np.ndarray
    experiment: np.ndarray
    f_sky: np.ndarray
    noise: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def experiments(self) -> tuple[str, ...]:
        """Experiment names in order of first appearance."""
        return tuple(dict.fromkeys(self.experiment.tolist()))








def mock_cl_table(
    p: float, q1: float, experiments: list[Experiment], seed: int, ell_min: int = 1, meta=None
) -> ClTable:
    """A mock C_l table drawn from the BGK closure at the experiments' sky fractions and noise.

    For each experiment, ``l = ell_min .. ell_max``: the truth ``C_l = crsky.physics.bgk.cl(p, l,
    q1)``
    (rel.-diffusion paper eq. 4.7) plus a Gaussian draw with the partial-sky cosmic-variance +
    noise error of :func:`cosmic_variance_sigma` at the truth, which is also written as ``error``.
    Gaussian draws match the likelihood of :func:`crsky.inference.models.spectrum_p_model`.
    The header records ``mock: true``, the truth and the random seed (plus ``meta``).
    """
    _validate.open_interval("p", p, 0.0, 1.0)
    _validate.positive("q1", q1)
    _validate.positive_int("ell_min", ell_min)
    rng = np.random.default_rng(seed)
    cols = {c: [] for c in CL_COLUMNS}
    for exp in experiments:
        if exp.ell_max < ell_min:
            raise ValueError(f"experiment {exp.name}: ell_max={exp.ell_max} < ell_min={ell_min}")
        ell = np.arange(ell_min, exp.ell_max + 1)
        truth = np.asarray(bgk.cl(p, jnp.asarray(ell), q1))
        sigma = np.asarray(cosmic_variance_sigma(truth, ell, exp.f_sky, exp.noise))
        cols["ell"].append(ell)
        cols["cl"].append(truth + sigma * rng.standard_normal(ell.size))
        cols["error"].append(sigma)
        cols["experiment"].append(np.full(ell.size, exp.name))
        cols["f_sky"].append(np.full(ell.size, exp.f_sky))
        cols["noise"].append(np.full(ell.size, exp.noise))
    header = {"mock": "true", "truth": f"p={p!r}, q1={q1!r}", "seed": str(seed)}
    return ClTable(**{c: np.concatenate(v) for c, v in cols.items()}, meta=header | (meta or {}))


