"""The auth app's responses: JSON through msgspec, and problems as `problems` renders them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from starlette.responses import Response

from ..errors import S3AuthError
from ..problems import RenderedProblem, render
from .token_errors import render_token_problem

JSON_CONTENT_TYPE = "application/json"
PRIVATE = [("Cache-Control", "no-store")]
"""For answers about an account: no cache keeps them."""

_encoder = msgspec.json.Encoder()


def json_response(
    value: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    response = Response(_encoder.encode(value), status_code=status, media_type=JSON_CONTENT_TYPE)
    for name, header in headers:
        response.headers.append(name, header)
    return response


def empty_response(headers: Iterable[tuple[str, str]] = (), status: int = 204) -> Response:
    response = Response(status_code=status)
    for name, header in headers:
        response.headers.append(name, header)
    return response


def vary(response: Response, name: str) -> None:
    """Add `name` to the answer's Vary, as one field: a list already naming it (or `*`,
    which covers every name) is left as it is, only joined (RFC 9110 §12.5.5)."""
    names = [
        item.strip() for field in response.headers.getlist("vary") for item in field.split(",")
    ]
    names = [item for item in names if item]
    if not {item.lower() for item in names} & {name.lower(), "*"}:
        names.append(name)
    response.headers["Vary"] = ", ".join(names)


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weakly compared, RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(",")
    )


def validated_response(
    if_none_match: str | None, etag: str, cache_control: str, body: Callable[[], bytes]
) -> Response:
    """A published document that caches may keep (the JWKS, the OpenAPI document): `body()`
    as JSON with its `etag` and `cache_control`, or a 304 with the same headers, and no
    body made, where `if_none_match` names the ETag. Either varies by Origin: a shared
    cache keeps one copy per origin, whatever the host's CORS layer adds to it."""
    headers = [("Cache-Control", cache_control), ("ETag", etag)]
    if not_modified(if_none_match, etag):
        response = empty_response(headers, status=304)
    else:
        response = Response(body(), media_type=JSON_CONTENT_TYPE)
        for name, header in headers:
            response.headers.append(name, header)
    vary(response, "Origin")
    return response


def rendered_response(problem: RenderedProblem) -> Response:
    response = Response(problem.body, status_code=problem.status)
    for name, value in problem.headers:
        response.headers.append(name, value)
    return response


def problem_response(error: S3AuthError, *, token_endpoint: bool = False) -> Response:
    """The same answer the middlewares give to the same error; at a `token_endpoint`, with
    the members of an OAuth 2.0 error (`token_errors`)."""
    return rendered_response(render_token_problem(error) if token_endpoint else render(error))
