"""Sky maps: Mollweide views of HEALPix relative-intensity maps.

:func:`sky_map` draws a map in the simulation frame: arrival directions ``n̂`` with ``B0``
along ``+ẑ`` (colatitude θ = 0 at the top of the map), longitude φ from ``+x̂`` at the centre,
increasing to the left (healpy's astronomical convention, the sky seen from inside).
:func:`observed_sky_map` draws an experiment's observed map in equatorial coordinates.
"""

from collections.abc import Sequence

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.physics import observatory, spectra

DELTA_I_LABEL = r"$\delta I$ for $|\nabla n|/n = 1/L_c$ (dimensionless)"
"""Colour-bar label of the δI maps of ``crsky plot`` (unit gradient, rel.-diffusion eq. 2.1)."""


def _one_map(name: str, values) -> np.ndarray:
    """``values`` as one finite HEALPix map (float64); ``ValueError`` naming ``name`` if not."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one map of shape (Npix,), got {values.shape}")
    spectra.nside_from_npix(values.size, name)
    _validate.finite(name, values)
    return values


def _mark(vector: Sequence[float], text: str, marker: str, color: str,
          offset_deg: float = 12.0, fill: str | None = None) -> None:
    """Mark the direction ``vector`` with ``marker`` and its label ``offset_deg`` towards the
    equator on the current healpy projection."""
    import matplotlib.patheffects as pe

    theta, phi = (float(a[0]) for a in hp.vec2ang(np.asarray(vector, dtype=float)))
    if abs(np.sin(theta)) < 1e-9:  # at a pole: the label straight below/above it
        phi = 0.0
    halo = [pe.withStroke(linewidth=3, foreground="white")]
    hp.projscatter(theta, phi, marker=marker, s=140 if fill else 110, color=fill or color,
                   edgecolors=color if fill else "white", linewidths=1.0, zorder=5,
                   clip_on=False)
    label_theta = theta + np.radians(offset_deg) * (1 if theta <= np.pi / 2 else -1)
    hp.projtext(label_theta, phi, text, color=color, fontsize=11, ha="center",
                va="center", path_effects=halo, zorder=6)


def sky_map(
    delta_i,
    title: str = r"relative intensity $\delta I$",
    *,
    unit: str = DELTA_I_LABEL,
    gradient: Sequence[float] | None = None,
    b0: Sequence[float] | None = (0.0, 0.0, 1.0),
    symmetric: bool = True,
    graticule_deg: float = 30.0,
):
    """Mollweide view (healpy.mollview) of one RING-ordered map ``(Npix,)``; returns the Figure.

    Args:
        delta_i: the map, ``12 nside²`` finite values.
        title: figure title.
        unit: colour-bar label (quantity and unit).
        gradient: direction of ``∇n`` (3-vector) to mark (a gold star and ``∇n``); ``None``:
            none.
        b0: direction of the regular field (3-vector) to mark (``+B0`` and ``−B0``, black
            triangles); ``None``: none.
        symmetric: colour scale symmetric about 0 (diverging map, white at δI = 0); else the
            data's range.
        graticule_deg: spacing of the graticule in degrees (``0``: none).
    """
    import matplotlib.pyplot as plt

    delta_i = _one_map("delta_i", delta_i)
    for name, vector in (("gradient", gradient), ("b0", b0)):
        if vector is not None and (np.shape(vector) != (3,) or not np.any(vector)):
            raise ValueError(f"{name} must be a non-zero 3-vector or None, got {vector!r}")
    _validate.non_negative("graticule_deg", graticule_deg)
    extent = float(np.max(np.abs(delta_i))) or 1.0
    limits = dict(min=-extent, max=extent, cmap="RdBu_r") if symmetric else dict(cmap="viridis")
    hp.mollview(delta_i, title=title, nest=False, cbar=False, **limits)  # a new figure
    fig = plt.gcf()
    image = fig.axes[0].get_images()[0]
    bar = fig.colorbar(image, ax=fig.axes[0], orientation="horizontal", shrink=0.6,
                       pad=0.04, aspect=35)
    bar.set_label(unit)
    if graticule_deg:
        hp.graticule(dpar=graticule_deg, dmer=graticule_deg, color="0.4", alpha=0.6, lw=0.5)
    along = gradient is not None and b0 is not None and bool(
        np.dot(gradient, b0) > 0.999 * np.linalg.norm(gradient) * np.linalg.norm(b0))
    if b0 is not None:
        if not along:
            _mark(b0, r"$+B_0$", "^", "black")
        _mark(-np.asarray(b0, dtype=float), r"$-B_0$", "v", "black")
    if gradient is not None:
        _mark(gradient, r"$\nabla n \parallel +B_0$" if along else r"$\nabla n$", "*",
              "black", fill="gold")
    fig.text(0.02, 0.02, r"frame: $B_0 \parallel +\hat z$ (top), $+\hat x$ at the centre; "
             f"graticule every {graticule_deg:g}°" if graticule_deg else
             r"frame: $B_0 \parallel +\hat z$ (top), $+\hat x$ at the centre",
             fontsize=8, color="0.3")
    plt.close(fig)  # detached from pyplot: the caller saves it
    return fig


OBSERVED_LABEL = r"observed relative intensity $\delta I_{\rm obs}$ (dimensionless)"
"""Colour-bar label of an experiment's observed map (:func:`observed_sky_map`)."""


def observed_sky_map(
    observed,
    mask,
    title: str = "observed relative intensity",
    *,
    dec_range_deg: Sequence[float] | None = None,
    unit: str = OBSERVED_LABEL,
    graticule_deg: float = 30.0,
):
    """Mollweide view, in equatorial coordinates, of the relative-intensity map an experiment
    reconstructs (:func:`crsky.physics.observatory.observe_map`); returns the Figure.

    HEALPix ``θ = 90° − δ``, ``φ = α``: right ascension 0 at the centre, increasing to the left
    (healpy's astronomical convention), north up. Pixels outside the field of view are grey;
    the edges of the declination band (``dec_range_deg``) are drawn as dashed lines. Diverging
    colour scale symmetric about 0 over the field of view.

    Args:
        observed: ``δI_obs``, RING, ``(12 nside²,)`` finite values (dimensionless).
        mask: boolean field of view of the same shape (non-empty).
        title: figure title (experiment and settings).
        dec_range_deg: ``(dec_min, dec_max)`` of the band in degrees to outline; ``None``: no
            outline (the grey pixels still show the field of view).
        unit: colour-bar label (quantity and unit).
        graticule_deg: spacing of the graticule in degrees (``0``: none).
    """
    import matplotlib.pyplot as plt

    observed = _one_map("observed", observed)
    mask = np.asarray(mask)
    if mask.shape != observed.shape or mask.dtype != bool or not mask.any():
        raise ValueError("mask must be a non-empty boolean map of the shape of observed")
    if dec_range_deg is not None:
        if np.shape(dec_range_deg) != (2,):
            raise ValueError(f"dec_range_deg must be (dec_min, dec_max), got {dec_range_deg!r}")
        observatory.check_declination_range(*(float(d) for d in dec_range_deg))
    _validate.non_negative("graticule_deg", graticule_deg)
    extent = float(np.max(np.abs(observed[mask]))) or 1.0
    shown = np.where(mask, observed, hp.UNSEEN)  # healpy greys UNSEEN pixels
    hp.mollview(shown, title=title, nest=False, cbar=False, min=-extent, max=extent,
                cmap="RdBu_r", badcolor="0.75", bgcolor="white")  # a new figure
    fig = plt.gcf()
    image = fig.axes[0].get_images()[0]
    bar = fig.colorbar(image, ax=fig.axes[0], orientation="horizontal", shrink=0.6,
                       pad=0.04, aspect=35)
    bar.set_label(unit)
    bar.set_ticks(np.linspace(-extent, extent, 5))
    bar.ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # ×10^k at the end
    if graticule_deg:
        hp.graticule(dpar=graticule_deg, dmer=graticule_deg, color="0.4", alpha=0.6, lw=0.5)
    if dec_range_deg is not None:
        ra = np.linspace(0.0, 360.0, 721)
        for dec in dec_range_deg:
            if abs(float(dec)) < 90:  # a pole is a point, not an edge
                hp.projplot(ra, np.full(ra.size, float(dec)), lonlat=True, color="black",
                            lw=1.2, ls="--")
    note = "equatorial frame: RA 0 at the centre, increasing to the left; grey: outside the " \
        "field of view"
    fig.text(0.02, 0.02, note + (f"; graticule every {graticule_deg:g}°" if graticule_deg
                                 else ""), fontsize=8, color="0.3")
    plt.close(fig)  # detached from pyplot: the caller saves it
    return fig
