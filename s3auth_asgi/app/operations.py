"""Operation: one endpoint with everything both the router and the OpenAPI document need,
so the two cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]

Access = Literal["public", "bearer", "bearer_or_refresh_token", "admin"]
"""Who may call: anyone; the holder of an access token; the holder of an access or a refresh
token; an administrator's access token."""

_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    access: Access = "public"
    request: type[Any] | None = None
    """The body Struct, as JSON."""
    form: bool = False
    """The body may also be an urlencoded form (the OAuth2 token endpoints)."""
    body_optional: bool = False
    query: type[Any] | None = None
    response: type[Any] | None = None
    """The success body Struct; None for 204 No Content."""
    status: int = 200
    token_response: bool = False
    """Sends tokens: `Cache-Control: no-store`, and the refresh cookie in browser mode."""
    errors: tuple[int, ...] = ()
    """Statuses beyond those implied by the body, the access and the path parameters."""
    uses_store: bool = True
    description: str = ""

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    @property
    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.request is not None:
            statuses |= {400, 413, 415, 422}
        if self.query is not None:
            statuses.add(422)
        if self.access != "public":
            statuses.add(401)
        if self.access == "admin":
            statuses.add(403)
        if self.path_parameters:
            statuses.add(404)
        if self.uses_store:
            statuses.add(503)
        return sorted(statuses)
