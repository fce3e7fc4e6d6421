"""Citations resolve: nothing points outside the repository, CITATION.cff names both papers, and
every equation number of ``docs/physics.md`` cited in the package exists on that page.

References: the tracked files themselves (``git ls-files``; a plain walk of the repository when
git is not available), the Citation File Format 1.2.0 keys that every file must have
(``cff-version``, ``message``, ``title``, ``authors``), and the arXiv numbers of the two papers
(beam paper arXiv:1005.1312; relative-diffusion journal paper arXiv:1506.05488).
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHYSICS = ROOT / "docs" / "physics.md"

# Paths outside the repository, internal notes and development history have no place in the
# package's text: users cannot follow them.
OUTSIDE = re.compile(
    r"PHYSICS\.md|OBSERVATIONS\.md|REFERENCES\.md|\.\./shared|seeds[/]|[Ss]ession [0-9]"
    r"|[Ii]ssue #?[0-9]|\bthe seed\b"
)
# An equation of the physics page cited as "docs/physics.md (B7)", "docs/physics.md (B9), (B11)"
# or "docs/physics.md (B9)-(B11)"; the numbers after the page name up to the first other text.
CITED = re.compile(r"physics\.md`?\s*((?:\(?[BR]\d+\)?(?:\s*(?:,|–|-|and)\s*)?)+)")
NUMBER = re.compile(r"([BR])(\d+)")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        names = [n for n in out.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in p.parts)]
    return [ROOT / n for n in names if not n.startswith(".ci/") and (ROOT / n).is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # figures and other binary files


def test_no_reference_outside_the_repository():
    hits = []
    for path in tracked_files():
        text = text_of(path)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_citation_cff_is_valid_and_names_both_papers():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff.get(key), f"CITATION.cff lacks {key!r}"
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    version = re.search(r'__version__ = "([^"]+)"',
                        (ROOT / "src" / "crsky" / "__init__.py").read_text()).group(1)
    assert str(cff["version"]) == version
    papers = list(cff.get("references", []))
    if "preferred-citation" in cff:
        papers.append(cff["preferred-citation"])
    text = repr(papers)
    for arxiv in ("1005.1312", "1506.05488"):
        assert f"arXiv:{arxiv}" in text, f"CITATION.cff does not name arXiv:{arxiv}"
    titles = {p["title"] for p in papers}
    assert any("Milagro" in t for t in titles)
    assert any("relative diffusion" in t for t in titles)
    for paper in papers:
        assert paper.get("authors") and paper.get("year") and paper.get("type")


def equations_on_page() -> set[str]:
    return set(re.findall(r'<a id="([BR]\d+)"></a>', PHYSICS.read_text(encoding="utf-8")))


def test_physics_page_numbers_are_consecutive():
    """(B1)…(Bn) and (R1)…(Rm) without gaps or repeats, each with one anchor."""
    anchors = re.findall(r'<a id="([BR]\d+)"></a>', PHYSICS.read_text(encoding="utf-8"))
    assert len(anchors) == len(set(anchors)), "an equation number is used twice"
    for side in "BR":
        numbers = sorted(int(a[1:]) for a in anchors if a[0] == side)
        assert numbers == list(range(1, len(numbers) + 1)), (side, numbers)


def cited_equations(text: str) -> set[str]:
    cited = set()
    for group in CITED.findall(text):
        numbers = [(s, int(n)) for s, n in NUMBER.findall(group)]
        cited.update(f"{s}{n}" for s, n in numbers)
        # a range "(B9)-(B11)" cites everything between its ends
        for (s1, a), (s2, b) in zip(numbers, numbers[1:], strict=False):
            if s1 == s2 and re.search(rf"{s1}{a}\)?\s*[–-]\s*\(?{s2}{b}\b", group):
                cited.update(f"{s1}{n}" for n in range(a, b + 1))
    return cited


def test_cited_physics_equations_exist():
    """Every "docs/physics.md (Xn)" in a tracked text file (code, tests, docs, notebooks, data)
    and every link "physics.md#Xn" names an equation of the page."""
    on_page = equations_on_page()
    assert {"B1", "R1"} <= on_page
    missing = []
    for path in tracked_files():
        text = text_of(path)
        if text is None or path == PHYSICS:
            continue
        cited = cited_equations(text) | set(re.findall(r"physics\.md#([BR]\d+)", text))
        missing += [f"{path.relative_to(ROOT)}: ({n})" for n in sorted(cited - on_page)]
    assert not missing, "equations cited but not on docs/physics.md:\n" + "\n".join(missing)


def test_citation_parser_reads_single_lists_and_ranges():
    """The parser of the test above on hand-made citations (it must not pass vacuously)."""
    assert cited_equations("# Beam paper eq. (8); docs/physics.md (B7)") == {"B7"}
    assert cited_equations("docs/physics.md (B9), (B11)") == {"B9", "B11"}
    assert cited_equations("docs/physics.md (B9)–(B11)") == {"B9", "B10", "B11"}
    assert cited_equations("(docs/physics.md (R3)) and more text (B4)") == {"R3"}
    assert cited_equations("`docs/physics.md` (R15)") == {"R15"}
