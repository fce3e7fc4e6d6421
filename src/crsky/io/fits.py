"""HEALPix maps as FITS files (healpy's format, RING ordering)."""

from pathlib import Path

import healpy as hp
import numpy as np

from crsky import _validate
from crsky.physics import spectra


def write_fits(path: str | Path, maps, *, overwrite: bool = False) -> Path:
    """Write RING-ordered map(s) ``(Npix,)`` or ``(k, Npix)`` to a FITS file (healpy.write_map).

    Read back with ``healpy.read_map(path, field=None)``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim not in (1, 2):
        raise ValueError(f"maps must have shape (Npix,) or (k, Npix), got {maps.shape}")
    spectra.nside_from_npix(maps.shape[-1])
    _validate.finite("maps", maps)
    path = Path(path)
    hp.write_map(str(path), maps, nest=False, overwrite=overwrite, dtype=np.float64)
    return path
