"""AccessTokenCheck: everything verifying an access token takes, after its key is known.

In this order, whatever the algorithm: the signature by a key of the key set, under the
algorithm pinned to that key (`keys.jws`); `typ` an access-token type; the claims strict
JOSE JSON (`jose_json`) that hold the rules of `access_claims`. The issuing service and a
verify-only service (keys from a JWKS) run the same check. Before its keys are read,
`check_form` refuses what none of them could verify (`keys.jws.check_form`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from .access_claims import AccessClaims
from .errors import InvalidTokenError
from .jose_json import json_object
from .keys.jws import check_form, verify_compact
from .keys.keyset import KeySet
from .types import Clock
from .verifier import MAX_TOKEN_BYTES

ACCESS_TOKEN_TYPES = frozenset(("at+jwt", "application/at+jwt"))
"""The `typ` of an access token, lowercased before it is looked up here: RFC 9068 §4 names
both, and media types compare without regard to case (RFC 7515 §4.1.9)."""


class AccessTokenCheck:
    """`keys` returns the key set to verify with now (a key ring swaps it when keys
    rotate); `algorithms`, the `alg` names any key it may return accepts; `max_lifetime`
    is the access-token lifetime, in seconds."""

    def __init__(
        self,
        keys: Callable[[], KeySet],
        *,
        algorithms: Collection[str],
        clock: Clock,
        max_lifetime: int,
        leeway: int,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._keys = keys
        self._algorithms = frozenset(algorithms)
        self.clock = clock
        # What is issued lives exactly max_lifetime; the leeway is for clocks.
        self._claims = AccessClaims(
            leeway=leeway, max_span=max_lifetime + leeway, issuer=issuer, audience=audience
        )

    def verify(self, token: object) -> dict[str, Any]:
        """The claims of a valid access token; InvalidTokenError (UnknownSigningKeyError
        when its kid is unknown) or TokenExpiredError."""
        now = self.clock()
        header, payload = verify_compact(_sized(token), self._keys(), now)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("The token is not an access token")
        claims = json_object(payload)
        self._claims.check(claims, int(now))
        return claims

    def check_form(self, token: object) -> None:
        """InvalidTokenError for a token no key this check may ever be given could verify,
        judged with no key (`keys.jws.check_form`): what a verifier can refuse before its
        keys are read, asking nobody for them."""
        check_form(_sized(token), self._algorithms)


def _sized(token: object) -> str | bytes:
    if not isinstance(token, str | bytes):
        raise InvalidTokenError("The token must be a string")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError("The token is too large")
    return token
