"""Figures of the inverse problem: true, recovered and residual maps; recovery against time."""

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.physics import spectra


def recovery_maps(true_map, recovered_map, data_map=None, title: str = ""):
    """Mollweide views of the true, recovered and residual (recovered − true) maps, and of the
    data when given, side by side, on one colour scale (the residual on its own). Maps are
    RING-ordered ``(Npix,)``; returns the Figure."""
    import matplotlib.pyplot as plt

    maps = {"true": true_map, "recovered": recovered_map}
    if data_map is not None:
        maps = {"data": data_map, **maps}
    maps = {k: np.asarray(v, dtype=float) for k, v in maps.items()}
    for name, m in maps.items():
        if m.ndim != 1:
            raise ValueError(f"{name} map must have shape (Npix,), got {m.shape}")
        spectra.nside_from_npix(m.size, f"{name} map")
        _validate.finite(f"{name} map", m)
    if len({m.size for m in maps.values()}) != 1:
        raise ValueError("the maps must have the same number of pixels")
    maps["residual"] = maps["recovered"] - maps["true"]
    limit = max(np.max(np.abs(maps[k])) for k in maps if k != "residual")
    fig = plt.figure(figsize=(4.2 * len(maps), 3.0))
    for i, (name, m) in enumerate(maps.items()):
        lim = np.max(np.abs(m)) if name == "residual" else limit
        hp.mollview(m, fig=fig.number, sub=(1, len(maps), i + 1), title=name, min=-lim,
                    max=lim, cmap="RdBu_r", nest=False)
    if title:
        fig.suptitle(title)
    plt.close(fig)
    return fig


def recovery_against_time(t_omega, curves: dict, ylabel: str, horizon: float | None = None):
    """``curves`` (label → values per back-tracking time) against τ = TΩ; a vertical line at
    ``horizon`` (e.g. the pathwise-gradient horizon). Returns the Figure."""
    import matplotlib.pyplot as plt

    t_omega = np.asarray(t_omega, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.shape != t_omega.shape:
            raise ValueError(f"curve {label!r} must have shape {t_omega.shape}, got {values.shape}")
        ax.plot(t_omega, values, "o-", label=label)
    if horizon is not None:
        ax.axvline(horizon, color="gray", ls=":", label="pathwise-gradient horizon")
    ax.set_xscale("log")
    ax.set_xlabel("back-tracking time tΩ")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
