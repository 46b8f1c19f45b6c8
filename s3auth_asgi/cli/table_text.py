"""How the command writes what a record holds: a moment as ISO 8601 in UTC, text with what
a terminal would act on spelt out (every table, message, finding and failure line)."""

from __future__ import annotations

import datetime as dt


def iso(moment: float | None) -> str | None:
    """`moment` in ISO 8601, UTC, to the second: `2026-12-02T03:28:02Z`."""
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def printable(text: str) -> str:
    """`text` with each character a terminal would act on (escapes, carriage returns,
    bidirectional overrides) spelt as a Python escape: a stored record may hold anything."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
