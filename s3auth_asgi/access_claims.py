"""The claims an access token must carry, checked in one pass over a few names.

    rules = AccessClaims(leeway=30, max_span=930, issuer=None, audience=None)
    rules.check(claims, now=int(clock()))   # None, or InvalidTokenError / TokenExpiredError

What holds for every access token, whoever verifies it (RFC 7519 §4.1, RFC 9068 §4):

| claim            | must be                                                            |
|------------------|--------------------------------------------------------------------|
| exp, iat         | present, whole seconds (an int, never a bool or a float)           |
| nbf              | whole seconds when present                                         |
| exp - iat        | at most an access token's lifetime plus the leeway                 |
| sub, jti, sid    | present, non-empty strings                                         |
| iss              | a string when present; equal to the issuer when one is configured  |
| aud              | absent when no audience is configured; else the audience, or a     |
|                  | list of strings naming it                                          |
| auth_time        | whole seconds, not before 1970 nor after iat + leeway, when present |
| amr              | a non-empty list of non-empty strings, when present                |
| nbf, iat         | not after now + leeway                                             |
| exp              | after now - leeway, else the token has expired                     |

Every rule but the last refuses with InvalidTokenError; the last with TokenExpiredError, and
only once every other rule holds, so a token that is both malformed and old is answered as
invalid (a client told "expired" refreshes, one told "invalid" signs in again).

The moments are the ones joserfc's JWTClaimsRegistry applies, with `now` whole seconds:
expired once `exp <= now - leeway`, premature once `nbf` or `iat` `> now + leeway`. The
verified-token cache keeps `exp` by the same rule. Where joserfc's registry accepts, this
accepts, and the other way round (a property test holds them side by side), but for `aud`
where no audience is configured, which the registry lets through; it is our own
because the registry looks up a method per claim present and costs a quarter of verifying
a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidTokenError, TokenExpiredError


def _refusal(reason: str) -> InvalidTokenError:
    return InvalidTokenError(f"The token's claims are invalid ({reason})")


class AccessClaims:
    """The rules above for one verifier: its leeway, the longest `exp - iat` it accepts
    (`max_span`), and the issuer and audience it requires, if any."""

    __slots__ = ("audience", "issuer", "leeway", "max_span")

    def __init__(
        self, *, leeway: int, max_span: int, issuer: str | None, audience: str | None
    ) -> None:
        self.leeway = leeway
        self.max_span = max_span
        # An empty string configures nothing, as it does for the settings that feed this.
        self.issuer = issuer or None
        self.audience = audience or None

    def check(self, claims: Mapping[str, Any], now: int) -> None:
        """Refuse `claims` unless every rule holds at `now` (whole seconds)."""
        exp, iat = claims.get("exp"), claims.get("iat")
        nbf = claims.get("nbf")
        if not (type(exp) is int and type(iat) is int) or (
            "nbf" in claims and type(nbf) is not int
        ):
            raise _refusal("exp and iat are required, and exp, iat and nbf must be whole seconds")
        if exp - iat > self.max_span:
            raise _refusal("exp is further after iat than an access token lives")
        for name in ("sub", "jti", "sid"):
            value = claims.get(name)
            if type(value) is not str or not value:
                raise _refusal(f"{name} must be a non-empty string")
        self._check_parties(claims)
        if "auth_time" in claims or "amr" in claims:
            self._check_authentication(claims, iat)
        latest = now + self.leeway
        if iat > latest:
            raise _refusal("the token was issued in the future")
        if nbf is not None and nbf > latest:
            raise _refusal("the token is not yet valid")
        if exp <= now - self.leeway:
            raise TokenExpiredError()

    def _check_authentication(self, claims: Mapping[str, Any], iat: int) -> None:
        """auth_time and amr (RFC 9068 §2.2.1), which tokens issued before them lack: a
        host's step-up check (`step_up`) compares the one, and may look into the other.
        The user authenticated before the token's issue, by the clock of the host that
        saw it, which may be the leeway ahead of the issuing one's."""
        if "auth_time" in claims:
            auth_time = claims["auth_time"]
            if type(auth_time) is not int or not 0 <= auth_time <= iat + self.leeway:
                raise _refusal("auth_time must be whole seconds, not after iat")
        if "amr" in claims:
            amr = claims["amr"]
            if type(amr) is not list or not amr or not all(type(m) is str and m for m in amr):
                raise _refusal("amr must be a non-empty list of non-empty strings")

    def _check_parties(self, claims: Mapping[str, Any]) -> None:
        """iss: a string wherever present, the configured one required. aud: the configured
        audience named, or absent when none is."""
        iss = claims.get("iss")
        if "iss" in claims and not isinstance(iss, str):
            raise _refusal("iss must be a string")
        if self.issuer is not None and iss != self.issuer:
            raise _refusal("iss is not the expected issuer")
        audience = self.audience
        if audience is None:
            # RFC 7519 §4.1.3: a verifier that names no audience identifies itself with no
            # value of `aud`, so a token meant for some audience, even an empty list of
            # them, is not for it. One lookup: what this library issues then has no `aud`.
            if "aud" in claims:
                raise _refusal("aud is present, but no audience is configured")
            return
        aud = claims.get("aud")
        if aud != audience and not (
            isinstance(aud, list) and audience in aud and all(isinstance(item, str) for item in aud)
        ):
            raise _refusal("aud does not name the expected audience")
