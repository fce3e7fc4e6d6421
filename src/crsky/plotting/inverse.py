"""Figures of the inverse problem: true, recovered and residual maps; recovery against time;
the true and recovered field along back-tracked paths."""

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.physics import spectra


def recovery_maps(true_map, recovered_map, data_map=None, title: str = "",
                  field_of_view=None):
    """Mollweide views of the true, recovered and residual (recovered − true) maps, and of the
    data when given, side by side, on one colour scale (the residual on its own). Maps are
    RING-ordered ``(Npix,)``, or, with a boolean ``field_of_view`` mask (Npix,), the values of
    the pixels in view (the rest drawn grey); returns the Figure."""
    import matplotlib.pyplot as plt

    maps = {"true": true_map, "recovered": recovered_map}
    if data_map is not None:
        maps = {"data": data_map, **maps}
    maps = {k: np.asarray(v, dtype=float) for k, v in maps.items()}
    mask = None if field_of_view is None else np.asarray(field_of_view, dtype=bool)
    if mask is not None:
        spectra.nside_from_npix(mask.size, "field_of_view")
    for name, m in maps.items():
        if m.ndim != 1:
            raise ValueError(f"{name} map must have shape (Npix,), got {m.shape}")
        if mask is None:
            spectra.nside_from_npix(m.size, f"{name} map")
        elif m.size != mask.sum():
            raise ValueError(f"{name} map must hold the {mask.sum()} pixels in view, got "
                             f"{m.size}")
        _validate.finite(f"{name} map", m)
    if len({m.size for m in maps.values()}) != 1:
        raise ValueError("the maps must have the same number of pixels")
    maps["residual"] = maps["recovered"] - maps["true"]
    limit = max(np.max(np.abs(maps[k])) for k in maps if k != "residual")
    fig = plt.figure(figsize=(4.2 * len(maps), 3.0))
    for i, (name, m) in enumerate(maps.items()):
        lim = np.max(np.abs(m)) if name == "residual" else limit
        if mask is not None:  # healpy draws UNSEEN pixels grey
            m = np.where(mask, 0.0, hp.UNSEEN).astype(float)
            m[mask] = maps[name]
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


def recovery_along_paths(t_omega, b_true, b_recovered, t_data: float | None = None,
                         labels=None, title: str = ""):
    """The true and recovered field along back-tracked paths (:func:`crsky.physics.inverse.
    field_along_paths`): |B|/B0 of both against tΩ (true solid, recovered dashed, one colour
    per path), and below the residual |B_rec − B_true|/B0 (the norm of the vector difference).

    Args:
        t_omega: sample times, shape (n_t,).
        b_true, b_recovered: B/B0 at the samples, shape (n_t, M, 3) for M paths.
        t_data: the last back-tracking time of the fitted maps: a vertical line (beyond it the
            paths are longer than any the data saw).
        labels: M legend labels (default "path 0", "path 1", ...).
        title: figure title.

    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    t_omega = np.asarray(t_omega, dtype=float)
    b_true = np.asarray(b_true, dtype=float)
    b_recovered = np.asarray(b_recovered, dtype=float)
    if t_omega.ndim != 1:
        raise ValueError(f"t_omega must have shape (n_t,), got {t_omega.shape}")
    for name, b in (("b_true", b_true), ("b_recovered", b_recovered)):
        if b.ndim != 3 or b.shape[0] != t_omega.size or b.shape[2] != 3:
            raise ValueError(f"{name} must have shape ({t_omega.size}, M, 3), got {b.shape}")
        _validate.finite(name, b)
    if b_true.shape != b_recovered.shape:
        raise ValueError(f"b_true {b_true.shape} and b_recovered {b_recovered.shape} differ")
    n_paths = b_true.shape[1]
    labels = [f"path {i}" for i in range(n_paths)] if labels is None else list(labels)
    if len(labels) != n_paths:
        raise ValueError(f"labels must name the {n_paths} paths, got {len(labels)}")
    magnitude_true = np.linalg.norm(b_true, axis=-1)
    magnitude_rec = np.linalg.norm(b_recovered, axis=-1)
    residual = np.linalg.norm(b_recovered - b_true, axis=-1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True,
                                      gridspec_kw={"height_ratios": (2, 1)})
    for i, label in enumerate(labels):
        color = f"C{i % 10}"
        top.plot(t_omega, magnitude_true[:, i], "-", color=color, label=f"{label} true")
        top.plot(t_omega, magnitude_rec[:, i], "--", color=color, label=f"{label} recovered")
        bottom.plot(t_omega, residual[:, i], "-", color=color)
    for ax in (top, bottom):
        if t_data is not None:
            ax.axvline(t_data, color="gray", ls=":")
    if t_data is not None:
        top.plot([], [], color="gray", ls=":", label="last time of the data")
    top.set_ylabel("|B|/B0")
    bottom.set_ylabel("|B_rec − B_true|/B0")
    bottom.set_xlabel("back-tracking time tΩ")
    top.legend(fontsize=7, ncol=2)
    if title:
        top.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
