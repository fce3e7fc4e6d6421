"""NumPyro models: beam scale ``l``, exponent ``p`` of ``ν_r`` and turbulence level ``σ``.

Each model is a plain NumPyro model function ``model(data, priors, ...)``; ``priors`` maps every
parameter name to a :class:`Prior`. The parameters, units, physical supports and default priors
of each model are listed by ``<model>_parameters`` and resolved against a run file's ``[priors]``
by :func:`resolve_priors`, which rejects unknown names and priors outside the support before any
sampling.

Models (names as used by ``crsky infer``):

- ``beam`` (:func:`beam_model`): MILAGRO beam width, fractional excess and cut-off momentum
  → ``l`` (beam paper eqs. 8, 13-15), forward model through the differentiable eigen solver of
  :mod:`crsky.physics.beam`, a Chebyshev table of it, or its matched-asymptotic formulas; any
  non-empty subset of the three observables may be used; prior truncated to
  ``ε = r_g/l < 0.02`` (the theory's ``ε ≪ 1``).
- ``spectrum_p`` (:func:`spectrum_p_model`): ``Ĉ_l`` of one or several experiments → ``p`` and
  amplitude ``q1 = (4π)² Q1/ν0`` of the BGK closure (rel.-diffusion paper eq. 4.7, ``ν_r = ν0
  (1 − x)^p``, ``Q1 = K_ij ∂_i n ∂_j n/(6π n²)``; ``(4π)²`` because the spectra are of
  ``δI = (4πf − n)/n``, :mod:`crsky.physics.bgk`), Gaussian likelihood with partial-sky cosmic
  variance
  plus noise (:func:`crsky.inference.data.cosmic_variance_sigma`).
- ``spectrum_sigma`` (:func:`spectrum_sigma_model`): ``Ĉ_l`` → ``σ`` (and ``r_L/Lc``) through the
  back-tracking emulator of :mod:`crsky.inference.emulator`, simulation error added in quadrature.

Default priors (all documented assumptions; a run file may replace any of them):

=================  ======  ====================================  =================================
parameter          unit    default prior                         why
=================  ======  ====================================  =================================
``l_pc``           pc      log-uniform(0.01, 100)                 scale-free over 4 decades
``b0_ugauss``      μG      log-uniform(1, 10)                     local ISM regular field
``va_over_c``      1       log-uniform(3e-5, 3e-4)                around the beam paper's 1e-4
``alpha``          1       log-uniform(3e-4, 3e-3)                around the beam paper's 1e-3
``q_c``            1       uniform(4.6, 4.7)                      beam paper: q_c = 4.6-4.7
``energy_tev``     TeV     uniform(data range, 1-2)               beam median energy (data file)
``p``              1       uniform(0.01, 0.99)                    closure needs 0 < p < 1
``q1``             C_l     log-uniform(1e-12, 1e-2)               scale-free amplitude (4π)² Q1/ν0
``noise_<exp>``    C_l     log-uniform(1e-13, 1e-7)               only if the table omits N
``sigma``          1       uniform(emulator grid)                 emulator is valid on its grid
``rl_over_lc``     1       log-uniform(emulator grid)             only if the table has an r axis
``c1``             C_l     log-uniform(1e-12, 1e-2)               ``Ĉ_1`` normalisation
=================  ======  ====================================  =================================
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from crsky import _validate
from crsky.inference.data import (
    BEAM_OBSERVABLES,
    BeamObservations,
    ClTable,
    PseudoClForward,
    cosmic_variance_sigma,
)
from crsky.inference.emulator import Emulator, evaluate
from crsky.physics import beam, bgk, observatory, pitch_angle

DISTRIBUTIONS = ("uniform", "loguniform", "normal", "lognormal")
BEAM_FORWARDS = ("eigen", "table", "asymptotic")
ERROR_MODELS = ("cosmic_variance", "table")
EIGEN_DEGREE, EIGEN_LAYERS = 5, 4
"""Resolution of the eigen solver in :func:`beam_predictions` (``crsky.physics.pitch_angle.solve``).

Against the solver's converged default (degree 15, 10 layers) the fractional excess is within
2.5e-3 relative over ε ∈ [1e-5, 0.019], δ ∈ [3e-5, 3e-4] (``tests/test_models.py``), far below
the ≥ 0.3 log-errors of the observables, at 1/7 of the cost of the default degree 9, 6 layers.
"""


@dataclass(frozen=True)
class Prior:
    """A one-dimensional prior.

    ``dist``: ``"uniform"`` / ``"loguniform"`` (``a`` = low, ``b`` = high) or ``"normal"`` /
    ``"lognormal"`` (``a`` = mean, ``b`` = standard deviation, of ``ln x`` for lognormal).
    """

    dist: str
    a: float
    b: float

    def distribution(self) -> dist.Distribution:
        """The NumPyro distribution."""
        make = {
            "uniform": dist.Uniform,
            "loguniform": dist.LogUniform,
            "normal": dist.Normal,
            "lognormal": dist.LogNormal,
        }[self.dist]
        return make(self.a, self.b)

    def sample(self, name: str):
        """``numpyro.sample(name, ...)`` from this prior."""
        return numpyro.sample(name, self.distribution())


@dataclass(frozen=True)
class Parameter:
    """A model parameter: unit, open physical support ``(lo, hi)``, default prior, meaning."""

    unit: str
    support: tuple[float, float]
    default: Prior
    doc: str


def _prior_from_config(name: str, config, support: tuple[float, float]) -> Prior:
    if not isinstance(config, Mapping):
        raise ValueError(f"prior {name!r} must be a table like {{dist = 'uniform', low = .., ..}}")
    kind = config.get("dist")
    _validate.one_of(f"prior {name!r} dist", kind, DISTRIBUTIONS)
    keys = ("low", "high") if kind in ("uniform", "loguniform") else ("mean", "sd")
    if set(config) != {"dist", *keys}:
        raise ValueError(f"prior {name!r} ({kind}) takes exactly the keys dist, {', '.join(keys)}")
    a, b = (config[k] for k in keys)
    for key, value in zip(keys, (a, b), strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"prior {name!r} {key} must be a number, got {value!r}")
        _validate.finite(f"prior {name!r} {key}", value)
    lo, hi = support
    if kind in ("uniform", "loguniform"):
        if not a < b:
            raise ValueError(f"prior {name!r}: low={a!r} must be < high={b!r}")
        if a < lo or b > hi or (kind == "loguniform" and a <= 0):
            raise ValueError(
                f"prior {name!r}: [{a!r}, {b!r}] leaves the parameter's support ({lo:g}, {hi:g})"
            )
    else:
        _validate.positive(f"prior {name!r} sd", b)
        if kind == "normal" and (lo > -math.inf or hi < math.inf):
            raise ValueError(
                f"prior {name!r}: a normal prior leaves the support ({lo:g}, {hi:g}); use uniform, "
                "loguniform or (for a positive parameter) lognormal"
            )
        if kind == "lognormal" and (lo < 0 or hi < math.inf):
            raise ValueError(f"prior {name!r}: lognormal needs the support (0, inf)")
    return Prior(kind, float(a), float(b))


def resolve_priors(parameters: Mapping[str, Parameter], config: Mapping | None) -> dict:
    """Priors for ``parameters``: the defaults, replaced by the entries of ``config``.

    ``config`` maps parameter names to tables (``{dist = "loguniform", low = .., high = ..}``).
    ``ValueError`` for an unknown name or distribution, missing/extra keys, ``low >= high``, or a
    prior reaching outside the parameter's physical support.
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(parameters))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} in priors; this model has "
            f"{', '.join(parameters)}"
        )
    return {
        name: _prior_from_config(name, config[name], par.support) if name in config else par.default
        for name, par in parameters.items()
    }


# --------------------------------------------------------------------------- beam -> l


@dataclass(frozen=True)
class BeamData:
    """Beam observables with their assumed errors: ``{name: (value, log_sigma)}``.

    ``name`` in ``width_deg`` (deg), ``fractional_excess`` (1), ``p_bmax_tev`` (TeV/c);
    ``log_sigma`` is the 1-sigma uncertainty of ``ln(value)``. ``energy_tev``: the beam median
    energy range (TeV) used as the default prior of ``energy_tev``.
    """

    observed: dict
    energy_tev: tuple[float, float]


def beam_data(observations: BeamObservations, log_sigma: Mapping[str, float]) -> BeamData:
    """Pair the observed values with the run's assumed ``log_sigma`` (one entry per observable
    used; at least one). ``ValueError`` for an unknown observable or a non-positive error."""
    unknown = sorted(set(log_sigma) - set(BEAM_OBSERVABLES))
    if unknown or not log_sigma:
        raise ValueError(
            f"beam observables must be a non-empty subset of {', '.join(BEAM_OBSERVABLES)}, got "
            f"{', '.join(map(repr, unknown or log_sigma))}"
        )
    observed = {}
    for name in BEAM_OBSERVABLES:
        if name in log_sigma:
            _validate.positive(f"{name} log_sigma", log_sigma[name])
            observed[name] = (getattr(observations, name), float(log_sigma[name]))
    return BeamData(observed=observed, energy_tev=observations.energy_tev)


def beam_parameters(data: BeamData) -> dict[str, Parameter]:
    """Parameters of :func:`beam_model` with their default priors (module docstring)."""
    inf = math.inf
    return {
        "l_pc": Parameter("pc", (0, inf), Prior("loguniform", 0.01, 100.0),
                          "longest turbulence scale that scatters the beam"),
        "b0_ugauss": Parameter("uG", (0, inf), Prior("loguniform", 1.0, 10.0),
                               "regular magnetic field B0"),
        "va_over_c": Parameter("1", (0, 1), Prior("loguniform", 3e-5, 3e-4),
                               "Alfven speed over c, delta = V_A/c"),
        "alpha": Parameter("1", (0, inf), Prior("loguniform", 3e-4, 3e-3),
                           "alpha of the beam cut-off (beam paper eq. 15)"),
        "q_c": Parameter("1", (2, inf), Prior("uniform", 4.6, 4.7),
                         "background CR index, F_C ~ p^-q_c"),
        "energy_tev": Parameter("TeV", (0, inf), Prior("uniform", *data.energy_tev),
                                "beam median energy"),
    }


def beam_predictions(
    params: Mapping, forward: str = "eigen", excess: bool = True, excess_table=None
) -> dict:
    """Predicted beam observables for a parameter dict (keys of :func:`beam_parameters`).

    Returns ``eps`` and the observables ``width_deg``, ``fractional_excess``, ``p_bmax_tev`` of
    :func:`crsky.physics.beam.predict`: width ``Δϑ = j1 √ε`` and cut-off (eq. 15) are closed
    forms; the fractional excess is, for ``forward = "eigen"``, that of the eigenfunction of
    beam paper eq. (8) with the matched ``D(μ)`` (resolution :data:`EIGEN_DEGREE`,
    :data:`EIGEN_LAYERS`); for ``"table"`` the same from the Chebyshev table ``excess_table``
    (:func:`crsky.physics.beam.tabulate_excess`, its ``max_rel_error`` measured when built); for
    ``"asymptotic"`` the matched-asymptotic ``x/(1 + x)``, ``x = λ1 b / 2`` (within 6 % of the
    eigen value for ε ≤ 0.02). With ``excess=False`` no solve or table is used (the excess is
    then the asymptotic one): for likelihoods without the excess. Differentiable in all
    parameters; ``ε`` must stay below :data:`crsky.physics.pitch_angle.EPS_MAX`.
    """
    _validate.one_of("forward", forward, BEAM_FORWARDS)
    if forward == "table" and excess and excess_table is None:
        raise ValueError("forward 'table' needs excess_table (crsky.physics.beam.tabulate_excess)")
    solve = forward == "eigen" and excess
    out = beam.predict(
        params["l_pc"], params["b0_ugauss"], params["energy_tev"], params["va_over_c"],
        params["alpha"], params["q_c"], "eigen" if solve else "asymptotic",
        degree=EIGEN_DEGREE, layers=EIGEN_LAYERS,
    )
    if forward == "table" and excess:
        out["fractional_excess"] = beam.table_fractional_excess(
            excess_table, out["eps"], params["va_over_c"])
    return out


def beam_model(
    data: BeamData, priors: Mapping[str, Prior], forward: str = "eigen", excess_table=None
):
    """NumPyro model: beam observables → ``l`` (and the nuisance parameters of the beam).

    Likelihood: ``ln(observed) ~ Normal(ln(predicted), log_sigma)`` for each observable in
    ``data`` (:func:`beam_predictions`); ``eps = r_g/l`` is recorded as a deterministic site.
    The prior is truncated to ``ε < crsky.physics.pitch_angle.EPS_MAX = 0.02`` (peak width
    ``b = j1² ε / 2 ≤ 0.15``): the beam paper's theory needs ``ε ≪ 1`` and the eigen solver is
    validated only there; the forward model is evaluated at a safe ``ε`` outside, so that no
    NaN reaches the gradient. ``excess_table``: for ``forward = "table"``
    (:func:`beam_predictions`).
    """
    params = {name: prior.sample(name) for name, prior in priors.items()}
    eps = numpyro.deterministic(
        "eps", beam.eps_from_scale(params["l_pc"], params["energy_tev"], params["b0_ugauss"])
    )
    inside = eps < pitch_angle.EPS_MAX
    safe_l = jnp.where(inside, params["l_pc"], params["l_pc"] * eps / (0.5 * pitch_angle.EPS_MAX))
    predicted = beam_predictions(params | {"l_pc": safe_l}, forward,
                                 "fractional_excess" in data.observed, excess_table)
    numpyro.factor("eps_below_eps_max", jnp.where(inside, 0.0, -jnp.inf))
    for name, (value, log_sigma) in data.observed.items():
        numpyro.sample(
            f"obs_{name}", dist.Normal(jnp.log(predicted[name]), log_sigma), obs=jnp.log(value)
        )


# --------------------------------------------------------------------------- spectra


@dataclass(frozen=True)
class SpectrumData:
    """The rows of a C_l table used by a spectrum model, as arrays of length ``n``.

    ``experiment_index`` points into ``experiments``; ``noise`` (per experiment) is NaN where
    the noise is unknown, then a free parameter ``noise_<name>``. ``transfer``: the table's
    forward-simulated transfer per row (``None``: none, 1 everywhere).
    """

    ell: np.ndarray
    cl: np.ndarray
    error: np.ndarray
    f_sky: np.ndarray
    experiment_index: np.ndarray
    experiments: tuple[str, ...]
    noise: tuple[float, ...]
    kind: str = "full_sky"
    transfer: np.ndarray | None = None

    @property
    def free_noise(self) -> tuple[str, ...]:
        """Experiments whose noise is a free parameter."""
        return tuple(e for e, n in zip(self.experiments, self.noise, strict=True) if math.isnan(n))


def spectrum_data(table: ClTable, ell_min: int, ell_max: int, experiments=None) -> SpectrumData:
    """Select rows ``ell_min <= l <= ell_max`` (and the named ``experiments``, default all).

    ``ValueError`` if ``ell_min < 1`` (the closure models ``l >= 1``), ``ell_max < ell_min``, the
    range reaches beyond the selected experiments' multipoles, ``experiments`` is not a list of
    names (a single string is refused, not read letter by letter), an experiment is not in the
    table, or a selected experiment has fewer than 2 rows in range.
    """
    _validate.positive_int("ell_min", ell_min)
    _validate.positive_int("ell_max", ell_max)
    if table.transfer is not None and table.kind != "pseudo":
        raise ValueError("table: a transfer applies to pseudo-C_l tables only")
    if ell_max < ell_min:
        raise ValueError(f"ell_max={ell_max} must be >= ell_min={ell_min}")
    if isinstance(experiments, str) or not (
        experiments is None or isinstance(experiments, list | tuple)
        and all(isinstance(e, str) for e in experiments)
    ):
        example = f" such as [{experiments!r}]" if isinstance(experiments, str) else ""
        raise ValueError(f"experiments must be a list of experiment names{example}, got "
                         f"{experiments!r}")
    if experiments is not None and not experiments:
        raise ValueError("experiments must name at least one experiment, got []")
    experiments = tuple(experiments or table.experiments)
    for name in experiments:
        if name not in table.experiments:
            raise ValueError(
                f"experiment {name!r} is not in the C_l table "
                f"(it has {', '.join(table.experiments)})"
            )
    chosen = np.isin(table.experiment, experiments)
    have_min, have_max = table.ell[chosen].min(), table.ell[chosen].max()
    if ell_min < have_min or ell_max > have_max:
        raise ValueError(
            f"the model's ell range [{ell_min}, {ell_max}] reaches beyond the data, which cover "
            f"ell {have_min}..{have_max}"
        )
    keep = chosen & (table.ell >= ell_min) & (table.ell <= ell_max)
    for name in experiments:
        rows = keep & (table.experiment == name)
        if rows.sum() < 2:
            have = table.ell[table.experiment == name]
            raise ValueError(
                f"experiment {name!r} has {rows.sum()} row(s) in the model's ell range "
                f"[{ell_min}, {ell_max}] (its table covers ell {have.min()}..{have.max()})"
            )
    index = np.asarray([experiments.index(e) for e in table.experiment[keep]], dtype=int)
    noise = tuple(float(table.noise[table.experiment == e][0]) for e in experiments)
    return SpectrumData(
        ell=table.ell[keep], cl=table.cl[keep], error=table.error[keep], f_sky=table.f_sky[keep],
        experiment_index=index, experiments=experiments, noise=noise, kind=table.kind,
        transfer=None if table.transfer is None else table.transfer[keep],
    )


def _noise_parameters(data: SpectrumData, error_model: str) -> dict[str, Parameter]:
    if error_model == "table":
        return {}
    return {
        f"noise_{name}": Parameter("C_l", (0, math.inf), Prior("loguniform", 1e-13, 1e-7),
                                   f"shot-noise level N of {name}")
        for name in data.free_noise
    }


def spectrum_p_parameters(data: SpectrumData, error_model: str = "cosmic_variance") -> dict:
    """Parameters of :func:`spectrum_p_model` with their default priors (module docstring)."""
    return {
        "p": Parameter("1", (0, 1), Prior("uniform", 0.01, 0.99), "exponent of nu_r ~ (1-x)^p"),
        "q1": Parameter("C_l", (0, math.inf), Prior("loguniform", 1e-12, 1e-2),
                        "BGK amplitude of the dI spectrum, (4 pi)^2 Q1 / nu0 with "
                        "Q1 = K_ij d_i n d_j n / (6 pi n^2), nu_r = nu0 (1-x)^p"),
    } | _noise_parameters(data, error_model)


def _spectrum_likelihood(data: SpectrumData, priors, mean, extra_var, error_model: str,
                         fiducial_mean=None):
    """Gaussian likelihood of ``data.cl`` around ``mean`` (shape (n,)); noise sampled if free.
    ``fiducial_mean``: the ``C_l`` at which the cosmic variance is evaluated (default
    ``mean``)."""
    _validate.one_of("error_model", error_model, ERROR_MODELS)
    if error_model == "table":
        sigma = jnp.asarray(data.error)
    else:
        noise = jnp.stack([
            priors[f"noise_{name}"].sample(f"noise_{name}") if math.isnan(n) else jnp.asarray(n)
            for name, n in zip(data.experiments, data.noise, strict=True)
        ])[data.experiment_index]
        at = mean if fiducial_mean is None else fiducial_mean
        sigma = cosmic_variance_sigma(at, data.ell, data.f_sky, noise)
    numpyro.sample("cl_obs", dist.Normal(mean, jnp.sqrt(sigma**2 + extra_var)), obs=data.cl)


def check_observation(data: SpectrumData, experiment) -> tuple[PseudoClForward, ...] | None:
    """The experiments' forward operators in the order of ``data.experiments`` (``None`` for
    the ideal full-sky observer), after checking that they match the data.

    ``experiment``: ``None`` or one :class:`crsky.inference.data.PseudoClForward` per
    experiment of the data (a sequence, or a mapping by name). ``ValueError`` if the table
    holds pseudo-``C_l`` and no experiment is given, or full-sky ``C_l`` and one is; if an
    experiment of the data has no operator; if the operators differ in ``lmax_sky``; or if a
    row's ``l`` is 0 or beyond an operator's ``lmax``.
    """
    if experiment is None:
        if data.kind != "full_sky":
            raise ValueError(
                f"the C_l table holds {data.kind} spectra but the model has no experiment; "
                "set experiment (the observation operator) or use a full-sky table"
            )
        return None
    if data.kind != "pseudo":
        raise ValueError(
            f"experiment is set but the C_l table holds {data.kind} C_l (header 'spectrum'); "
            "an experiment's forward model needs pseudo-C_l (spectrum: pseudo)"
        )
    if isinstance(experiment, PseudoClForward):
        experiment = (experiment,)
    by_name = (dict(experiment) if isinstance(experiment, Mapping)
               else {e.name: e for e in experiment})
    ops = []
    for name in data.experiments:
        op = next((v for k, v in by_name.items() if k.casefold() == name.casefold()), None)
        if op is None:
            raise ValueError(f"experiment: no observation operator for {name!r} of the C_l table")
        rows = data.ell[data.experiment_index == data.experiments.index(name)]
        if rows.max() > op.lmax:
            raise ValueError(f"experiment {name!r}: the table reaches l = {rows.max()} beyond the "
                             f"operator's lmax = {op.lmax}")
        ops.append(op)
    if len({op.lmax_sky for op in ops}) > 1:
        raise ValueError("experiment: the operators must share lmax_sky")
    return tuple(ops)


PSEUDO_COV_FLOOR = 1e-3
"""Relative diagonal floor added to the pseudo-``C_l`` covariance (variance + 0.1 %): for a
small field of view the Gaussian covariance is numerically singular (the cut sky leaves some
combinations of the ``C̃_l`` with almost no variance: eigenvalues ~1e-16 of the correlation
matrix for the IceCube cap at ``l <= 36``), which no Cholesky factor survives."""


def _stacked_kernels(ops, index, ell) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(experiment index, l)``: kernels ``K^m_{lL}`` ``(m, n, L)`` and the noise kernels
    ``K^m_{ll'}`` ``(m, n, n)``, zero between different experiments (independent noise)."""
    kernels = np.stack([ops[e].kernels[:, l, :] for e, l in zip(index, ell, strict=True)], 1)
    noise = np.zeros((kernels.shape[0], ell.size, ell.size))
    for e in np.unique(index):
        rows = np.flatnonzero(index == e)
        noise[:, rows[:, None], rows[None, :]] = ops[e].kernels[:, ell[rows]][:, :, ell[rows]]
    return kernels, noise


def _pseudo_likelihood(data: SpectrumData, priors, ops, cl_sky, extra_var, error_model,
                       fiducial_sky=None):
    """Likelihood of pseudo-``C_l`` rows: mean and joint Gaussian covariance of
    :func:`crsky.physics.observatory.pseudo_cl_moments` (experiments seeing the same sky are
    correlated through it), noise white at the table's (or a free) level ``Ñ``; the table's
    ``cl`` is the pseudo-``C_l`` minus ``Ñ``. ``fiducial_sky``: the sky ``C_L`` at which the
    covariance is evaluated (default ``cl_sky``, the model's). A ``transfer`` column ``T_l``
    multiplies the signal part of the mean and scales the covariance by ``T_l T_l'`` (the
    anisotropic sky's pseudo-``C_l`` taken to scatter as the isotropic sky's of the same mean)."""
    _validate.one_of("error_model", error_model, ERROR_MODELS)
    kernels, noise_kernels = _stacked_kernels(ops, data.experiment_index, data.ell)
    idx = data.experiment_index
    level = jnp.stack([
        priors[f"noise_{name}"].sample(f"noise_{name}") if math.isnan(n) else jnp.asarray(n)
        for name, n in zip(data.experiments, data.noise, strict=True)
    ])
    f_sky = jnp.asarray([op.f_sky for op in ops])
    noise = (level / f_sky)[idx]
    if fiducial_sky is None:
        mean, cov = observatory.pseudo_cl_moments(kernels, data.ell, cl_sky, noise, noise_kernels)
    else:  # covariance held at the fiducial spectrum
        mean = observatory.pseudo_cl_mean(kernels, data.ell, cl_sky, noise, noise_kernels)
        _, cov = observatory.pseudo_cl_moments(kernels, data.ell, fiducial_sky, noise,
                                               noise_kernels)
    if data.transfer is not None:  # forward-simulated transfer of the signal's pseudo-C_l
        noise_mean = observatory.pseudo_cl_mean(kernels, data.ell, jnp.zeros_like(cl_sky), noise,
                                                noise_kernels)
        transfer = jnp.asarray(data.transfer)
        mean = noise_mean + transfer * (mean - noise_mean)
        cov = cov * jnp.outer(transfer, transfer)
    mean = mean - level[idx]
    if error_model == "table":
        cov = jnp.diag(jnp.asarray(data.error) ** 2)
    var = jnp.diag(cov) + extra_var
    cov = cov + jnp.diag(extra_var + PSEUDO_COV_FLOOR * var)
    # rescale by the fixed table errors so that the Cholesky factor is well conditioned
    scale = jnp.asarray(data.error)
    cov = cov / jnp.outer(scale, scale)
    numpyro.sample("cl_obs", dist.MultivariateNormal(mean / scale, cov), obs=data.cl / scale)
    numpyro.factor("cl_obs_rescale", -jnp.sum(jnp.log(scale)))


def check_fiducial(fiducial, names: tuple[str, ...], error_model: str) -> None:
    """``ValueError`` unless ``fiducial`` is ``None`` or a mapping of exactly ``names`` to
    positive values, with ``error_model = "cosmic_variance"`` (the only error model that
    depends on the parameters)."""
    if fiducial is None:
        return
    if error_model != "cosmic_variance":
        raise ValueError("fiducial applies to error_model='cosmic_variance' only")
    if not isinstance(fiducial, Mapping) or set(fiducial) != set(names):
        raise ValueError(f"fiducial must be a mapping with keys {', '.join(names)}, got "
                         f"{fiducial!r}")
    for name in names:
        _validate.positive(f"fiducial {name}", fiducial[name])


def spectrum_p_model(data: SpectrumData, priors: Mapping[str, Prior],
                     error_model: str = "cosmic_variance", experiment=None,
                     fiducial: Mapping[str, float] | None = None):
    """NumPyro model: ``Ĉ_l`` → exponent ``p`` and amplitude ``q1`` of the BGK closure.

    Mean ``C_l = crsky.physics.bgk.cl(p, l, q1) = q1 cl_shape(p, l)`` (rel.-diffusion paper eq.
    4.7):
    for spectra of ``δI`` the fitted ``q1`` is ``(4π)² Q1/ν0`` (``Q1`` and ``ν0`` enter only
    through this ratio). Error per row:
    ``"cosmic_variance"``: ``sqrt(2/((2l+1) f_sky)) (C_l + N)`` at the model ``C_l`` (Fig. 1
    caption), ``N`` from the table or free; ``"table"``: the table's ``error`` column.

    ``experiment`` (:func:`check_observation`): ``None`` for the ideal full-sky observer, or
    the experiments' observation operators; the data are then pseudo-``C_l`` and the mean and
    covariance those of :func:`crsky.physics.observatory.pseudo_cl_moments` for the sky
    ``C_L = bgk.cl(p, L, q1)``, ``L = 1 .. lmax_sky`` (``C_0 = 0``; the filter removes it).

    ``fiducial`` (``{"p": ..., "q1": ...}``, ``error_model="cosmic_variance"`` only): hold the
    covariance (pseudo-``C_l``) or the cosmic variance (full sky) at the BGK spectrum of these
    values instead of the model's (a fiducial covariance); the mean still follows ``p``, ``q1``. A
    covariance that moves with the parameters biases the fit towards larger variance
    (``benchmarks/closure_observatory.py``); a first fit's values are a natural fiducial.
    """
    ops = check_observation(data, experiment)
    check_fiducial(fiducial, ("p", "q1"), error_model)
    if fiducial is not None:
        _validate.open_interval("fiducial p", fiducial["p"], 0.0, 1.0)
    p = priors["p"].sample("p")
    q1 = priors["q1"].sample("q1")
    if ops is None:
        mean = bgk.cl(p, jnp.asarray(data.ell), q1)
        fid = None if fiducial is None else bgk.cl(fiducial["p"], jnp.asarray(data.ell),
                                                   fiducial["q1"])
        _spectrum_likelihood(data, priors, mean, 0.0, error_model, fid)
        return
    sky_ell = jnp.arange(1, ops[0].lmax_sky + 1)
    sky = jnp.concatenate([jnp.zeros(1), bgk.cl(p, sky_ell, q1)])
    fid = None if fiducial is None else jnp.concatenate(
        [jnp.zeros(1), bgk.cl(fiducial["p"], sky_ell, fiducial["q1"])])
    _pseudo_likelihood(data, priors, ops, sky, 0.0, error_model, fid)


def spectrum_sigma_parameters(data: SpectrumData, emulator: Emulator,
                              error_model: str = "cosmic_variance") -> dict:
    """Parameters of :func:`spectrum_sigma_model`; priors default to the emulator's grid.

    ``ValueError`` if the data's multipoles are not all in the emulator table.
    """
    emulator.ell_index(data.ell)
    s_lo, s_hi = float(emulator.sigma[0]), float(emulator.sigma[-1])
    if not s_lo < s_hi:
        raise ValueError("the emulator table needs at least two sigma values")
    out = {
        "sigma": Parameter("1", (s_lo, s_hi), Prior("uniform", s_lo, s_hi),
                           "turbulence level sigma = sqrt(<dB^2>)/B0"),
        "c1": Parameter("C_l", (0, math.inf), Prior("loguniform", 1e-12, 1e-2),
                        "normalisation C_1 of the emulated shape"),
    }
    if emulator.rl_over_lc.shape[0] > 1:
        r_lo, r_hi = float(emulator.rl_over_lc[0]), float(emulator.rl_over_lc[-1])
        out["rl_over_lc"] = Parameter("1", (r_lo, r_hi), Prior("loguniform", r_lo, r_hi),
                                      "Larmor radius over correlation length")
    return out | _noise_parameters(data, error_model)


def spectrum_sigma_model(data: SpectrumData, emulator: Emulator, priors: Mapping[str, Prior],
                         error_model: str = "cosmic_variance", experiment=None,
                         fiducial: Mapping[str, float] | None = None):
    """NumPyro model: ``Ĉ_l`` → turbulence level ``σ`` (and ``r_L/Lc``) through the emulator.

    Mean ``c1 · R(σ, r_L/Lc, l)`` with ``R = Ĉ_l/Ĉ_1`` from
    :func:`crsky.inference.emulator.evaluate`;
    variance = cosmic variance + noise (as :func:`spectrum_p_model`) + ``(c1 · error_R)²``, the
    simulation noise of the emulator table.

    ``experiment`` as in :func:`spectrum_p_model`: the sky spectrum is then
    ``c1 · R(σ, r_L/Lc, L)`` for ``L = 1 .. lmax_sky`` (the emulator must hold all of them) and
    the emulator error enters through the mixing matrix, ``Σ_L M_{lL}² (c1 error_L)²``.

    ``fiducial`` (a mapping of the sampled ``sigma``, ``c1`` and, with an r_L/Lc axis,
    ``rl_over_lc``; ``error_model="cosmic_variance"`` only): hold the cosmic variance (or the
    pseudo-``C_l`` covariance) and the emulator's error term at the emulated spectrum of these
    values, as ``fiducial`` of :func:`spectrum_p_model`.
    """
    ops = check_observation(data, experiment)
    check_fiducial(fiducial, tuple(n for n in ("sigma", "rl_over_lc", "c1") if n in priors),
                   error_model)
    if ops is not None:
        sky_ell = np.arange(1, ops[0].lmax_sky + 1)
        emulator.ell_index(sky_ell)
    sigma = priors["sigma"].sample("sigma")
    rl = priors["rl_over_lc"].sample("rl_over_lc") if "rl_over_lc" in priors else None
    c1 = priors["c1"].sample("c1")
    ratio, error = evaluate(emulator, sigma, rl)
    at_ratio, at_error, at_c1 = ratio, error, c1  # where the variance is evaluated
    if fiducial is not None:
        at_ratio, at_error = evaluate(emulator, fiducial["sigma"], fiducial.get("rl_over_lc"))
        at_c1 = fiducial["c1"]
    if ops is None:
        index = emulator.ell_index(data.ell)
        _spectrum_likelihood(data, priors, c1 * ratio[index], (at_c1 * at_error[index]) ** 2,
                             error_model, None if fiducial is None else at_c1 * at_ratio[index])
        return
    index = emulator.ell_index(sky_ell)
    sky = jnp.concatenate([jnp.zeros(1), c1 * ratio[index]])
    sky_var = jnp.concatenate([jnp.zeros(1), (at_c1 * at_error[index]) ** 2])
    kernels, _ = _stacked_kernels(ops, data.experiment_index, data.ell)
    mixing = 2.0 / (2.0 * data.ell + 1.0)[:, None] * np.sum(kernels[1:] ** 2, axis=0)
    fid = None if fiducial is None else jnp.concatenate([jnp.zeros(1), at_c1 * at_ratio[index]])
    _pseudo_likelihood(data, priors, ops, sky, mixing**2 @ sky_var, error_model, fid)
