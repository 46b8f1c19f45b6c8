"""Access tokens (JWT through joserfc) and opaque refresh tokens.

Access token: header `typ: at+jwt` and `kid`; claims iss, sub, aud, iat, nbf, exp, jti,
sid, scope, preferred_username, adm. Verification, in this order and whatever the
algorithm: the header must be strict JOSE JSON asking for no extension (`jose_json`); the
signature must verify with the key found by `kid`, under an algorithm pinned to that key;
`typ` must be an access-token type; the claims must be strict JOSE JSON too, with exp/iat
(and nbf when present) in whole seconds, exp no further after iat than the configured
access-token lifetime plus leeway, sub/jti/sid strings, iss/aud as configured.

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
from typing import Any, NamedTuple

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey
from joserfc.jws import CompactSignature, JWSRegistry, validate_compact
from joserfc.jwt import JWTClaimsRegistry

from .errors import ConfigurationError, InvalidTokenError, TokenExpiredError
from .identifiers import ID_PATTERN
from .jose_json import base64url_decode, json_object, protected_header
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
        # Built once: joserfc's own decode builds a registry on every call.
        self._jws_registry = JWSRegistry(algorithms=[self.keys.current.algorithm])
        # What we issue is exactly access_token_seconds long; the leeway is for clocks.
        self._max_lifetime = settings.access_token_seconds + settings.leeway_seconds
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
        header, payload = self._verify_signature(token)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("The token is not an access token")
        key = self.keys.get(header.get("kid"))
        if key is None or header.get("alg") != key.algorithm:
            raise InvalidTokenError("The token's algorithm does not match its key")
        claims = json_object(payload)
        self._check_times(claims)
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

    def _verify_signature(self, token: str | bytes) -> tuple[dict[str, Any], bytes]:
        """The header and the payload octets of a compact JWS whose header is strict and
        whose signature verifies; the payload is not read yet.

        joserfc's own decoding reads the header with the lenient `json.loads`, which takes
        a BOM, UTF-16 and duplicate names, so it is not used: `validate_compact` gets the
        header `protected_header` read strictly, and checks its parameters, the algorithm
        against the allowed one and the signature over the segments as received.
        """
        try:
            raw = token.encode("ascii") if isinstance(token, str) else token
        except UnicodeEncodeError:
            raise InvalidTokenError("The token could not be verified (not ASCII)") from None
        segments = raw.split(b".")
        if len(segments) != 3:
            raise InvalidTokenError("The token could not be verified (not a compact JWS)")
        header_segment, payload_segment, signature_segment = segments
        header = protected_header(header_segment)
        signed = CompactSignature(header, base64url_decode(payload_segment))
        signed.segments = {
            "header": header_segment,
            "payload": payload_segment,
            "signature": signature_segment,
        }
        try:
            self._jws_registry.validate_header_size(header_segment)
            self._jws_registry.validate_signature_size(signature_segment)
            valid = validate_compact(signed, self._key_for(header), registry=self._jws_registry)
        except InvalidTokenError:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidTokenError(f"The token could not be verified ({_reason(exc)})") from None
        if not valid:
            raise InvalidTokenError("The token could not be verified (bad_signature)")
        return header, signed.payload

    def _key_for(self, header: dict[str, Any]) -> OctKey:
        # With one key there is nothing to look up: verify with it, then check the kid.
        if len(self.keys) == 1:
            return self.keys.current.key
        key = self.keys.get(header.get("kid"))
        if key is None:
            raise InvalidTokenError("The token names an unknown key")
        return key.key

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
        if exp - iat > self._max_lifetime:
            raise InvalidTokenError(
                "The token's claims are invalid (exp is further after iat than an access "
                "token lives)"
            )

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
