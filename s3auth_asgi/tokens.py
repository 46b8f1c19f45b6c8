"""Access tokens (JWT through joserfc) and opaque refresh tokens.

Access token: header `typ: at+jwt` and `kid`; claims iss, sub, aud, iat, nbf, exp, jti,
sid, scope, preferred_username, adm. Verification pins the algorithm to the key found by
`kid`, requires exp/iat/sub/jti/sid, checks iss/aud when configured and checks `typ`.

Refresh token: `rt1.{user_id}.{session_id}.{generation}.{mac}`, where mac is an HMAC over
the three fields and the session's own random secret, keyed by a key derived from the
secret key. Forging one needs both the server key and a read of the session object; the
server stores no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from .errors import ConfigurationError, InvalidTokenError, TokenExpiredError
from .identifiers import ID_PATTERN
from .settings import S3AuthSettings
from .types import Clock
from .verifier import MAX_TOKEN_BYTES

ACCESS_TOKEN_TYPES = frozenset(("at+jwt", "application/at+jwt"))
_REFRESH = re.compile(
    rf"rt1\.({ID_PATTERN})\.({ID_PATTERN})\.(0|[1-9][0-9]{{0,9}})\.([A-Za-z0-9_-]{{43}})"
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def derive_key(secret_key: str, purpose: str) -> bytes:
    """The key for one purpose (`refresh-token`, `device-cookie`), derived from the secret
    key with HMAC-SHA256 as a PRF (HKDF-Expand's one-block case). Every MAC key comes from
    here, so no two uses share a key and none is the secret itself."""
    info = f"s3auth {purpose} key v1".encode()
    return hmac.new(secret_key.encode(), info, hashlib.sha256).digest()


class SigningKey(NamedTuple):
    kid: str
    algorithm: str
    key: OctKey


class KeySet:
    """The keys tokens are signed and verified with, by `kid`.

    Today one HMAC key derived from the secret key; asymmetric keys and rotation plug in
    here (several keys by kid, the first one signs, public ones served as JWKS).
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ConfigurationError("a key set needs at least one key")
        self.current = keys[0]
        self._by_kid = {k.kid: k for k in keys}

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> KeySet:
        secret = settings.secret_key.encode()
        kid = b64url(hashlib.sha256(b"s3auth kid:" + secret).digest()[:12])
        return cls([SigningKey(kid, settings.algorithm, OctKey.import_key(secret))])

    def __len__(self) -> int:
        return len(self._by_kid)

    def get(self, kid: object) -> SigningKey | None:
        return self._by_kid.get(kid) if isinstance(kid, str) else None

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys: none for HMAC keys, which must stay secret."""
        return {"keys": []}


class RefreshToken(NamedTuple):
    user_id: str
    session_id: str
    generation: int
    mac: str


class TokenCodec:
    """Signs and verifies access tokens; makes and checks refresh tokens."""

    def __init__(
        self, settings: S3AuthSettings, *, clock: Clock = time.time, keys: KeySet | None = None
    ) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else KeySet.from_settings(settings)
        self.clock = clock
        self._algorithms = [self.keys.current.algorithm]
        # With one key there is nothing to look up: verify with it, then check the kid.
        self._key: OctKey | Callable[[Any], OctKey] = (
            self.keys.current.key if len(self.keys) == 1 else self._resolve_key
        )
        self._refresh_key = derive_key(settings.secret_key, "refresh-token")
        options: dict[str, Any] = {
            "sub": {"essential": True},
            "jti": {"essential": True},
            "sid": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if settings.issuer:
            options["iss"] = {"essential": True, "value": settings.issuer}
        if settings.audience:
            options["aud"] = {"essential": True, "value": settings.audience}
        self._registry = JWTClaimsRegistry(
            now=lambda: int(self.clock()), leeway=settings.leeway_seconds, **options
        )

    @property
    def leeway_seconds(self) -> int:
        return self.settings.leeway_seconds

    def issue_access_token(
        self,
        *,
        user_id: str,
        username: str,
        session_id: str,
        is_admin: bool,
        scopes: list[str],
        now: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The signed token and its claims."""
        issued = int(self.clock()) if now is None else now
        claims: dict[str, Any] = {
            "sub": user_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.settings.access_token_seconds,
            "jti": b64url(secrets.token_bytes(16)),
            "sid": session_id,
            "scope": " ".join(scopes),
            "preferred_username": username,
            "adm": is_admin,
        }
        if self.settings.issuer:
            claims["iss"] = self.settings.issuer
        if self.settings.audience:
            claims["aud"] = self.settings.audience
        key = self.keys.current
        header = {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid}
        return jwt.encode(header, claims, key.key, algorithms=[key.algorithm]), claims

    def verify_access_token(self, token: object) -> dict[str, Any]:
        """The claims of a valid access token; InvalidTokenError (or TokenExpiredError)."""
        if not isinstance(token, str | bytes):
            raise InvalidTokenError("The token must be a string")
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("The token is too large")
        try:
            decoded = jwt.decode(token, self._key, algorithms=self._algorithms)
        except InvalidTokenError:
            raise
        except (JoseError, ValueError, TypeError, KeyError, UnicodeError) as exc:
            raise InvalidTokenError(f"The token could not be verified ({_reason(exc)})") from None
        header = decoded.header
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("The token is not an access token")
        key = self.keys.get(header.get("kid"))
        if key is None or header.get("alg") != key.algorithm:
            raise InvalidTokenError("The token's algorithm does not match its key")
        claims = decoded.claims
        try:
            self._registry.validate(claims)
        except ExpiredTokenError:
            raise TokenExpiredError() from None
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidTokenError(f"The token's claims are invalid ({_reason(exc)})") from None
        if not (
            isinstance(claims.get("sub"), str)
            and isinstance(claims.get("jti"), str)
            and isinstance(claims.get("sid"), str)
        ):
            raise InvalidTokenError("The token's claims are invalid")
        return claims

    def _resolve_key(self, obj: Any) -> OctKey:
        key = self.keys.get(obj.headers().get("kid"))
        if key is None:
            raise InvalidTokenError("The token names an unknown key")
        return key.key

    # Refresh tokens -------------------------------------------------------------------

    def _refresh_mac(self, user_id: str, session_id: str, generation: int, secret: str) -> str:
        message = f"{user_id}.{session_id}.{generation}.{secret}".encode()
        return b64url(hmac.new(self._refresh_key, message, hashlib.sha256).digest())

    def make_refresh_token(
        self, user_id: str, session_id: str, generation: int, secret: str
    ) -> str:
        mac = self._refresh_mac(user_id, session_id, generation, secret)
        return f"rt1.{user_id}.{session_id}.{generation}.{mac}"

    @staticmethod
    def parse_refresh_token(token: object) -> RefreshToken:
        """The parts of a well-formed refresh token (not yet checked against its session)."""
        if not isinstance(token, str) or len(token) > 256:
            raise InvalidTokenError("The refresh token is malformed")
        match = _REFRESH.fullmatch(token)
        if match is None:
            raise InvalidTokenError("The refresh token is malformed")
        user_id, session_id, generation, mac = match.groups()
        return RefreshToken(user_id, session_id, int(generation), mac)

    def refresh_mac_matches(self, token: RefreshToken, secret: str) -> bool:
        """Constant-time check of the token's MAC against its session's secret."""
        expected = self._refresh_mac(token.user_id, token.session_id, token.generation, secret)
        return hmac.compare_digest(expected, token.mac)


def _reason(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    return str(error) if error else type(exc).__name__
