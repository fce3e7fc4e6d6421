"""The package's tiers: each module imports crsky only from its own tier or the tiers before it
(physics → inference → io → pipelines → plotting → cli), at module level, so no upward
dependency hides in a function body. Reference: the import statements themselves (``ast``)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "crsky"
TIERS = ("physics", "inference", "io", "pipelines", "plotting", "cli")
SHARED = {"crsky", "crsky._validate", "crsky.resources"}  # version, input checks, built-in files


def tier(module: str) -> int | None:
    parts = module.split(".")
    return TIERS.index(parts[1]) if len(parts) > 1 and parts[1] in TIERS else None


def crsky_imports(path: Path):
    """(line, imported module, at module level?) of every crsky import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crsky"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            yield node.lineno, max(names, key=lambda n: tier(n) or -1), id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("crsky"):
                    yield node.lineno, alias.name, id(node) in top


def test_no_module_imports_from_a_later_tier():
    upward = []
    for path in SRC.rglob("*.py"):
        module = ".".join(("crsky", *path.relative_to(SRC).with_suffix("").parts))
        own = tier(module)
        for line, imported, _ in crsky_imports(path):
            other = tier(imported)
            if own is not None and other is not None and other > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {imported}")
            if own is None and module not in SHARED | {"crsky.__init__", "crsky.__main__"}:
                upward.append(f"{path.relative_to(SRC)} is in no tier")
    assert not upward, "\n".join(upward)


def test_library_imports_are_at_module_level():
    """Outside the command line (whose commands import their work lazily so that ``crsky
    --help`` starts fast), crsky imports stand at the top of the module."""
    hidden = [
        f"{path.relative_to(SRC)}:{line} imports {imported} inside a function"
        for path in SRC.rglob("*.py") if "cli" not in path.relative_to(SRC).parts
        for line, imported, top in crsky_imports(path) if not top
    ]
    assert not hidden, "\n".join(hidden)
