"""Reading request bodies into Structs (`convert` serves `query` as well), with a clear 4xx
for every way they can be wrong: too large (413), an unsupported content type, charset or
coding (415), unreadable JSON or form encoding, a Content-Length or a Content-Type given
twice and a field given twice (400), missing, mistyped or unknown fields (422). Never a
500.

What the headers decide is refused before the body is received: a Content-Length too
large or given wrong, and a body of a type the operation does not read, in a charset other
than UTF-8 or in a content coding (a client that sent `Expect: 100-continue` is answered
without being asked for it). Those headers are read and judged in `body_headers`.

A body nested deeper than `MAX_JSON_DEPTH` is refused (400) before it is decoded: no request
of this app needs more than a few levels, and a decoder walking thousands of them runs out
of stack.

A field given twice is refused, in JSON (at any depth) and forms alike: decoders keep the
last, and a proxy or firewall in front that reads the first would see another user,
password or flag than the app does.

A body of an OAuth2 token endpoint whose `grant_type` is not the endpoint's is refused as
such (400 `unsupported_grant_type`) whatever else is wrong with it: another grant's body
lacks this one's fields, and RFC 6749 §5.2 has the client told of the grant type.

A form's field names are not quoted unless they are the form's own (`decode_form`): JSON
sent as a form (`curl -d`'s default type) is one field named by the whole text, password
and all, and a password with an `&` left unencoded makes its tail the name of a field.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import ClientDisconnect, Request

from ..errors import S3ValidationError
from ..json_names import RepeatedName, check_unique_names, unique_members
from ..problems import echoed
from .body_headers import check_labels, declared_length, declared_type, media_type
from .errors import (
    BodyTooLargeError,
    MalformedBodyError,
    UnsupportedGrantTypeError,
    UnsupportedMediaTypeError,
)

T = TypeVar("T")

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 32
MAX_JSON_DEPTH = 32
"""The deepest nesting of arrays and objects in a JSON body, the body itself being the first
level: far above what any request, its profile included, needs, far below where a decoder's
recursion gives out."""

# A JSON string, whose brackets are text; an escape is skipped whole, so an escaped quote
# does not end it. An unterminated string runs to the end: a decoder stops there, and a
# closing quote that must match cannot make the search go back and rescan (quadratic time).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def is_json(kind: str | None) -> bool:
    return kind is not None and (kind == JSON_MEDIA_TYPE or kind.endswith("+json"))


class _Grant(msgspec.Struct):
    grant_type: Any = None


def check_grant_type(type_: type[Any], grant_type: object) -> None:
    """UnsupportedGrantTypeError when `type_` is a token request (it names the
    `accepted_grant_type`) and `grant_type` is another one."""
    accepted = getattr(type_, "accepted_grant_type", None)
    if accepted is not None and isinstance(grant_type, str) and grant_type != accepted:
        raise UnsupportedGrantTypeError(f"Use grant_type={accepted} here")


class BodyReader:
    """Reads at most `max_bytes` of a body and decodes it as one Struct type."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

    def declares_body(self, request: Request) -> bool:
        """Whether the headers say a body follows: a Content-Length above 0, or a
        Transfer-Encoding (RFC 9112 §6.3). Checked before a byte is read: a Content-Length
        over `max_bytes` is refused (413; a liar is caught by the count in `_read`), and so
        is one that is no number (400)."""
        declared = declared_length(request)
        if declared is None:
            return "transfer-encoding" in request.headers
        significant = self._significant_digits(declared)
        if len(significant) > len(str(self.max_bytes)) or int(significant) > self.max_bytes:
            raise self._too_large()
        return significant != "0"

    async def _read(self, request: Request) -> bytes:
        """The body, refused as soon as it passes `max_bytes`: for `parse`, which has asked
        `declares_body` first (the early 413 and 400 are there)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large()
                chunks.append(chunk)
        except ClientDisconnect:
            raise MalformedBodyError("The client disconnected before sending the body") from None
        return b"".join(chunks)

    @staticmethod
    def _significant_digits(content_length: str) -> str:
        """A Content-Length header's digits without leading zeros; MalformedBodyError if it
        is not a number. It may have any number of digits (RFC 9110 §8.6), and `int`
        refuses thousands of them, so a long one is compared by its length."""
        digits = content_length.strip()
        if not (digits.isascii() and digits.isdecimal()):
            raise MalformedBodyError("The Content-Length header is not a number")
        return digits.lstrip("0") or "0"

    def _too_large(self) -> BodyTooLargeError:
        return BodyTooLargeError(f"The request body must be at most {self.max_bytes} bytes")

    async def parse(
        self, request: Request, type_: type[T], *, form: bool = False, optional: bool = False
    ) -> T:
        """The body as `type_`. `form`: an urlencoded form is accepted besides JSON (the
        OAuth2 endpoints). `optional`: an empty body means every field at its default."""
        content_type = declared_type(request)
        kind = media_type(content_type)
        readable = is_json(kind) or (form and kind == FORM_MEDIA_TYPE)
        # A body of another type is refused from the headers, before it is asked for: a
        # client waiting for `100 Continue` does not send it. An empty one is read, and
        # answered as the empty body it is.
        declared = self.declares_body(request)
        if declared:
            if not readable:
                raise _unsupported(kind, form)
            check_labels(request, content_type)
        body = await self._read(request)
        if not body.strip():
            if optional:
                return type_()
            raise MalformedBodyError("The request body is empty")
        if not declared:  # HTTP/2 and /3 frame a body with neither header: judged now
            check_labels(request, content_type)
        if is_json(kind):
            return self.decode_json(body, type_)
        if form and kind == FORM_MEDIA_TYPE:
            return decode_form(body, type_)
        raise _unsupported(kind, form)

    def decode_json(self, body: bytes, type_: type[T]) -> T:
        if nesting_depth(body) > MAX_JSON_DEPTH:
            raise MalformedBodyError(
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep"
            )
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = msgspec.json.Decoder(type_)
        try:
            value: T = decoder.decode(body)
        except msgspec.ValidationError as exc:  # before DecodeError: it is a subclass
            check_grant_type(type_, _json_grant_type(body))
            raise S3ValidationError(f"Invalid request body: {_said(exc)}") from None
        except msgspec.DecodeError as exc:
            raise MalformedBodyError(f"The request body is not valid JSON: {exc}") from None
        try:
            check_unique_names(body)
        except RepeatedName as exc:
            name = echoed(exc.name)
            raise MalformedBodyError(f"The request body gives the member {name!r} twice") from None
        except ValueError as exc:
            raise MalformedBodyError(f"The request body could not be read: {exc}") from None
        check_grant_type(type_, getattr(value, "grant_type", None))
        return value


def _unsupported(kind: str | None, form: bool) -> UnsupportedMediaTypeError:
    accepted = f"{JSON_MEDIA_TYPE} or {FORM_MEDIA_TYPE}" if form else JSON_MEDIA_TYPE
    sent = f"got {echoed(kind)}" if kind else "no Content-Type was given"
    return UnsupportedMediaTypeError(f"Send {accepted} ({sent})")


def _json_grant_type(body: bytes) -> object:
    """The `grant_type` of a JSON body its Struct refused; None where it has none, or is
    no object, or turns out not to be JSON past the point where the Struct gave up."""
    try:
        return msgspec.json.decode(body, type=_Grant).grant_type
    except msgspec.DecodeError:  # ValidationError too: a subclass
        return None


def nesting_depth(document: bytes) -> int:
    """How deep arrays and objects nest in `document`, 0 for a scalar. Exact for valid JSON;
    for invalid JSON, exact up to the first error, which is as far as a decoder gets."""
    brackets = _JSON_STRING.sub(b"", document).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for bracket in brackets:
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def decode_form(body: bytes, type_: type[T]) -> T:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedBodyError(
            f"The form is not valid UTF-8 {FORM_MEDIA_TYPE} (at most {MAX_FORM_FIELDS} fields)"
        ) from None
    struct: Any = type_
    taken = [field.encode_name for field in msgspec.structs.fields(struct)]
    fields = _unique_fields(pairs, taken)
    check_grant_type(type_, fields.get("grant_type"))
    if struct.__struct_config__.forbid_unknown_fields:
        _refuse_other_fields(fields, taken, body)
    return convert(fields, type_, "Invalid form")


def _refuse_other_fields(fields: dict[str, str], taken: list[str], body: bytes) -> None:
    """S3ValidationError for a field the form does not take, naming the fields it takes,
    never the one sent (see the module)."""
    others = [name for name in fields if name not in taken]
    if not others:
        return
    if body.lstrip()[:1] in (b"{", b"["):
        hint = f" (JSON is sent as {JSON_MEDIA_TYPE})"
    else:
        close = difflib.get_close_matches(others[0], taken, n=1)
        hint = f" (`{close[0]}`?)" if close else ""
    raise S3ValidationError(
        f"Invalid form: it has a field it does not take{hint}; it takes {', '.join(taken)}"
    )


def _unique_fields(pairs: list[tuple[str, str]], taken: list[str]) -> dict[str, str]:
    """A form's `pairs` as a mapping; MalformedBodyError for a name given twice, quoted if
    `taken` (the names the form takes) holds it."""
    try:
        return unique_members(pairs)
    except RepeatedName as repeated:
        if repeated.name not in taken:
            raise MalformedBodyError(
                "A form field it does not take is given more than once"
            ) from None
        name = echoed(repeated.name)
        raise MalformedBodyError(f"The form field {name!r} is given more than once") from None


def convert(fields: dict[str, str], type_: type[T], context: str) -> T:
    """Strings from a form or query string into `type_` (numbers and booleans parsed)."""
    try:
        return msgspec.convert(fields, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise S3ValidationError(f"{context}: {_said(exc)}") from None


def _said(exc: msgspec.ValidationError) -> str:
    """What msgspec said, which may quote the input (a member's name no Struct has, a value
    no Literal allows), bounded; the path it ends with (`- at `$.email``) is the Struct's
    own, kept whole."""
    said, at, path = str(exc).rpartition(" - at `$")
    return f"{echoed(said)}{at}{path}" if at else echoed(path)
