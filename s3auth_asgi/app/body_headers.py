"""What a request's headers say of its body, read and judged before a byte of it is: its
length, its media type, its charset and its content coding.

A header given twice is refused rather than merged (`declared_length`, `declared_type`): a
server, proxy or firewall in front that went by the other copy would frame or read another
body than this app.

A body is read as UTF-8, JSON's one encoding between systems (RFC 8259 §8.1), and a
`charset` parameter naming another is refused (415, `check_charset`): read as UTF-8 anyway,
a Latin-1 password would fail as malformed, and a proxy in front that decodes by the label
would read other names and passwords than the app does. UTF-8 goes by the labels every
decoder takes for it (the WHATWG Encoding standard's: `utf-8`, `utf8`, ...), and a type
that names a charset twice is judged by each, as a proxy may go by either.

No content coding is decoded (`check_coding`): a gzip body read as it comes is no JSON, and
a plain one labelled gzip would be read as JSON that a proxy or firewall in front, which
decodes it, never sees.

Both are judged before the body is read where the headers say one follows, and once it is
read where they do not (HTTP/2 and HTTP/3 frame a body without Content-Length or
Transfer-Encoding): a body is never read past them.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from ..problems import echoed
from .errors import MalformedBodyError, UnsupportedMediaTypeError

# A media type's parameter (RFC 9110 §5.6.6): a name, and a value that is a token or a
# quoted string, in which a ";" separates nothing.
_PARAMETER = re.compile(r';\s*([^;=\s]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"?|[^;]*))?')
_QUOTED_PAIR = re.compile(r"\\(.)")


def media_type(content_type: str | None) -> str | None:
    """`application/json; charset=utf-8` → `application/json`; None when absent."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


_UTF8_LABELS = frozenset(
    ("utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8")
)
"""The labels of UTF-8 (WHATWG Encoding §4.2), which browsers, Java and Python decode alike."""


def declared_charsets(content_type: str) -> list[str]:
    """Every `charset` parameter of `content_type`, unquoted and in lower case ("" for one
    without a value), in order."""
    parameters = content_type[content_type.find(";") :] if ";" in content_type else ""
    found = []
    for match in _PARAMETER.finditer(parameters):
        if match.group(1).lower() == "charset":
            value = (match.group(2) or "").strip()
            if value.startswith('"'):
                value = _QUOTED_PAIR.sub(r"\1", value[1:].removesuffix('"'))
            found.append(value.lower())
    return found


def check_charset(content_type: str | None) -> None:
    """UnsupportedMediaTypeError when `content_type` names a charset other than UTF-8 (see
    the module)."""
    for charset in declared_charsets(content_type) if content_type else ():
        if charset not in _UTF8_LABELS:
            raise UnsupportedMediaTypeError(
                f"Send the body in UTF-8 (got charset {echoed(charset)!r})"
            )


def check_labels(request: Request, content_type: str | None) -> None:
    """UnsupportedMediaTypeError for a body in a charset other than UTF-8 or in a content
    coding (`check_charset`, `check_coding`): what a body's headers say of how to read it."""
    check_charset(content_type)
    check_coding(request)


def declared_length(request: Request) -> str | None:
    """The one Content-Length header's value, None when there is none. Two that differ
    make the message invalid (RFC 9112 §6.3): a server or proxy in front that went by the
    other would have framed another body than this one. Two that agree are refused as
    well, which RFC 9110 §8.6 allows, as `2, 2` in one header is: one rule, no merging."""
    values = request.headers.getlist("content-length")
    if len(values) > 1:
        raise MalformedBodyError("The Content-Length header is given more than once")
    return values[0] if values else None


def check_coding(request: Request) -> None:
    """UnsupportedMediaTypeError, with `Accept-Encoding: identity`, when a Content-Encoding
    names a coding (RFC 9110 §15.5.16, RFC 7694 §3); `identity` is none."""
    codings = [
        coding.strip().lower()
        for field in request.headers.getlist("content-encoding")
        for coding in field.split(",")
    ]
    named = [coding for coding in codings if coding not in ("", "identity")]
    if named:
        raise UnsupportedMediaTypeError(
            f"Send the body without a content coding (got {echoed(named[0])})",
            headers=[("Accept-Encoding", "identity")],
        )


def declared_type(request: Request) -> str | None:
    """The one Content-Type header's value, None when there is none. Given twice, it is
    refused as Content-Length is (`declared_length`): it is a single field (RFC 9110 §5.3),
    and a filter in front that went by the other header would read another body than this
    one (a form whose one field is the whole JSON text, with no username in it). So are two
    joined in one, as a proxy merges them (`text/plain, application/x+json`): no media type
    holds a comma before its parameters, and the last would be read, the first seen."""
    values = request.headers.getlist("content-type")
    if len(values) > 1 or (values and "," in values[0].split(";", 1)[0]):
        raise MalformedBodyError("The Content-Type header is given more than once")
    return values[0] if values else None
