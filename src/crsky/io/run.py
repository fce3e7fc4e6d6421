"""A back-tracking ensemble as a value: its configuration and its per-realisation results.

:class:`SimulationConfig` is the flat set of parameters of a run (the keys of a configuration
TOML file and of a run file's header); :class:`Ensemble` holds what the realisations produced,
whether computed in memory (:func:`crsky.pipelines.ensemble.simulate`) or read from a run file
(:func:`crsky.io.runfile.load`), and derives the running diffusion tensor and the anisotropy
statistics from it.

Units (relative-diffusion paper, Ahlers & Mertsch, section 3): lengths in Lc, times as τ = tΩ
(T = τ r_L in Lc/c), the diffusion tensor K in Lc·c, the gradient g = ∇n/n in 1/Lc.
"""

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from crsky import _validate, resources
from crsky.io import budget
from crsky.io.text import load_toml, toml_key_lines
from crsky.physics import sky
from crsky.physics.anisotropy import SUMMARY_KEYS, SpectrumStatistics, ensemble_statistics
from crsky.physics.diffusion import DiffusionTensor, diffusion_tensor
from crsky.physics.tracing import SOLVERS, check_times, default_step, log_times
from crsky.physics.turbulence import KOLMOGOROV_GAMMA, TurbulenceSpectrum, validate_scales

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
TSIT5_TOLERANCES = {"float64": (1e-8, 1e-10), "float32": (1e-6, 1e-8)}
"""Default Tsit5 ``(rtol, atol)`` by dtype: in float64 those of
:func:`crsky.physics.tracing.backtrack`; in float32 the tightest a step controller can meet
(rtol a few float32 ulps, ~1.2e-7 each)."""
_KIND = {
    int: "integer", int | None: "integer", float: "number", float | None: "number",
    str: "string", bool: "boolean",
}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Parameters of a back-tracking ensemble. Lengths in Lc, times as τ = tΩ.

    The defaults are a reduced configuration that runs on a laptop CPU in about a minute; the
    paper's reference run is ``nside=32, realisations=120, modes=256, t_omega_max=1000``
    (the built-in configuration ``"paper"``, :meth:`load`).

    Attributes:
        nside: HEALPix resolution of the arrival directions (power of two).
        realisations: number of field realisations.
        modes: number of plane waves N per realisation.
        sigma2: turbulence level σ² = ⟨δB²⟩/B0².
        r_larmor: Larmor radius r_L/Lc.
        lambda_min, lambda_max: shortest/longest wavelength, Lc.
        lc: bend-over scale of the spectrum, Lc.
        gamma: spectral index (11/3: Kolmogorov).
        t_omega_min, t_omega_max, n_times: saved times, log-spaced in τ.
        solver: ``"boris"`` or ``"tsit5"``.
        dtype: ``"float32"`` (fast) or ``"float64"`` (needs ``jax_enable_x64`` to simulate).
        seed: PRNG seed of the ensemble.
        dt: Boris step (Tsit5 initial step) in 1/Ω; ``None`` = :func:`default_step`.
        rtol, atol: Tsit5 tolerances; ``None`` = :data:`TSIT5_TOLERANCES` of the dtype.
        ell_max: largest multipole of the stored spectra; ``None`` = 2 nside (the range where
            the JAX transform matches healpy to 1e-8).
        spectra_method: ``"jax"`` or ``"healpy"`` back-end of the per-realisation spectra.
        save_trajectories: store r(−T), p̂(−T) of every trajectory (large).
        chunk: trajectories per device integrated in one call (bounds memory).
        realisations_per_call: field realisations back-tracked together in one call (each
            written when its call ends; a short last call is padded, so best a divisor of
            ``realisations``). 1 suits a CPU; on a GPU several realisations per call fill the
            device and amortise the per-step cost of the loop (``benchmarks/RESULTS.md``). Part
            of the configuration: it changes the rounding, so the trajectories (not their
            statistics) differ between values after chaotic growth.
    """

    nside: int = 8
    realisations: int = 4
    modes: int = 128
    sigma2: float = 1.0
    r_larmor: float = 0.1
    lambda_min: float = 0.01
    lambda_max: float = 100.0
    lc: float = 1.0
    gamma: float = KOLMOGOROV_GAMMA
    t_omega_min: float = 1.0
    t_omega_max: float = 100.0
    n_times: int = 12
    solver: str = "boris"
    dtype: str = "float32"
    seed: int = 0
    dt: float | None = None
    rtol: float | None = None
    atol: float | None = None
    ell_max: int | None = None
    spectra_method: str = "jax"
    save_trajectories: bool = False
    chunk: int = 3072
    realisations_per_call: int = 1

    def __post_init__(self):
        _validate.power_of_two("nside", self.nside)
        _validate.positive_int("realisations", self.realisations)
        # under the configuration's names (TurbulenceSpectrum says n_modes and σ, not σ²)
        _validate.positive_int("modes", self.modes)
        _validate.non_negative("sigma2", self.sigma2)
        validate_scales(self.lambda_min, self.lambda_max, self.lc, self.gamma)
        _validate.positive("r_larmor", self.r_larmor)
        check_times(self.t_omega_max, self.n_times, self.t_omega_min)
        _validate.one_of("solver", self.solver, SOLVERS)
        _validate.one_of("dtype", self.dtype, DTYPES)
        for name, default in zip(("rtol", "atol"), TSIT5_TOLERANCES[self.dtype], strict=True):
            if getattr(self, name) is None:  # stored resolved: the run file holds the number
                object.__setattr__(self, name, default)
        _validate.non_negative_int("seed", self.seed)
        if self.dt is not None:
            _validate.positive("dt", self.dt)
        _validate.positive("rtol", self.rtol)
        _validate.positive("atol", self.atol)
        _validate.positive_int("chunk", self.chunk)
        _validate.positive_int("realisations_per_call", self.realisations_per_call)
        if self.realisations_per_call > self.realisations:
            raise ValueError(
                f"realisations_per_call ({self.realisations_per_call}) must be <= realisations "
                f"({self.realisations})"
            )
        _validate.positive_int("ell_max", self.lmax_spectra)
        if self.lmax_spectra > 3 * self.nside - 1:
            raise ValueError(
                f"ell_max must be <= 3 nside - 1 = {3 * self.nside - 1}, got {self.ell_max}"
            )
        _validate.one_of("spectra_method", self.spectra_method, ("jax", "healpy"))
        budget.check_simulation(self)  # refuse what cannot fit in memory, naming the cause

    @property
    def sigma(self) -> float:
        """σ = sqrt(σ²)."""
        return math.sqrt(self.sigma2)

    @property
    def spectrum(self) -> TurbulenceSpectrum:
        """The turbulence spectrum of every realisation (σ, λmin, λmax, lc, γ, N = modes)."""
        return TurbulenceSpectrum(
            sigma=self.sigma, lambda_min=self.lambda_min, lambda_max=self.lambda_max,
            lc=self.lc, gamma=self.gamma, n_modes=self.modes,
        )

    @property
    def lmax_spectra(self) -> int:
        """The largest multipole of the stored spectra."""
        return self.ell_max if self.ell_max is not None else 2 * self.nside

    @property
    def step(self) -> float:
        """The step in 1/Ω actually used."""
        return self.dt if self.dt is not None else default_step(self.r_larmor, self.lambda_min)

    @property
    def t_omega(self) -> np.ndarray:
        """The saved back-tracking times τ = tΩ, shape (n_times,)."""
        return log_times(self.t_omega_max, self.n_times, self.t_omega_min)

    def check_dtype(self) -> None:
        """Raise ``ValueError`` if ``dtype`` is float64 and ``jax_enable_x64`` is off (checked
        before simulating; reading a float64 run needs no x64)."""
        if self.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ValueError(
                "dtype float64 needs jax.config.update('jax_enable_x64', True) first"
            )

    def replace(self, **changes) -> "SimulationConfig":
        """A copy with ``changes`` applied, checked like a configuration file (unknown keys and
        wrong types are named; whole numbers are accepted for number keys)."""
        return type(self).from_dict(self.to_dict() | changes)

    def to_dict(self) -> dict:
        """The flat mapping of keys to values (the TOML keys; stored in run files)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping, lines: dict[str, int] | None = None) -> "SimulationConfig":
        """Build from a mapping (a TOML file); unknown keys and wrong types name the key/line."""
        lines = lines or {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for key, value in values.items():
            where = f" (line {lines[key]})" if key in lines else ""
            if key not in types:
                raise ValueError(f"unknown config key {key!r}{where}")
            expected = _KIND[types[key]]
            if value is None and types[key] in (int | None, float | None):
                continue  # an optional key left at its default (JSON null in run files)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            ok = {
                "integer": number and isinstance(value, int),
                "number": number,
                "string": isinstance(value, str),
                "boolean": isinstance(value, bool),
            }[expected]
            if not ok:
                raise ValueError(f"config key {key!r}{where} must be a {expected}, got {value!r}")
        converted = {
            k: float(v) if _KIND[types[k]] == "number" and v is not None else v
            for k, v in values.items()
        }
        return cls(**converted)

    @classmethod
    def load(cls, name_or_path: str | Path) -> "SimulationConfig":
        """A built-in configuration by name (``"reduced"``, ``"paper"``, ``"emulator"``;
        :func:`crsky.resources.names`) or a TOML file of configuration keys."""
        path = resources.resolve("config", name_or_path)
        return cls.from_dict(load_toml(path), toml_key_lines(path))


@dataclasses.dataclass(frozen=True, eq=False)
class Ensemble:
    """The realisations of one configuration: the result of
    :func:`crsky.pipelines.ensemble.simulate` and of :func:`crsky.io.runfile.load`.

    Attributes:
        config: the :class:`SimulationConfig` of the run.
        t_omega: saved back-tracking times τ = tΩ, shape (n_times,).
        directions: arrival directions n̂ (HEALPix RING pixel centres), shape (Npix, 3).
        indices: realisation numbers, shape (R,), increasing.
        arrays: per-realisation arrays stacked along a first axis R, by run-file dataset name:
            ``modes/k`` (R, N, 3) [1/Lc], ``modes/amplitude`` (R, N, 3) [B0], ``modes/phase``
            (R, N) [rad], ``r_mean`` (R, n_times, 3) [Lc], ``rr_mean``, ``rr_var``
            (R, n_times, 3, 3) [Lc², Lc⁴], ``spectra/<name>`` for the names of
            :func:`crsky.physics.sky.realisation_summary`, ``maps_last`` (R, Npix, 6)
            (r, p̂ at the last time), and ``r``, ``p`` (R, n_times, Npix, 3) when the run saved
            trajectories (a loaded run holds the names it was asked for).
        attrs: per-realisation scalars, shape (R,) each: ``wall_seconds``, ``n_steps``,
            ``momentum_drift_max`` (max ||p̂| − 1|), ``field_rms_over_b0``.
    """

    config: SimulationConfig
    t_omega: np.ndarray
    directions: np.ndarray
    indices: np.ndarray
    arrays: Mapping[str, np.ndarray]
    attrs: Mapping[str, np.ndarray]

    @classmethod
    def from_records(
        cls, config: SimulationConfig, t_omega, directions,
        records: Sequence[tuple[int, Mapping, Mapping]],
    ) -> "Ensemble":
        """Stack ``(index, arrays, attrs)`` records of single realisations, in index order."""
        records = sorted(records, key=lambda record: record[0])
        names = list(records[0][1]) if records else []
        attr_names = list(records[0][2]) if records else []
        return cls(
            config=config,
            t_omega=np.asarray(t_omega, np.float64),
            directions=np.asarray(directions, np.float64),
            indices=np.array([index for index, _, _ in records], dtype=int),
            arrays={n: np.stack([np.asarray(a[n]) for _, a, _ in records]) for n in names},
            attrs={n: np.array([t[n] for _, _, t in records]) for n in attr_names},
        )

    def select(self, keep) -> "Ensemble":
        """The ensemble restricted to some realisations: ``keep`` is a boolean mask or integer
        positions along the realisation axis (e.g. a leave-one-out jackknife)."""
        keep = np.asarray(keep)
        return dataclasses.replace(
            self,
            indices=self.indices[keep],
            arrays={name: value[keep] for name, value in self.arrays.items()},
            attrs={name: value[keep] for name, value in self.attrs.items()},
        )

    def __len__(self) -> int:
        """The number of realisations R."""
        return len(self.indices)

    @property
    def T(self) -> np.ndarray:
        """Back-tracking times T = τ r_L in Lc/c, shape (n_times,)."""
        return self.t_omega * self.config.r_larmor

    def diffusion(self) -> DiffusionTensor:
        """The running diffusion tensor K_ij(T) with κ∥ and κ⊥ (Lc·c) and their errors."""
        return self._diffusion

    @functools.cached_property
    def _diffusion(self) -> DiffusionTensor:
        self._require("rr_mean", "rr_var")
        return diffusion_tensor(
            self.arrays["rr_mean"], self.T, self.arrays["rr_var"], self.directions.shape[0]
        )

    def statistics(self, gradient="parallel", K_liouville=None) -> SpectrumStatistics:
        """Anisotropy statistics ⟨C_ℓ⟩(T), noise, Ĉ_ℓ, dipoles, K̃ and the sum rules.

        Args:
            gradient: ``g = ∇n/n``: an orientation of :data:`crsky.physics.sky.ORIENTATIONS`
                (``"parallel"`` or ``"perpendicular"`` to B0, |g| = 1/Lc) or a vector in 1/Lc,
                shape (3,). Spectra scale with |g|².
            K_liouville: K (Lc·c, (3, 3)) in the Liouville map; default the ensemble K at the
                last time.

        Returns:
            :class:`crsky.physics.anisotropy.SpectrumStatistics` over the saved times.
        """
        if isinstance(gradient, str):
            gradient = sky.reference_gradient(gradient)
        self._require(*(f"spectra/{name}" for name in SUMMARY_KEYS))
        summaries = {name: self.arrays[f"spectra/{name}"] for name in SUMMARY_KEYS}
        return ensemble_statistics(
            summaries, self.t_omega, self.config.r_larmor, self.diffusion().K, gradient,
            nside=self.config.nside, K_liouville=K_liouville,
        )

    def _require(self, *names: str) -> None:
        if not len(self):
            raise ValueError("the ensemble holds no realisations")
        missing = [n for n in names if n not in self.arrays]
        if missing:
            raise ValueError(f"the ensemble holds no {', '.join(missing)} (load them)")
