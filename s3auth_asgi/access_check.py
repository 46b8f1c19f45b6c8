"""AccessTokenCheck: everything verifying an access token takes, after its key is known.

In this order, whatever the algorithm: the signature by a key of the key set, under the
algorithm pinned to that key (`keys.jws`); `typ` an access-token type; the claims strict
JOSE JSON, exp/iat (and nbf when present) in whole seconds, exp no further after iat than
an access token lives plus leeway, sub/jti/sid strings, iss/aud as configured. The issuing
service and a verify-only service (keys from a JWKS) run the same check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry

from .errors import InvalidTokenError, TokenExpiredError
from .jose_json import json_object
from .keys.jws import reason, verify_compact
from .keys.keyset import KeySet
from .types import Clock
from .verifier import MAX_TOKEN_BYTES

ACCESS_TOKEN_TYPES = frozenset(("at+jwt", "application/at+jwt"))


class AccessTokenCheck:
    """`keys` returns the key set to verify with now (a key ring swaps it when keys
    rotate); `max_lifetime` is the access-token lifetime, in seconds."""

    def __init__(
        self,
        keys: Callable[[], KeySet],
        *,
        clock: Clock,
        max_lifetime: int,
        leeway: int,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._keys = keys
        self.clock = clock
        self.leeway = leeway
        # What is issued lives exactly max_lifetime; the leeway is for clocks.
        self._max_span = max_lifetime + leeway
        options: dict[str, Any] = {
            "sub": {"essential": True},
            "jti": {"essential": True},
            "sid": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if issuer:
            options["iss"] = {"essential": True, "value": issuer}
        if audience:
            options["aud"] = {"essential": True, "value": audience}
        self._registry = JWTClaimsRegistry(now=lambda: int(self.clock()), leeway=leeway, **options)

    def verify(self, token: object) -> dict[str, Any]:
        """The claims of a valid access token; InvalidTokenError (UnknownSigningKeyError
        when its kid is unknown) or TokenExpiredError."""
        if not isinstance(token, str | bytes):
            raise InvalidTokenError("The token must be a string")
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("The token is too large")
        header, payload = verify_compact(token, self._keys(), self.clock())
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("The token is not an access token")
        claims = json_object(payload)
        self._check_times(claims)
        try:
            self._registry.validate(claims)
        except ExpiredTokenError:
            raise TokenExpiredError() from None
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidTokenError(f"The token's claims are invalid ({reason(exc)})") from None
        if not (
            isinstance(claims.get("sub"), str)
            and isinstance(claims.get("jti"), str)
            and isinstance(claims.get("sid"), str)
        ):
            raise InvalidTokenError("The token's claims are invalid")
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        """exp and iat present and nbf if present, all whole seconds (what we issue; a
        float or a bool is a token we did not write), and exp no further after iat than an
        access token lives. The moments themselves are the claims registry's to check."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not (type(exp) is int and type(iat) is int) or (
            "nbf" in claims and type(claims["nbf"]) is not int
        ):
            raise InvalidTokenError(
                "The token's claims are invalid (exp and iat are required, and exp, iat and "
                "nbf must be whole seconds)"
            )
        if exp - iat > self._max_span:
            raise InvalidTokenError(
                "The token's claims are invalid (exp is further after iat than an access "
                "token lives)"
            )
