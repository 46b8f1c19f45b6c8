"""Unique member names: the one JSON rule that Python's decoders do not check.

RFC 8259 §4 says the names within an object SHOULD be unique, and leaves what a parser does
with a repeated one to the parser: msgspec, like every Python JSON decoder, keeps the last
silently. Where a document crosses components (a token's header and claims, a request
body behind a gateway that reads the first), two parsers may then see two different
values for one name, so this package refuses such documents. The check is the standard
library's decoder with a hook that sees each object's member list before it becomes a
dict; what it cannot read (nesting too deep, an integer too long, text that is not UTF-8)
cannot be checked, and is refused too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


class RepeatedName(ValueError):
    """An object of the document (or a form, a query string) names a member twice."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the name {name!r} occurs twice in one object")
        self.name = name


def unique_members(pairs: Iterable[tuple[str, T]]) -> dict[str, T]:
    """The pairs as a dict; RepeatedName if a name occurs twice."""
    members: dict[str, T] = {}
    for name, value in pairs:
        if name in members:
            raise RepeatedName(name)
        members[name] = value
    return members


_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=unique_members)


def check_unique_names(data: bytes) -> None:
    """Return if every object in `data` (JSON that a strict decoder accepted) names each
    member once. RepeatedName if one does not; ValueError if `data` cannot be checked."""
    try:
        _PAIRS_DECODER.decode(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deep to check") from None
