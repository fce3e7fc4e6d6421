"""Files that ship with crsky: simulation configurations, inference run files and data tables.

They live in the repository's ``configs/``, ``inference/`` and ``data/`` folders and travel in
the installed package as ``crsky.resources.configs``, ``crsky.resources.inference`` and
``crsky.resources.data``, read through :mod:`importlib.resources`, so every command works from
any directory after a plain ``pip install``.

A built-in file is named without folder or suffix: ``"reduced"`` is the simulation
configuration ``configs/reduced.toml``, ``"milagro_beam"`` the inference run file
``inference/milagro_beam.toml``. Anything else is taken as a path.
"""

from importlib.resources import files
from pathlib import Path

KINDS = {
    "config": ("crsky.resources.configs", ".toml"),
    "run_file": ("crsky.resources.inference", ".toml"),
    "data": ("crsky.resources.data", ""),
}


def folder(kind: str) -> Path:
    """The installed folder of one kind of resource (``"config"``, ``"run_file"``, ``"data"``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    # pip installs packages unpacked, so the resource folder is a real directory
    return Path(str(files(KINDS[kind][0])))


def names(kind: str) -> list[str]:
    """The built-in names of one kind of resource, sorted (``names("config")``)."""
    root, suffix = folder(kind), KINDS[kind][1]
    return sorted(
        p.name.removesuffix(suffix) for p in root.iterdir()
        if p.is_file() and p.name.endswith(suffix) and not p.name.startswith((".", "_"))
    )


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """The file a user means by ``name_or_path``: a built-in name (``"paper"``) or a path.

    Raises ``ValueError`` naming the argument, the built-in names and the path tried when it is
    neither.
    """
    text = str(name_or_path)
    builtin = folder(kind) / (text + KINDS[kind][1])
    if "/" not in text and "\\" not in text and builtin.is_file():
        return builtin
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise ValueError(
        f"{kind.replace('_', ' ')} {text!r} is neither a built-in name "
        f"({', '.join(names(kind))}) nor an existing file"
    )
