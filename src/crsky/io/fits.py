"""HEALPix maps as FITS files (healpy's format, RING ordering) with self-describing headers."""

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import healpy as hp
import numpy as np

from crsky import __version__, _validate
from crsky.physics import spectra

_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")
# written by healpy.write_map itself; a caller may not override them
_RESERVED = {"PIXTYPE", "ORDERING", "NSIDE", "FIRSTPIX", "LASTPIX", "INDXSCHM", "OBJECT",
             "COORDSYS", "TTYPE1", "TUNIT1", "TFORM1", "XTENSION", "BITPIX", "NAXIS", "NAXIS1",
             "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS", "EXTNAME", "POLCCONV"}


def _header_cards(header: Mapping) -> list[tuple]:
    """``[(KEYWORD, value, comment), ...]`` from ``{keyword: value | (value, comment)}``."""
    cards = []
    for key, entry in header.items():
        if not isinstance(key, str) or not _KEYWORD.match(key):
            raise ValueError(
                f"header keyword {key!r} must be 1-8 characters of A-Z, 0-9, '_' or '-'"
            )
        if key in _RESERVED:
            raise ValueError(f"header keyword {key!r} is written by healpy; choose another")
        value, comment = entry if isinstance(entry, tuple) else (entry, "")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"header {key} must be a string, number or bool, got {value!r}")
        if isinstance(value, float):
            _validate.finite(f"header {key}", value)
        cards.append((key, value, str(comment)))
    return cards


def write_fits(
    path: str | Path,
    maps,
    *,
    overwrite: bool = False,
    column_names: Sequence[str] | None = None,
    column_units: Sequence[str] | str | None = None,
    header: Mapping | None = None,
) -> Path:
    """Write RING-ordered map(s) ``(Npix,)`` or ``(k, Npix)`` to a FITS file (healpy.write_map).

    Args:
        path: the file to write.
        maps: one map or ``k`` maps of ``12 nside²`` finite values.
        overwrite: replace an existing file.
        column_names, column_units: one per map (``TTYPEn`` / ``TUNITn``); a single unit
            string applies to every map.
        header: extra keywords of the map extension, ``{KEYWORD: value}`` or
            ``{KEYWORD: (value, comment)}`` (FITS keywords: at most 8 characters of A-Z, 0-9,
            ``_``, ``-``; not those healpy writes itself). ``CREATOR`` (crsky and its version)
            is always added.

    Read back with ``healpy.read_map(path, field=None, h=True)`` (maps and header) or
    ``astropy.io.fits.getheader(path, 1)``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim not in (1, 2):
        raise ValueError(f"maps must have shape (Npix,) or (k, Npix), got {maps.shape}")
    spectra.nside_from_npix(maps.shape[-1], "maps")
    _validate.finite("maps", maps)
    k = 1 if maps.ndim == 1 else maps.shape[0]
    for name, given in (("column_names", column_names), ("column_units", column_units)):
        if given is not None and not isinstance(given, str) and len(given) != k:
            raise ValueError(f"{name} must have one entry per map ({k}), got {len(given)}")
    if isinstance(column_names, str):
        raise ValueError("column_names must be a sequence of names, one per map")
    cards = _header_cards({"CREATOR": (f"crsky {__version__}", "software")} | dict(header or {}))
    path = Path(path)
    hp.write_map(
        str(path), maps, nest=False, overwrite=overwrite, dtype=np.float64,
        column_names=None if column_names is None else list(column_names),
        column_units=column_units, extra_header=cards,
    )
    return path
