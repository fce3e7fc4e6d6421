"""crsky.io.fits: HEALPix maps with self-describing headers, read back by healpy and astropy
(the readers of the field; astropy is a dependency of healpy)."""

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits as afits

from crsky import __version__
from crsky.io.fits import write_fits


def test_header_keywords_read_back_with_healpy_and_astropy(tmp_path):
    rng = np.random.default_rng(0)
    dmap = rng.normal(size=hp.nside2npix(4))
    path = write_fits(tmp_path / "m.fits", dmap, column_names=["DELTA_I"], column_units="K",
                      header={"TOMEGA": (300.0, "back-tracking time"), "GRADDIR": "parallel",
                              "REALIS": np.int64(3)})
    values, header = hp.read_map(path, h=True)
    np.testing.assert_array_equal(values, dmap)  # float64, bit for bit
    header = dict(header)
    assert header["TOMEGA"] == 300.0 and header["GRADDIR"] == "parallel"
    assert header["REALIS"] == 3 and header["ORDERING"] == "RING"
    assert header["TTYPE1"] == "DELTA_I" and header["TUNIT1"] == "K"
    assert header["CREATOR"] == f"crsky {__version__}"
    card = afits.getheader(path, 1)
    assert card.comments["TOMEGA"] == "back-tracking time"
    assert card["NSIDE"] == 4


def test_several_maps_and_one_unit(tmp_path):
    maps = np.arange(2 * 48, dtype=float).reshape(2, 48)
    path = write_fits(tmp_path / "two.fits", maps, column_names=["A", "B"], column_units="Lc")
    np.testing.assert_array_equal(hp.read_map(path, field=None), maps)
    header = afits.getheader(path, 1)
    assert (header["TTYPE2"], header["TUNIT2"]) == ("B", "Lc")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"header": {"toolongkey": 1}}, "header keyword 'toolongkey'"),
    ({"header": {"NSIDE": 8}}, "'NSIDE' is written by healpy"),
    ({"header": {"X": [1, 2]}}, "header X must be a string, number or bool"),
    ({"header": {"X": float("nan")}}, "header X"),
    ({"column_names": ["A", "B"]}, "column_names must have one entry per map"),
    ({"column_names": "A"}, "column_names must be a sequence"),
])
def test_bad_header_raises_before_writing(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_fits(tmp_path / "bad.fits", np.zeros(48), **kwargs)
    assert not (tmp_path / "bad.fits").exists()
