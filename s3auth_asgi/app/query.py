"""Reading a query string into a Struct (the pages' `after`, `limit`, `search`). Whatever is
wrong with it is a 422 `validation_error` naming the parameter, read before the store is:
a query string is no body, so none of `body`'s 400 `malformed_body`.

A parameter given twice is refused, as a field of a body is: a decoder keeps the last, and
a proxy or cache in front that reads the first would see another page than the app does.

An integer parameter is ASCII decimal digits only, leading zeros allowed, as the OpenAPI
document's `type: integer` writes one: no sign, exponent, fraction, spaces, other
scripts' digits or other bases, which a lenient reading (`1e3`, `5.0`) would take as
another number than a strict reader in front of the app sees.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec.inspect
from starlette.requests import Request

from ..errors import S3ValidationError
from ..json_names import RepeatedName, unique_members
from ..problems import echoed
from .body import convert

T = TypeVar("T")

_CONTEXT = "Invalid query parameter"
_INT64_DIGITS = 19
"""Above this many significant digits a number is out of any integer field's range (and
`int()` refuses thousands of them), so its digits are not converted."""
_INTEGER_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def parse_query(request: Request, type_: type[T]) -> T:
    try:
        fields = unique_members(request.query_params.multi_items())
    except RepeatedName as repeated:
        name = echoed(repeated.name)
        raise S3ValidationError(f"The query parameter {name!r} is given more than once") from None
    typed: dict[str, Any] = dict(fields)
    for name in _integer_fields(type_):
        if name in fields:
            typed[name] = query_integer(name, fields[name])
    return convert(typed, type_, _CONTEXT)


def query_integer(name: str, text: str) -> int:
    """The integer query parameter `name`, written as `text`; S3ValidationError if it is not
    ASCII decimal digits, or out of any integer field's range (its bounds are the Struct's
    to check)."""
    if not (text.isascii() and text.isdigit()):
        raise S3ValidationError(
            f"{_CONTEXT}: Expected an integer in ASCII decimal digits - at `$.{name}`"
        )
    significant = text.lstrip("0") or "0"
    if len(significant) > _INT64_DIGITS:
        raise S3ValidationError(f"{_CONTEXT}: Integer value out of range - at `$.{name}`")
    return int(significant)


def _integer_fields(type_: type[Any]) -> tuple[str, ...]:
    """The names of `type_`'s fields that hold an integer (or None)."""
    names = _INTEGER_FIELDS.get(type_)
    if names is None:
        info = msgspec.inspect.type_info(type_)
        assert isinstance(info, msgspec.inspect.StructType)
        names = tuple(field.encode_name for field in info.fields if _is_integer(field.type))
        _INTEGER_FIELDS[type_] = names
    return names


def _is_integer(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _is_integer(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        members = [m for m in info.types if not isinstance(m, msgspec.inspect.NoneType)]
        return all(_is_integer(member) for member in members)
    return isinstance(info, msgspec.inspect.IntType)
