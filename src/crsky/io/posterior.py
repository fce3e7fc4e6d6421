"""Posterior files: the ArviZ ``InferenceData`` as NetCDF (``posterior.nc``) and the summary as
JSON (``summary.json``)."""

import json
from pathlib import Path

from crsky.io.text import to_builtin


def write_posterior(idata, summary: dict, out_dir) -> dict[str, Path]:
    """Write ``posterior.nc`` and ``summary.json`` into the new folder ``out_dir``.

    ``out_dir`` must not exist yet (``FileExistsError`` otherwise); it is created. Returns
    ``{"posterior": path, "summary": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    paths = {"posterior": out_dir / "posterior.nc", "summary": out_dir / "summary.json"}
    idata.to_netcdf(str(paths["posterior"]), engine="h5netcdf")
    paths["summary"].write_text(json.dumps(to_builtin(summary), indent=2, allow_nan=True) + "\n")
    return paths
