"""The object-store limiter's memory of refusals: a key refused on a stored state is refused
again from memory, with no request, until that state would admit (`stores`)."""

from __future__ import annotations

from collections.abc import Mapping


class RefusalMemo:
    """Refused keys and the state each refusal was decided on (a TAT for a limit, the TATs
    for a failure budget), bounded: the oldest are dropped first, which only costs a GET."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._states: dict[str, tuple[float | None, Mapping[str, float] | None]] = {}

    def get(self, object_key: str) -> tuple[float | None, Mapping[str, float] | None] | None:
        return self._states.get(object_key)

    def remember(
        self, object_key: str, state: tuple[float | None, Mapping[str, float] | None]
    ) -> None:
        self._states.pop(object_key, None)
        self._states[object_key] = state
        if len(self._states) > self.max_keys:
            del self._states[next(iter(self._states))]

    def forget(self, object_key: str) -> None:
        self._states.pop(object_key, None)
