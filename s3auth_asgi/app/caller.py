"""Who is calling: the one place the auth app checks a bearer token.

Behind BearerTokenMiddleware the token's signature and lifetime have been checked already
and its claims are in `scope["auth"]`; mounted without it, the token is verified here.
Revocation is checked here either way (BlacklistMiddleware may not be installed), against
the service's snapshot, synced when stale. So the app works with or without the
middlewares, and the endpoints get the same `Caller`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from starlette.requests import Request

from ..errors import (
    AuthenticationRequiredError,
    InvalidTokenError,
    PermissionDeniedError,
)
from ..middleware.credentials import authorization_token
from ..middleware.sync import syncer_for
from ..middleware.user import BearerCredentials
from ..service import S3AuthService


class Caller(NamedTuple):
    user_id: str
    session_id: str
    is_admin: bool


def bearer_token(request: Request) -> str:
    """The token of the `Authorization: Bearer` header, read as the middleware reads it."""
    token = authorization_token(request.scope)
    if token is None:
        raise AuthenticationRequiredError("Send the access token as `Authorization: Bearer …`")
    return token.decode("latin-1")


async def authenticate(request: Request, service: S3AuthService) -> Caller:
    """The caller of a request that needs an access token; 401 problems otherwise."""
    # Through the syncer BlacklistMiddleware uses, so a sync it has just scheduled is
    # joined rather than run twice.
    if service.blacklist.is_stale():
        await syncer_for(service.blacklist).catch_up()
    credentials = request.scope.get("auth")
    if isinstance(credentials, BearerCredentials) and credentials.claims is not None:
        claims: Mapping[str, Any] = credentials.claims
        revoked = service.blacklist.revoked_error(claims)
        if revoked is not None:
            raise revoked
    else:
        claims = service.decode_token(bearer_token(request))
    user_id, session_id = claims.get("sub"), claims.get("sid")
    if not isinstance(user_id, str) or not isinstance(session_id, str):
        raise InvalidTokenError("The token names no user or session")
    return Caller(user_id, session_id, claims.get("adm") is True)


async def authenticate_admin(request: Request, service: S3AuthService) -> Caller:
    caller = await authenticate(request, service)
    if not caller.is_admin:
        raise PermissionDeniedError("This endpoint is for administrators")
    return caller
