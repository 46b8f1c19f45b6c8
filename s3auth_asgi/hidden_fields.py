"""Objects that hold secrets and show them to no one: whatever renders one (its repr, a log
line's `%r`, `pprint`, rich's pretty printer in a REPL, a debugger, a log handler or an
error tracker's capture of a traceback's locals) sees each secret field as `<hidden>`.
rich asks `__rich_repr__` for the fields, which msgspec answers with every value, so both
are answered here, from one list."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, ClassVar


class _Hidden:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<hidden>"


HIDDEN = _Hidden()
"""What a secret field shows instead of its value."""


def shown_fields(
    value: object, names: Iterable[str], secret: Collection[str]
) -> list[tuple[str, Any]]:
    """`value`'s fields as `__rich_repr__` answers them, those named in `secret` hidden."""
    return [(name, HIDDEN if name in secret else getattr(value, name)) for name in names]


def fields_repr(value: object, fields: Iterable[tuple[str, Any]]) -> str:
    """`Name(field=value, …)`, as msgspec and named tuples write it."""
    shown = ", ".join(f"{name}={field!r}" for name, field in fields)
    return f"{type(value).__name__}({shown})"


class HidesSecrets:
    """A mixin for msgspec Structs with secret fields, named in the Struct's
    `secret_fields`: `class User(HidesSecrets, msgspec.Struct)`. It has no slots and no
    fields, so what is encoded and decoded is unchanged. A named tuple, which takes no
    mixin, defines the two methods with the two functions above."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return shown_fields(self, self.__struct_fields__, self.secret_fields)

    def __repr__(self) -> str:
        return fields_repr(self, self.__rich_repr__())
