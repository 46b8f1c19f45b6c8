"""What `--json` prints: one JSON array, an item a line, written whole once every item is at
hand. Stdout then holds a complete document or, when the command fails, nothing (its exit
code and stderr say what failed): a script reading it never takes a prefix for the whole."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import msgspec


class JsonArray:
    """Items encoded as they come (a listing's pages, say), printed as one array by `write`.

    They are held as encoded bytes, not as objects, until then: 100,000 users take some tens
    of MB, and as much again for the moment the text is written, which a command run by an
    operator can afford; streaming them instead would leave half an array on a failure."""

    def __init__(self, items: Iterable[object] = ()) -> None:
        self._encoded: list[bytes] = []
        self.extend(items)

    def extend(self, items: Iterable[object]) -> None:
        self._encoded.extend(msgspec.json.encode(item) for item in items)

    def write(self, out: TextIO) -> None:
        """The array on `out` in one write: `[]`, or `[`, each item on a line, `]`."""
        if not self._encoded:
            out.write("[]\n")
            return
        out.write(b"".join((b"[\n", b",\n".join(self._encoded), b"\n]\n")).decode())
