"""The project carries its own docs: README.md stays short, and every relative link in README.md and docs/*.md, and
every docs/*.md the code cites, is a file of this repository (and a #section of a Markdown file is one of its
headings)."""

import re
from pathlib import Path

import pytest

ROOT = next(folder for folder in Path(__file__).resolve().parents if (folder / "pyproject.toml").exists())
README_MAX_LINES = 200
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_DIRS = ["layers", "functions", "cli", "local", "buildtools", "bench", "tests"]
CITED_DOC = re.compile(r"\bdocs/[\w.-]+\.(?:md|json)\b")


def _prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchor(heading: str) -> str:
    """GitHub's id of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in _prose(path) if re.match(r"^#{1,6} ", line)}


def _relative_links(path: Path) -> list[str]:
    links = [target for line in _prose(path) for target in LINK.findall(re.sub(r"`[^`]*`", "", line))]
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link)]  # http:, https:, mailto:


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for link in _relative_links(document):
        target, _, section = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif section and path.suffix == ".md" and section not in _anchors(path):
            broken.append(f"{link}: no heading #{section} in {path.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)}: {broken}"


def test_every_doc_the_code_cites_exists() -> None:
    cited = {}
    for directory in CODE_DIRS:
        for source in sorted((ROOT / directory).rglob("*.py")) if (ROOT / directory).is_dir() else []:
            for name in CITED_DOC.findall(source.read_text(encoding="utf-8")):
                cited.setdefault(name, str(source.relative_to(ROOT)))
    for extra in ("Makefile", "template.yaml"):
        for name in CITED_DOC.findall((ROOT / extra).read_text(encoding="utf-8")):
            cited.setdefault(name, extra)
    missing = {name: where for name, where in cited.items() if not (ROOT / name).exists()}
    assert not missing, f"cited but not in the repository: {missing}"


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.MULTILINE)
    assert phony
    described = set(re.findall(r"^([a-z-]+):.*## ", makefile, re.MULTILINE))  # what `make help` prints
    assert set(phony.group(1).split()) - described == set()
