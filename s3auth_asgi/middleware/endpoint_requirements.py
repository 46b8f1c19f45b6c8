"""What a host's endpoints ask of a caller through `requires` (a token, scopes, a recent
authentication), by operation, for the host's OpenAPI document (`declare_bearer_refusals`).

A framework that documents its routes from their endpoints (Starlette's `SchemaGenerator`)
lists what its `get_endpoints` finds: each operation's path as the document writes it, its
method, and the endpoint. The decorator keeps its requirement (`requires.requirements_of`),
so the document reads the one the endpoint checks, as FastAPI's and Litestar's documents
read the scopes of their dependencies and guards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .requires import requirements_of


class Endpoint(Protocol):
    """An operation and its endpoint: Starlette's `EndpointInfo`."""

    @property
    def path(self) -> str: ...
    @property
    def http_method(self) -> str: ...
    @property
    def func(self) -> Callable[..., Any]: ...


@dataclass(frozen=True, slots=True)
class Needed:
    """What an endpoint's `requires` ask for, together: a token, every scope any names, and
    the least `max_age` any allows (None: no recent authentication asked)."""

    scopes: tuple[str, ...]
    max_age: int | None


def needed_by_operation(endpoints: Iterable[Endpoint]) -> dict[tuple[str, str], Needed]:
    """What each of `endpoints` that `requires` decorates asks for, by its path and its
    method in lower case; the others are left out."""
    found: dict[tuple[str, str], Needed] = {}
    for endpoint in endpoints:
        requirements = requirements_of(endpoint.func)
        if requirements:
            scopes = tuple(dict.fromkeys(s for each in requirements for s in each.scopes))
            ages = [each.max_age for each in requirements if each.max_age is not None]
            needed = Needed(scopes, min(ages, default=None))
            found[(endpoint.path, endpoint.http_method.lower())] = needed
    return found
