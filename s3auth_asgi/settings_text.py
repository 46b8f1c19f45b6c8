"""How the text of an `S3AUTH_*` variable becomes the value of its setting (`read_variable`):
one spelling of each value, any other text refused naming the variable and saying what it
takes, rather than read as something the operator did not write.

A whole number is written in ASCII digits, with a minus sign for a negative one (`-0` is 0),
and without leading zeros: no fraction or exponent, which a double reads and rounds
(`1440.0000000000001` is 1440.0, past the most of 1440 minutes; `1e-400` is 0), no `+`, `_`
or digits of another script. Any other number is written as JSON writes one (`0.5`, `5e-1`),
and is refused when it is too small for a double, which reads it as 0 (as
S3AUTH_AUDIT_RETENTION_DAYS, 0 keeps no events at all), or is not finite. A boolean is
`true` or `false` in any case, or `1` or `0` (`read_bool`, by which S3AUTH_DEBUG is read as
well), and nothing else: not `yes`, `on` or an empty text. A choice is one of its values as
listed (`nist`, not `NIST`). Each of these has a value when unset, and an empty variable
says none: it is refused, as it would be read by no rule. Lists are comma-separated, ASCII
spaces around an item ignored, an empty item dropped (but refused in
S3AUTH_PASSWORD_CONTEXT_WORDS, `context_words`: a word lost there is a password rule
unset); S3AUTH_SECRET_KEY_FALLBACKS is also read as a JSON array of strings when it begins
with `[`, for a key that holds a comma (`settings_fallbacks`). A text setting whose default
is None takes the empty text as None (unset); any other text is taken as it is, and judged
by the setting's own check (`settings_checks`): an empty S3AUTH_STORE_URL is refused, not
read as its default, `memory://`, which would lose every account with the process. Every
text but a path's is UTF-8 (`check_utf8`).
"""

from __future__ import annotations

import re
import string
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from .errors import ConfigurationError
from .settings_env import env_name
from .settings_fallbacks import FIELD as FALLBACKS
from .settings_fallbacks import json_form, read_json_form
from .settings_ranges import RANGES, out_of_range, within

BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
"""A boolean's spellings, each in any case."""
LIST_FIELDS = (
    "trusted_proxies",
    "allowed_origins",
    "password_context_words",
    FALLBACKS,
)
"""Read from comma-separated variables."""
EMPTY_ITEMS_KEPT = ("password_context_words",)
"""Lists whose empty items are kept, for the setting's check to refuse."""
SPACES = string.whitespace
"""What may surround an item of a list: ASCII's spaces only. `str.strip()` takes a no-break
space, or any other script's, for one too, though no parser that reads the item does."""

PATH_FIELDS = (
    "store_url",
    "jwks_publish_url",
    "signing_key_file",
    "verification_keys_file",
    "mail_outbox",
)
"""Settings that name a file or a directory (a `file://` URL's path included), whose name may
be any bytes: one that is not UTF-8 reaches Python as lone surrogates, which open() gives
back as the same bytes. Every other text is held to UTF-8 (`check_utf8`)."""

_WHOLE = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)
_NUMBER = re.compile(r"-?(?P<digits>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_MAX_DIGITS = 40
"""More than any whole number in RANGES has, and short of what `int` refuses to read."""


def read_variable(field: msgspec.structs.FieldInfo, text: str) -> Any:
    """The value of the setting `field` that its variable's `text` gives."""
    if field.name == FALLBACKS and json_form(text.strip(SPACES)):
        return read_json_form(text.strip(SPACES))
    if field.name in LIST_FIELDS:
        items = [part.strip(SPACES) for part in text.split(",")] if text.strip(SPACES) else []
        return items if field.name in EMPTY_ITEMS_KEPT else [item for item in items if item]
    if field.name in RANGES:
        return read_number(field.name, text)
    if field.type is bool:
        return read_bool(text, env_name(field.name))
    if options := choices(field.type):
        return read_choice(text, options, env_name(field.name))
    if text == "" and field.default is None:
        return None
    return text


def choices(kind: Any) -> tuple[str, ...]:
    """The values of a Literal type, or of one that may also be None; none for another."""
    if typing.get_origin(kind) is Literal:
        return typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return tuple(value for arg in typing.get_args(kind) for value in choices(arg))
    return ()


def read_choice(text: str, options: Iterable[str], variable: str) -> str:
    """`text` if it is one of `options`; ConfigurationError naming `variable` and listing
    them otherwise."""
    if text not in options:
        raise choice_refused(variable, options, text)
    return text


def choice_refused(variable: str, options: Iterable[str], value: Any) -> ConfigurationError:
    return ConfigurationError(f"{variable} must be one of: {', '.join(options)}, not {value!r}")


def read_bool(text: str, variable: str) -> bool:
    """The boolean `text` writes; ConfigurationError naming `variable` for any other text."""
    meant = BOOLEANS.get(text.lower())
    if meant is None:
        raise ConfigurationError(f"{variable} must be true or false (or 1 or 0), not {text!r}")
    return meant


def read_number(field: str, text: str) -> int | float:
    """The number `text` writes for the numeric setting `field` (whole or not, by its range
    in RANGES), within that range; ConfigurationError quoting `text` (`-0`, not the 0 it
    is) for any other spelling or number."""
    value = _number(RANGES[field].whole, text)
    if value is None or not within(RANGES[field], value):
        raise out_of_range(field, text)
    return value


def _number(whole: bool, text: str) -> int | float | None:
    if whole:
        if len(text) > _MAX_DIGITS or not _WHOLE.fullmatch(text):
            return None
        return int(text)
    match = _NUMBER.fullmatch(text)
    if match is None:  # nan, inf, and what is no number at all
        return None
    value = float(text)
    if value == 0 and match["digits"].strip("0.") != "":
        # Too small for a double: not 0, which would be taken as what it means.
        return None
    return value or 0.0  # -0 is 0, without the sign a later `copysign` could see


def check_utf8(settings: Any) -> None:
    """ConfigurationError naming the first text setting of `settings` (an S3AuthSettings),
    and an item of a list by its position, that is not UTF-8: a byte of the environment
    that is not reaches Python as a lone surrogate, which no token, mail, SMTP login or
    typed password can carry, so that it would fail at start with a traceback (`iss`,
    `aud`), at every mail, or never match. Never shows the value, which may be a secret."""
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        if field.name in PATH_FIELDS:
            continue
        texts = list(enumerate(value, 1)) if isinstance(value, list) else [(0, value)]
        for number, text in texts:
            if isinstance(text, str) and not _is_utf8(text):
                item = f" (item {number})" if number else ""
                raise ConfigurationError(
                    f"{env_name(field.name)}{item} is not UTF-8 text (a byte the environment "
                    "could not decode?)"
                )


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
