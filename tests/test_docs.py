"""README is a short front door and every link in it and in docs/ leads somewhere: a file of the
repository, or a heading of one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def broken_links(doc: Path) -> list[str]:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: outside the repository
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_link_of_readme_and_docs_resolves():
    assert len(DOCS) >= 5
    found = {doc.name: broken_links(doc) for doc in DOCS}
    assert not any(found.values()), found


def test_the_checker_finds_a_broken_file_and_a_broken_heading(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Title here\n[ok](#title-here) [gone](missing.md) [bad](#nowhere) ![pic](a.md)\n")
    assert broken_links(doc) == ["missing.md: no such file", "#nowhere: no such heading"]


def test_readme_is_a_short_front_door_with_a_picture_of_every_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 120
    for page in ("board_player", "probe_viewer", "logit_lens", "sae_browser", "patching_lab"):
        assert f"docs/img/page_{page}.png" in text, page
    for doc in ("pages", "models", "deploy", "benchmarks"):
        assert f"](docs/{doc}.md)" in text, doc
