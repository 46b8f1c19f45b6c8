"""The endpoint that publishes the service's public keys: the JWKS, cacheable, with an
ETag of its content so a client holding the current copy is answered 304."""

from __future__ import annotations

from starlette.responses import Response

from ..keys.keyset import jwks_fingerprint
from ..service import S3AuthService
from ..settings import S3AuthSettings
from .operations import Call
from .responses import empty_response, json_response, not_modified
from .schemas import JsonWebKeySet


class KeyRoutes:
    """The key handler of `AuthRoutes`, which holds the service and its settings."""

    service: S3AuthService
    settings: S3AuthSettings

    async def jwks(self, call: Call) -> Response:
        keys = await self.service.published_keys()
        document = keys.jwks(self.service.clock())
        etag, max_age = f'"{jwks_fingerprint(document)}"', self.settings.jwks_max_age_seconds
        headers = [("Cache-Control", f"public, max-age={max_age}"), ("ETag", etag)]
        if not_modified(call.request.headers.get("if-none-match"), etag):
            return empty_response(headers, status=304)
        return json_response(JsonWebKeySet(keys=document["keys"]), headers=headers)
