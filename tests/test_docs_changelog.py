"""CHANGELOG.md keeps Keep a Changelog's shape: in each version's section every kind of
change has at most one heading, in the order the format gives, and no entry is there
twice, so that a reader upgrading finds each change once, where its kind says."""

from __future__ import annotations

import re
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
KINDS = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]


def sections() -> dict[str, list[str]]:
    """Each version's section (`## [Unreleased]`, `## [1.0.0] - …`) and its lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in CHANGELOG.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = found.setdefault(line, [])
        elif current is not None:
            current.append(line)
    return found


def entries(lines: list[str]) -> list[str]:
    """The section's entries, each with its wrapped lines joined."""
    joined: list[str] = []
    for line in lines:
        if line.startswith("- "):
            joined.append(line[2:])
        elif line.startswith("  ") and joined:
            joined[-1] += " " + line.strip()
    return [" ".join(entry.split()) for entry in joined]


def test_each_kind_of_change_has_one_heading_in_order() -> None:
    found = sections()
    assert "## [Unreleased]" in found
    for version, lines in found.items():
        headings = [line[4:] for line in lines if line.startswith("### ")]
        assert all(h in KINDS for h in headings), f"{version}: {headings}"
        assert headings == sorted(set(headings), key=KINDS.index), f"{version}: {headings}"


def test_no_entry_is_there_twice() -> None:
    for version, lines in sections().items():
        seen = entries(lines)
        twice = {entry[:80] for entry in seen if seen.count(entry) > 1}
        assert not twice, f"{version}: {sorted(twice)}"
        assert all(re.match(r"\S", entry) for entry in seen)
