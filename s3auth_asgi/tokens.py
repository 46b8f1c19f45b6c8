"""Access tokens (JWT through joserfc) and opaque refresh tokens.

Access token: header `typ: at+jwt` and `kid`; claims sub, iat, nbf, exp, jti, sid, scope,
preferred_username, adm, auth_time and amr (when and how the user last authenticated, as
its session keeps them: `auth_methods`), and iss and aud when configured (no aud otherwise:
a verifier that names no audience refuses a token that carries one, `access_claims`). Signed by the
key ring's signing key (`keys.ring`: for HS*, the secret key itself, each fallback secret key
a key that verifies only; or a key pair; an ES256 signature in its low-S form,
`keys.low_s`); verified by `AccessTokenCheck` with the key the token's `kid` names, under
the algorithm pinned to that key.

Refresh token: `rt1.{user_id}.{session_id}.{generation}.{mac}`, where mac is an HMAC over
the three fields and the session's own random secret, keyed by a key derived from the
secret key (or, for one made before a rotation, from one of S3AUTH_SECRET_KEY_FALLBACKS:
`derive_keys`). Forging one needs both the server key and a read of the session object; the
server stores no token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, AnyStr, NamedTuple, TypedDict, Unpack

from joserfc import jwt

from .access_check import ACCESS_TOKEN_TYPES, AccessTokenCheck
from .errors import InvalidTokenError, TokenTooLargeError
from .hidden_fields import fields_repr, shown_fields
from .identifiers import ID_PATTERN
from .jose_json import b64url
from .keys.keyset import KeyEntry, KeySet
from .keys.low_s import low_s_compact
from .keys.names import ASYMMETRIC_ALGORITHMS
from .keys.ring import KeyRing, key_that_signs
from .settings import S3AuthSettings
from .shared_on_copy import SharedOnCopy
from .storage.base import Store
from .token_budget import access_token_length, signature_bytes
from .types import Clock
from .verifier import MAX_TOKEN_BYTES

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "AccessTokenFields",
    "RefreshToken",
    "TokenCodec",
    "b64url",
    "derive_key",
    "derive_keys",
    "mac_text",
    "matching_key",
]

_REFRESH = re.compile(
    rf"rt1\.({ID_PATTERN})\.({ID_PATTERN})\.(0|[1-9][0-9]{{0,9}})\.([A-Za-z0-9_-]{{43}})"
)


def derive_key(secret_key: str, purpose: str) -> bytes:
    """The key for one purpose (`refresh-token`, `account-token`, `device-cookie`,
    `mfa-challenge`, `totp-seed`), derived from the secret key with HMAC-SHA256 as a PRF
    (HKDF-Expand's one-block case), so no two of these uses share a key nor any with the
    HS* access-token key. That key is not
    derived: it is the secret key itself (`keys.ring.hmac_entry`)."""
    info = f"s3auth {purpose} key v1".encode()
    return hmac.new(secret_key.encode(), info, hashlib.sha256).digest()


def checked_secret_keys(secret_keys: Sequence[str]) -> tuple[str, ...]:
    """`secret_keys` as every user of them takes them (`S3AuthSettings.secret_keys`: the
    secret key, then each of S3AUTH_SECRET_KEY_FALLBACKS): at least one, none empty. A bare
    string is refused, as it would otherwise be taken for one key per character."""
    if isinstance(secret_keys, str | bytes):
        raise TypeError("secret_keys must be a sequence of secret keys, not one string")
    keys = tuple(secret_keys)
    if not keys:
        raise ValueError("secret_keys is empty: it needs the secret key, then any fallbacks")
    for position, key in enumerate(keys):
        if not isinstance(key, str):
            raise TypeError(f"secret_keys[{position}] is not a string")
        if not key:
            raise ValueError(f"secret_keys[{position}] is empty")
    return keys


def derive_keys(secret_keys: Sequence[str], purpose: str) -> tuple[bytes, ...]:
    """The key for `purpose` of each of `secret_keys` (`checked_secret_keys`), in that
    order: the first makes what is new, every one verifies or opens (`matching_key`)."""
    return tuple(derive_key(key, purpose) for key in checked_secret_keys(secret_keys))


def mac_text(key: bytes, text: str) -> str:
    """The HMAC-SHA256 of `text` under `key`, base64url: what a refresh token, a device
    cookie and a second step's token each end with."""
    return b64url(hmac.new(key, text.encode(), hashlib.sha256).digest())


def matching_key(
    keys: Sequence[bytes], given: AnyStr, mac: Callable[[bytes], AnyStr]
) -> int | None:
    """The position in `keys` of the first key under which `mac` gives `given`, each
    compared in constant time; None when none does. What the current key made costs one
    MAC, as it did before there were fallbacks; only a value no key made costs one per
    key, and their number is the operator's, not the sender's."""
    for position, key in enumerate(keys):
        if hmac.compare_digest(mac(key), given):
            return position
    return None


class RefreshToken(NamedTuple):
    user_id: str
    session_id: str
    generation: int
    mac: str
    """What makes the token work: shown as `<hidden>` (`hidden_fields`)."""

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return shown_fields(self, self._fields, secret=("mac",))

    def __repr__(self) -> str:
        return fields_repr(self, self.__rich_repr__())


class _RequiredFields(TypedDict):
    user_id: str
    username: str
    session_id: str
    is_admin: bool
    scopes: list[str]


class AccessTokenFields(_RequiredFields, total=False):
    """What `TokenCodec.issue_access_token` makes an access token of: the fields above,
    and these when given."""

    now: int | None
    """Its issue, in Unix seconds: by default the codec's clock."""
    key: KeyEntry | None
    """From `signing_key()`; by default the key that signs at the token's issue in the key
    set as last read, by the same rule (KeysUnavailableError when none does)."""
    extra_claims: Mapping[str, Any] | None
    """The application's (`hooks`); the claims the codec sets win over them."""
    not_after: int | None
    """The latest `exp`, when earlier than the configured lifetime gives (its session's
    end)."""
    auth_time: int | None
    """When the user last authenticated (RFC 9068 §2.2.1), in Unix seconds."""
    amr: Sequence[str] | None
    """How (RFC 8176, `auth_methods`); none or empty: no `amr`."""


_FIELDS = AccessTokenFields.__required_keys__ | AccessTokenFields.__optional_keys__
_REQUIRED_FIELDS = AccessTokenFields.__required_keys__


class TokenCodec(SharedOnCopy):
    """Signs and verifies access tokens; makes and checks refresh tokens.

    `keys`: a KeyRing, or a fixed KeySet; by default the ring the settings describe (a
    ring that keeps its keys in the store needs `store`)."""

    def __init__(
        self,
        settings: S3AuthSettings,
        *,
        clock: Clock = time.time,
        keys: KeyRing | KeySet | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        if keys is None:
            keys = KeyRing(settings, store, clock=clock)
        self.ring: KeyRing | None
        self.key_set: Callable[[], KeySet]
        if isinstance(keys, KeySet):
            fixed = keys
            self.ring, self.key_set = None, lambda: fixed
        else:
            self.ring, self.key_set = keys, keys.key_set
        self._refresh_keys = derive_keys(settings.secret_keys, "refresh-token")
        algorithms: frozenset[str]
        if self.ring is not None and self.ring.source == "store":
            algorithms = frozenset(ASYMMETRIC_ALGORITHMS)  # all it keeps (`keys.opening`)
        else:
            algorithms = frozenset().union(*(entry.accepted for entry in self.key_set().entries))
        self._check = AccessTokenCheck(
            self.key_set,
            algorithms=algorithms,
            clock=clock,
            max_lifetime=settings.access_token_seconds,
            leeway=settings.leeway_seconds,
            issuer=settings.issuer,
            audience=settings.audience,
        )

    def verify_access_token(self, token: object) -> dict[str, Any]:
        """The claims of a valid access token (`AccessTokenCheck.verify`)."""
        return self._check.verify(token)

    def check_token_form(self, token: str | bytes) -> None:
        """`verifier.TokenForms`: refuse, with no key read, a token none of the keys it may
        ever verify with could (`AccessTokenCheck.check_form`)."""
        self._check.check_form(token)

    @property
    def leeway_seconds(self) -> int:
        return self.settings.leeway_seconds

    @property
    def reverify_seconds(self) -> float | None:
        """How often the keys are read again: S3AUTH_KEY_SYNC_SECONDS when the store keeps
        them; None when they are fixed while the process runs (a secret, the environment,
        a KeySet given in code)."""
        ring = self.ring
        return self.settings.key_sync_seconds if ring and ring.source == "store" else None

    async def read_keys_again(self) -> bool:
        """A KeyReader: read the stored keys again (see `KeyRing.read_again`)."""
        return self.ring is not None and await self.ring.read_again()

    def keys_overdue(self) -> bool:
        """KeysFreshness: stored keys two intervals old (`KeyRing.is_overdue`)."""
        return self.ring is not None and self.ring.is_overdue()

    async def read_overdue_keys(self) -> None:
        if self.ring is not None:
            await self.ring.catch_up()

    async def signing_key(self) -> KeyEntry:
        """The key that signs now, the stored keys read first when they are due;
        KeysUnavailableError when none does (`keys.ring.key_that_signs`)."""
        if self.ring is not None:
            return await self.ring.signing_key()
        return self._signing_key_at(self.clock())

    def _signing_key_at(self, now: float) -> KeyEntry:
        if self.ring is not None:
            return self.ring.signing_key_at(now)
        return key_that_signs(self.key_set(), now)

    def issue_access_token(self, **fields: Unpack[AccessTokenFields]) -> tuple[str, dict[str, Any]]:
        """The signed token and its claims (`AccessTokenFields`); TokenTooLargeError when it
        would not fit in what verifiers read (`token_budget`)."""
        header, claims, key = self._unsigned(fields)
        token = jwt.encode(header, claims, key.key, algorithms=[key.algorithm])
        return (low_s_compact(token) if key.low_s else token), claims

    def check_access_token_fits(self, **fields: Unpack[AccessTokenFields]) -> None:
        """TokenTooLargeError unless the token `issue_access_token(**fields)` would issue
        fits in what verifiers read (`token_budget`); signs nothing."""
        self._unsigned(fields)

    def _unsigned(
        self, fields: AccessTokenFields
    ) -> tuple[dict[str, Any], dict[str, Any], KeyEntry]:
        """The header and the claims of an access token, and the key to sign them; measured
        first, as one longer than MAX_TOKEN_BYTES is no token at all."""
        given = fields.keys()
        if not (_REQUIRED_FIELDS <= given <= _FIELDS):
            # As a signature would: a misspelt `not_after` must not issue a longer token.
            raise TypeError(
                f"issue_access_token: missing {sorted(_REQUIRED_FIELDS - given)}, "
                f"unknown {sorted(given - _FIELDS)}"
            )
        now, not_after = fields.get("now"), fields.get("not_after")
        issued = int(self.clock()) if now is None else now
        expires = issued + self.settings.access_token_seconds
        claims: dict[str, Any] = {
            **(fields.get("extra_claims") or {}),
            "sub": fields["user_id"],
            "iat": issued,
            "nbf": issued,
            "exp": expires if not_after is None else min(expires, not_after),
            "jti": b64url(secrets.token_bytes(16)),
            "sid": fields["session_id"],
            "scope": " ".join(fields["scopes"]),
            "preferred_username": fields["username"],
            "adm": fields["is_admin"],
        }
        auth_time, amr = fields.get("auth_time"), fields.get("amr")
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if amr:
            claims["amr"] = list(amr)
        if self.settings.issuer:
            claims["iss"] = self.settings.issuer
        if self.settings.audience:
            claims["aud"] = self.settings.audience
        key = fields.get("key")
        if key is None:
            key = self._signing_key_at(issued)
        header = {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid}
        signature = signature_bytes(key.algorithm, key.key)
        if access_token_length(header, claims, signature) > MAX_TOKEN_BYTES:
            raise TokenTooLargeError()
        return header, claims, key

    # Refresh tokens -------------------------------------------------------------------

    @staticmethod
    def _refresh_mac(
        key: bytes, user_id: str, session_id: str, generation: int, secret: str
    ) -> str:
        return mac_text(key, f"{user_id}.{session_id}.{generation}.{secret}")

    def make_refresh_token(
        self, user_id: str, session_id: str, generation: int, secret: str
    ) -> str:
        """Under the current secret key's refresh key alone."""
        mac = self._refresh_mac(self._refresh_keys[0], user_id, session_id, generation, secret)
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
        """Constant-time check of the token's MAC against its session's secret, under the
        current secret key or a fallback (`matching_key`); its rotation makes one under the
        current key."""

        def mac(key: bytes) -> str:
            return self._refresh_mac(key, token.user_id, token.session_id, token.generation, secret)

        return matching_key(self._refresh_keys, token.mac, mac) is not None
