"""The auth app's responses: JSON through msgspec, and the one place where an error of this
package becomes an RFC 9457 problem with the headers its status calls for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.responses import Response

from ..errors import InvalidCredentialsError, S3AuthError
from ..middleware.challenge import challenge
from ..middleware.responses import PROBLEM_CONTENT_TYPE, problem_for
from .errors import ErrorWithHeaders

JSON_CONTENT_TYPE = "application/json"
STORE_RETRY_AFTER_SECONDS = 5
"""What a client is told to wait when the object store is down: long enough not to add to
the load of a store that is struggling, short enough for a blip to go unnoticed."""

REALM = "api"
"""Of the `WWW-Authenticate` challenges; BearerTokenMiddleware's default, so a client sees
one realm whether the middleware or the app refused it."""

_encoder = msgspec.json.Encoder()


def json_response(
    value: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    response = Response(_encoder.encode(value), status_code=status, media_type=JSON_CONTENT_TYPE)
    for name, header in headers:
        response.headers.append(name, header)
    return response


def empty_response(headers: Iterable[tuple[str, str]] = ()) -> Response:
    response = Response(status_code=204)
    for name, header in headers:
        response.headers.append(name, header)
    return response


def problem_response(error: S3AuthError) -> Response:
    status, body = problem_for(error)
    response = Response(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in error_headers(error):
        response.headers.append(name, value)
    return response


def error_headers(error: S3AuthError) -> list[tuple[str, str]]:
    headers = list(error.headers) if isinstance(error, ErrorWithHeaders) else []
    if isinstance(error, InvalidCredentialsError) and error.status == 401:
        # A wrong password is no token error: the bare challenge (RFC 6750 §3).
        headers.append(("WWW-Authenticate", challenge(REALM)))
    elif error.status in (401, 403):
        headers.append(("WWW-Authenticate", challenge(REALM, error)))
    elif error.status == 503:
        headers.append(("Retry-After", str(STORE_RETRY_AFTER_SECONDS)))
    return headers
