"""The endpoint that publishes the service's public keys: the JWKS, cacheable, with an
ETag of its content so a client holding the current copy is answered 304."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from ..keys.keyset import jwks_fingerprint
from ..service import S3AuthService
from ..settings import S3AuthSettings
from .operations import Call
from .responses import validated_response
from .schemas import JsonWebKeySet


class KeyRoutes:
    """The key handler of `AuthRoutes`, which holds the service and its settings."""

    service: S3AuthService
    settings: S3AuthSettings

    async def jwks(self, call: Call) -> Response:
        keys = await self.service.published_keys()
        document = keys.jwks(self.service.clock())
        return validated_response(
            call.request.headers.get("if-none-match"),
            f'"{jwks_fingerprint(document)}"',
            f"public, max-age={self.settings.jwks_max_age_seconds}",
            lambda: msgspec.json.encode(JsonWebKeySet(keys=document["keys"])),
        )
