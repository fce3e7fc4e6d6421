"""Memory a back-tracking run needs, estimated from its configuration before anything runs.

A run holds at once: the arrival directions, the field realisations of one call, the Boris step
grid, the back-tracked states of one call at the saved times (on the device, then as numpy
copies and float64 basis maps on the host), the phases of one chunk of trajectories on the
device, and the spherical-harmonic kernels. The number of realisations does not enter: they are
streamed, one call at a time. The estimate is a lower bound of the peak (the largest arrays
only); it exists to refuse at once what cannot fit, with the parameter that makes it large.
"""

from crsky import _validate
from crsky.physics.spectra import plan_bytes
from crsky.physics.tracing import step_count
from crsky.physics.turbulence import MODE_BYTES

_ITEMSIZE = {"float32": 4, "float64": 8}
# Host copies of the saved states of one realisation: device result, numpy concatenation,
# float64 basis maps for the spectra, the last-time maps.
_STATE_COPIES = 4


def simulation_bytes(config) -> dict[str, tuple[str, int]]:
    """Bytes of the largest arrays of one call of a run, by what sets them.

    Args:
        config: a :class:`crsky.io.run.SimulationConfig` (or anything with its
            fields and ``step``, ``lmax_spectra`` properties).

    Returns:
        ``{what: (parameters, bytes)}`` with ``parameters`` naming the configuration keys
        that set the size (``"nside=4096, n_times=12"``).
    """
    npix = 12 * config.nside**2
    per_call = config.realisations_per_call
    item = _ITEMSIZE.get(config.dtype, 8)
    chunk = min(config.chunk, npix)
    out = {
        "the arrival directions": (f"nside={config.nside}", 2 * 8 * 3 * npix),
        "the saved trajectory states": (
            f"nside={config.nside}, n_times={config.n_times}, "
            f"realisations_per_call={per_call}",
            _STATE_COPIES * 8 * 2 * 3 * config.n_times * npix * per_call,
        ),
        "the plane waves": (
            f"modes={config.modes}, realisations_per_call={per_call}",
            MODE_BYTES * config.modes * per_call,
        ),
        "the field phases of one chunk": (
            f"modes={config.modes}, chunk={config.chunk}, realisations_per_call={per_call}",
            3 * item * config.modes * chunk * per_call,
        ),
    }
    if config.solver == "boris":
        dt = f"dt={config.dt:g}" if config.dt is not None else f"dt={config.step:g} (default)"
        out["the Boris step grid"] = (
            f"t_omega_max={config.t_omega_max:g}, {dt}",
            48 * (step_count(config.t_omega_max, config.step) + 1),
        )
    if config.spectra_method == "jax":
        out["the spherical-harmonic transform kernels"] = (
            f"nside={config.nside}, ell_max={config.lmax_spectra}",
            plan_bytes(config.nside, config.lmax_spectra),
        )
    return out


def check_simulation(config) -> None:
    """Raise ``ValueError`` naming the parameters of the largest array when one call of the run
    needs more memory than is available (:func:`crsky._validate.available_memory`)."""
    steps = config.t_omega_max / config.step
    if config.solver == "boris" and steps > 2**62:
        raise ValueError(
            f"t_omega_max={config.t_omega_max:g}, dt={config.step:g}: t_omega_max / dt = "
            f"{steps:.3g} steps is beyond any run; raise dt or lower t_omega_max"
        )
    parts = simulation_bytes(config)
    total = sum(b for _, b in parts.values())
    what, (names, _) = max(parts.items(), key=lambda item: item[1][1])
    _validate.fits_in_memory(names, total, f"one call of the run (mostly {what})")
