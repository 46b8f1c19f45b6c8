"""Structs that hold secrets and show them to no one: whatever renders one (its repr, a log
line's `%r`, `pprint`, rich's pretty printer in a REPL, a debugger or a log handler) sees
each field named in `secret_fields` as `<hidden>`. rich asks `__rich_repr__` for the fields,
which msgspec answers with every value, so both are answered here, from one list."""

from __future__ import annotations

from typing import Any, ClassVar


class _Hidden:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<hidden>"


HIDDEN = _Hidden()
"""What a secret field shows instead of its value."""


class HidesSecrets:
    """A mixin for msgspec Structs with secret fields, named in the Struct's
    `secret_fields`: `class User(HidesSecrets, msgspec.Struct)`. It has no slots and no
    fields, so what is encoded and decoded is unchanged."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            (name, HIDDEN if name in self.secret_fields else getattr(self, name))
            for name in self.__struct_fields__
        ]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({shown})"
