"""The repository's text cites only its own method document, and every link into it resolves.

Files checked: those git tracks plus new ones it does not ignore, except binaries, the KITTI split
lists and the binary test fixtures.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METHOD = REPO / "docs" / "method.md"
THIS = Path(__file__).resolve()

SKIPPED_DIRS = ("depthhints/data/splits/",)
SKIPPED_FIXTURE_SUFFIXES = (".npy", ".png", ".bin")

CITATION = re.compile(r"\bSPEC\b|§|\bP-\d+\b|PLATFORM_NOTES|\b[Ii]ssue \d+\b")
METHOD_LINK = re.compile(r"method\.md#([\w-]+)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _listed_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name})


def _text_files() -> Iterator[tuple[str, list[str]]]:
    """(relative path, lines) of every checked text file."""
    for name in _listed_files():
        path = REPO / name
        if name.startswith(SKIPPED_DIRS) or path.resolve() == THIS or not path.is_file():
            continue
        if name.startswith("tests/fixtures/") and name.endswith(SKIPPED_FIXTURE_SUFFIXES):
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        yield name, text.splitlines()


def github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def method_anchors() -> set[str]:
    """Anchors of every heading in docs/method.md (repeated headings get -1, -2, ...)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in METHOD.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_github_slug():
    assert github_slug("Hint fusion") == "hint-fusion"
    assert github_slug("Quirk: `align_corners`") == "quirk-align_corners"
    assert github_slug("Disparity → depth (network)") == "disparity--depth-network"


def test_no_citations_of_material_outside_the_repository():
    hits = [
        f"{name}:{number}: {line.strip()[:120]}"
        for name, lines in _text_files()
        for number, line in enumerate(lines, 1)
        if CITATION.search(line)
    ]
    assert not hits, "cite docs/method.md#<anchor> or state the fact instead:\n" + "\n".join(hits)


def test_method_links_point_at_existing_headings():
    assert METHOD.is_file(), "docs/method.md is missing"
    anchors = method_anchors()
    broken = [
        f"{name}:{number}: method.md#{anchor}"
        for name, lines in _text_files()
        for number, line in enumerate(lines, 1)
        for anchor in METHOD_LINK.findall(line)
        if anchor not in anchors
    ]
    assert not broken, "no such heading in docs/method.md:\n" + "\n".join(broken)
