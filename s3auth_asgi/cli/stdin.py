"""What a command reads on standard input (a key, a password): its bytes, decoded here
strictly as UTF-8 rather than by the interpreter, whose decoding depends on the locale: one
that is not UTF-8 text (a DER key, a password typed in Latin-1) fails there as a bug, or,
in the C.UTF-8 locale, turns into characters the checks then misname. And at most a given
number of bytes, so that endless input is refused rather than held in memory."""

from __future__ import annotations

import codecs
import sys

from .failures import CommandError

NOT_UTF8 = "standard input is not UTF-8 text"


def read_stdin(limit: int, *, line: bool = False, not_text: str = "") -> tuple[str, bool]:
    """Standard input, or with `line` its first line (with its end of line), from at most
    `limit` bytes; and whether it goes on past them. A CommandError says when it is not
    UTF-8, followed by `not_text`."""
    stream = sys.stdin.buffer
    data = stream.readline(limit + 1) if line else stream.read(limit + 1)
    more = len(data) > limit
    # A character cut by the limit is no error: what follows it was not read.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        text = decoder.decode(data[:limit], final=not more)
    except UnicodeDecodeError:
        raise CommandError(f"{NOT_UTF8}{not_text}") from None
    return text, more
