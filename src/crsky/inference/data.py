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

import functools
import math
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from crsky import _validate
from crsky.physics import bgk, observatory

CL_COLUMNS = ("ell", "cl", "error", "experiment", "f_sky", "noise")
CL_OPTIONAL_COLUMNS = ("transfer",)
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
    """An anisotropy experiment (``data/experiments.toml``; every number has its source line).

    ``f_sky`` (sky fraction as published or estimated), ``noise`` (shot-noise level ``N`` of the
    f_sky-corrected ``C_l``) and ``ell_max`` (largest usable multipole) as in the
    relative-diffusion paper; NaN / ``None`` where no source gives them. The observation
    geometry: ``dec_min_deg``, ``dec_max_deg`` (field of view, deg), ``site_latitude_deg``,
    relative ``exposure`` in declination (``"flat"``), ``median_energy_tev`` (TeV), ``events``.
    ``source`` summarises the provenance; ``sources`` has one line per quantity.
    """

    name: str
    f_sky: float
    noise: float
    ell_max: int | None
    source: str
    dec_min_deg: float = -90.0
    dec_max_deg: float = 90.0
    site_latitude_deg: float = math.nan
    exposure: str = "flat"
    median_energy_tev: float = math.nan
    events: float = math.nan
    sources: dict = field(default_factory=dict)

    def field_of_view(self, nside: int) -> np.ndarray:
        """Boolean HEALPix mask of the declination band at ``nside``."""
        return observatory.field_of_view(nside, self.dec_min_deg, self.dec_max_deg)


SPECTRUM_KINDS = ("full_sky", "pseudo")
"""What a C_l table holds (its ``spectrum`` header line; ``full_sky`` when absent): full-sky
``C_l`` (an ideal observer, or a spectrum already corrected for the sky cut), or an experiment's
pseudo-``C_l`` of its masked, ring-filtered map (:mod:`crsky.physics.observatory`)."""


@dataclass(frozen=True)
class PseudoClForward:
    """An experiment's observation operator for the expected pseudo-``C_l``.

    ``kernels``: ``K^m_{lL}`` (m, lmax + 1, lmax_sky + 1) of
    :func:`crsky.physics.observatory.coupling_kernels` for the field of view at ``nside``;
    ``f_sky``: the mask's pixel fraction (``Ñ / f_sky`` is the white-noise ``v Ω_pix``).
    Build with :func:`pseudo_cl_forward` (cached).
    """

    name: str
    nside: int
    lmax: int
    lmax_sky: int
    dec_min_deg: float
    dec_max_deg: float
    f_sky: float
    kernels: np.ndarray = field(repr=False)

    @property
    def mixing(self) -> np.ndarray:
        """Mixing matrix ``M_{lL}``, ``⟨C̃_l⟩ = Σ_L M_{lL} C_L`` (no noise)."""
        return np.asarray(observatory.mixing_matrix(self.kernels))


@functools.lru_cache(maxsize=32)
def _kernels(nside: int, dec_min: float, dec_max: float, lmax: int, lmax_sky: int):
    mask = observatory.field_of_view(nside, dec_min, dec_max)
    kernels = observatory.coupling_kernels(nside, mask, lmax, lmax_sky)
    kernels.setflags(write=False)
    return kernels, float(mask.mean())


def pseudo_cl_forward(experiment: Experiment, nside: int, lmax: int,
                      lmax_sky: int | None = None) -> PseudoClForward:
    """The observation operator of ``experiment`` at ``nside`` for ``l <= lmax``, coupling sky
    multipoles ``L <= lmax_sky`` (default ``min(3 nside - 1, 2 lmax + 16)``). Computed once per
    (field of view, nside, lmax, lmax_sky) and cached in memory.

    ``ValueError`` for a field of view without pixels at ``nside`` or an ``l`` range the mask
    does not support (``lmax`` or ``lmax_sky`` beyond ``3 nside - 1``).
    """
    _validate.power_of_two("nside", nside)
    _validate.positive_int("lmax", lmax)
    lmax_sky = min(3 * nside - 1, 2 * lmax + 16) if lmax_sky is None else lmax_sky
    observatory.check_ell_range(lmax, lmax_sky, nside)
    observatory.check_declination_range(experiment.dec_min_deg, experiment.dec_max_deg)
    kernels, f_sky = _kernels(nside, float(experiment.dec_min_deg),
                              float(experiment.dec_max_deg), lmax, lmax_sky)
    if f_sky == 0:
        raise ValueError(f"experiment {experiment.name!r}: no pixel of nside {nside} lies in its "
                         "declination band")
    return PseudoClForward(experiment.name, nside, lmax, lmax_sky, experiment.dec_min_deg,
                           experiment.dec_max_deg, f_sky, kernels)


def find_experiment(experiments: dict, name: str) -> Experiment:
    """``experiments[name]`` with the name matched case-insensitively (``"icecube"``);
    ``ValueError`` naming the known experiments otherwise."""
    found = {k.casefold(): v for k, v in experiments.items()}.get(str(name).casefold())
    if found is None:
        raise ValueError(f"experiment must be one of {', '.join(experiments)}, got {name!r}")
    return found


# --------------------------------------------------------------------------- C_l tables


@dataclass(frozen=True)
class ClTable:
    """A validated C_l table: 1-d numpy arrays of equal length, one entry per row.

    ``noise`` is NaN where the file left it empty (unknown). ``meta`` holds the header lines.
    ``transfer`` (pseudo-``C_l`` tables only; ``None``: 1 everywhere) is the optional column of
    a forward-simulated transfer: the ratio of the mean pseudo-``C_l`` of simulated skies to the
    isotropic mixing matrix's prediction for them, by which the model's pseudo-``C_l`` are
    multiplied (:func:`crsky.pipelines.tabulate.observed_cl_table`).
    """

    ell: np.ndarray
    cl: np.ndarray
    error: np.ndarray
    experiment: np.ndarray
    f_sky: np.ndarray
    noise: np.ndarray
    meta: dict = field(default_factory=dict)
    transfer: np.ndarray | None = None

    @property
    def experiments(self) -> tuple[str, ...]:
        """Experiment names in order of first appearance."""
        return tuple(dict.fromkeys(self.experiment.tolist()))

    @property
    def kind(self) -> str:
        """:data:`SPECTRUM_KINDS` entry of the ``spectrum`` header line (``full_sky`` if none)."""
        return self.meta.get("spectrum", "full_sky")








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
    _validate.non_negative_int("seed", seed)
    if not experiments:
        raise ValueError("experiments must hold at least one experiment, got none")
    rows = sum(max(0, exp.ell_max - ell_min + 1) for exp in experiments)
    # ~12 float64 columns and temporaries per row
    _validate.fits_in_memory(f"ell_max={max(exp.ell_max for exp in experiments)}", 100 * rows,
                             "the mock table's rows")
    rng = np.random.default_rng(seed)
    cols = {c: [] for c in CL_COLUMNS}
    for exp in experiments:
        unknown = [k for k in ("f_sky", "noise") if math.isnan(getattr(exp, k))]
        if unknown or exp.ell_max is None:
            raise ValueError(
                f"experiment {exp.name}: a mock needs f_sky, noise and ell_max, and no source "
                f"gives {', '.join(unknown + (['ell_max'] if exp.ell_max is None else []))}"
            )
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
    for name in ("cl", "error"):
        if not all(np.all(np.isfinite(v)) for v in cols[name]):
            raise ValueError(f"q1={q1!r}, p={p!r}: the mock {name} overflows (not finite); "
                             "choose a smaller q1")
    header = {"mock": "true", "truth": f"p={p!r}, q1={q1!r}", "seed": str(seed)}
    return ClTable(**{c: np.concatenate(v) for c, v in cols.items()}, meta=header | (meta or {}))




def pseudo_noise_level(f_sky: float, events: float) -> float:
    """Flat pseudo-``C_l`` level ``Ñ = 4π f_sky² / N_ev`` of Poisson noise in a field of view of
    sky fraction ``f_sky`` with ``events`` counts and flat exposure (per-pixel variance
    ``v = N_pix f_sky / N_ev``, ``Ñ = v Ω_pix f_sky``; the masked map's spectrum, not divided by
    ``f_sky``: Mertsch & Ahlers' ``N ≈ 4π f_sky / N_CR`` times ``f_sky``)."""
    _validate.open_interval("f_sky", f_sky, 0.0, 1.0 + 1e-12)
    _validate.positive("events", events)
    return 4 * np.pi * f_sky**2 / events


def mock_pseudo_cl_table(p: float, q1: float, experiments: list[Experiment], seed: int,
                         nside: int = 64, lmax: int | None = None, ell_min: int = 1,
                         events: dict | None = None, meta=None) -> ClTable:
    """A **mock** table of pseudo-``C_l`` from one Gaussian sky of the BGK closure, observed
    by every experiment (:func:`crsky.physics.observatory.observe_map`: field of view, Poisson
    counts, data-driven reference map; :func:`~crsky.physics.observatory.pseudo_cl`).

    The sky (equatorial, HEALPix ``nside``) has ``C_L = bgk.cl(p, L, q1)`` for
    ``L = 1 .. lmax_sky = min(3 nside - 1, 2 lmax + 16)`` (rel.-diffusion paper eq. 4.7), drawn
    with ``healpy.synfast``. Counts: ``events[name]``, else the experiment's ``events``; the
    ``noise`` column is :func:`pseudo_noise_level` and ``cl`` the pseudo-``C_l`` minus it;
    ``error`` the Gaussian standard deviation of :func:`crsky.physics.observatory.
    pseudo_cl_moments` at the truth. ``lmax`` defaults to each experiment's ``ell_max`` (all
    rows then run to it). The header says ``spectrum: pseudo``, ``mock: true``, the truth,
    seed, nside and lmax_sky.
    """
    _validate.open_interval("p", p, 0.0, 1.0)
    _validate.positive("q1", q1)
    _validate.positive_int("ell_min", ell_min)
    _validate.power_of_two("nside", nside)
    if not experiments:
        raise ValueError("experiments must name at least one experiment")
    events = dict(events or {})
    ell_max = {}
    for exp in experiments:
        n = events.get(exp.name, exp.events)
        if not n == n:
            raise ValueError(f"events: no source gives the event count of {exp.name}; pass one")
        _validate.positive(f"events of {exp.name}", n)
        events[exp.name] = float(n)
        top = lmax if lmax is not None else exp.ell_max
        if top is None:
            raise ValueError(f"lmax: no source gives ell_max of {exp.name}; pass lmax")
        ell_max[exp.name] = top
        if top < ell_min:
            raise ValueError(f"experiment {exp.name}: lmax={top} < ell_min={ell_min}")
    top = max(ell_max.values())
    lmax_sky = min(3 * nside - 1, 2 * top + 16)
    observatory.check_ell_range(top, lmax_sky, nside)
    rng = np.random.default_rng(seed)
    sky_cl = np.concatenate([[0.0], np.asarray(bgk.cl(p, jnp.arange(1, lmax_sky + 1), q1))])
    sky = observatory.gaussian_sky(sky_cl, nside, rng)
    cols = {c: [] for c in CL_COLUMNS}
    for exp in experiments:
        forward = pseudo_cl_forward(exp, nside, top, lmax_sky)
        mask = exp.field_of_view(nside)
        observed = observatory.observe_map(sky, mask, events=events[exp.name], rng=rng)
        noise = pseudo_noise_level(forward.f_sky, events[exp.name])
        ell = np.arange(ell_min, ell_max[exp.name] + 1)
        cl = np.asarray(observatory.pseudo_cl(observed, top))[ell]
        _, cov = observatory.pseudo_cl_moments(forward.kernels[:, ell], ell, sky_cl,
                                               noise / forward.f_sky)
        cols["ell"].append(ell)
        cols["cl"].append(cl - noise)
        cols["error"].append(np.sqrt(np.diag(np.asarray(cov))))
        cols["experiment"].append(np.full(ell.size, exp.name))
        cols["f_sky"].append(np.full(ell.size, forward.f_sky))
        cols["noise"].append(np.full(ell.size, noise))
    header = {
        "spectrum": "pseudo", "mock": "true", "truth": f"p={p!r}, q1={q1!r}", "seed": str(seed),
        "nside": str(nside), "lmax_sky": str(lmax_sky),
        "events": ", ".join(f"{k}={v!r}" for k, v in events.items()),
    }
    return ClTable(**{c: np.concatenate(v) for c, v in cols.items()}, meta=header | (meta or {}))
