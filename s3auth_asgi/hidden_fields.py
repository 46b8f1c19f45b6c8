"""Objects that hold secrets and show them to no one: whatever renders one (its repr, a log
line's `%r`, `pprint`, rich's pretty printer in a REPL, a debugger, a log handler or an
error tracker's capture of a traceback's locals) sees each secret field as `<hidden>`.
rich asks `__rich_repr__` for the fields, which msgspec answers with every value, so both
are answered here, from one list. A field holding a URL that may carry credentials shows
what `shown_urls` lets be shown of it."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, ClassVar

from .shown_urls import shown_url


class _Hidden:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<hidden>"


HIDDEN = _Hidden()
"""What a secret field shows instead of its value."""


def shown_fields(
    value: object, names: Iterable[str], secret: Collection[str], urls: Collection[str] = ()
) -> list[tuple[str, Any]]:
    """`value`'s fields as `__rich_repr__` answers them, those named in `secret` hidden,
    those in `urls` without the credentials they may carry."""
    return [(name, _shown(value, name, secret, urls)) for name in names]


def _shown(value: object, name: str, secret: Collection[str], urls: Collection[str]) -> Any:
    if name in secret:
        return HIDDEN
    field = getattr(value, name)
    return shown_url(field, name) if name in urls and isinstance(field, str) else field


def fields_repr(value: object, fields: Iterable[tuple[str, Any]]) -> str:
    """`Name(field=value, …)`, as msgspec and named tuples write it."""
    shown = ", ".join(f"{name}={field!r}" for name, field in fields)
    return f"{type(value).__name__}({shown})"


class HidesSecrets:
    """A mixin for msgspec Structs with secret fields, named in the Struct's
    `secret_fields` (and URLs that may carry credentials in its `url_fields`):
    `class User(HidesSecrets, msgspec.Struct)`. It has no slots and no fields, so what is
    encoded and decoded is unchanged. A named tuple, which takes no mixin, defines the two
    methods with the two functions above."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    url_fields: ClassVar[frozenset[str]] = frozenset()
    """URLs that may carry credentials, shown without them (`shown_urls`)."""

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return shown_fields(self, self.__struct_fields__, self.secret_fields, self.url_fields)

    def __repr__(self) -> str:
        return fields_repr(self, self.__rich_repr__())
