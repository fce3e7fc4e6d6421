"""Sky maps: Mollweide views of HEALPix relative-intensity maps."""

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.physics import spectra


def sky_map(delta_i, title: str = r"relative intensity $\delta I$"):
    """Mollweide view (healpy.mollview) of one RING-ordered map ``(Npix,)``; returns the Figure."""
    import matplotlib.pyplot as plt

    delta_i = np.asarray(delta_i, dtype=float)
    if delta_i.ndim != 1:
        raise ValueError(f"delta_i must be one map of shape (Npix,), got {delta_i.shape}")
    spectra.nside_from_npix(delta_i.size, "delta_i")
    _validate.finite("delta_i", delta_i)
    hp.mollview(delta_i, title=title, nest=False)  # opens a new figure of its own size
    fig = plt.gcf()
    plt.close(fig)
    return fig
