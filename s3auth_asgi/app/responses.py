"""The auth app's responses: JSON through msgspec, and the one place where an error of this
package becomes an RFC 9457 problem with the headers its status calls for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.responses import Response

from ..errors import S3AuthError
from ..middleware.challenge import auth_error_response

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
    """The middleware's answer to the same error, plus the headers the error carries."""
    status, headers, body = auth_error_response(error, REALM)
    response = Response(body, status_code=status, headers=headers)
    for name, value in error.headers:
        response.headers.append(name, value)
    if status == 503:
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
    return response
