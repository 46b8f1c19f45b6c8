"""KeySet: the keys tokens are signed and verified with, by `kid`, at one moment.

A key's life, when the key set is kept in the store (times are each key's own fields):

    created ──(published: in the JWKS, verifies)──▶ activates_at ──(signs)──▶ the next
    key's activates_at ──(verifies only)──▶ retires_at ──▶ gone

So a key is published `S3AUTH_KEY_PUBLISH_SECONDS` before it signs — every verifier that
caches the JWKS for less than that knows it before the first token it signs — and a key
that stopped signing stays until its last token has expired. A key set is immutable; the
key ring replaces it whole when the stored one changes.

The signing key is the newest key whose `activates_at` has passed (`ranking`): each process
decides it from the clock alone, with no write at the moment of rotation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterable
from typing import Any

from joserfc.jws import JWSRegistry

from ..errors import ConfigurationError
from ..token_budget import check_signing_key
from .algorithms import Key
from .low_s import LOW_S_ALGORITHMS
from .material import has_private_part, import_key, public_jwk, thumbprint
from .names import UnusableKeyError, accepted_names, algorithm_for, is_symmetric
from .ranking import signer


class KeyEntry:
    """One key: its kid, the algorithm it is pinned to, and when it signs and retires."""

    __slots__ = (
        "accepted",
        "activates_at",
        "algorithm",
        "key",
        "kid",
        "low_s",
        "registry",
        "retires_at",
        "verifies_only",
    )

    def __init__(
        self,
        kid: str,
        algorithm: str,
        key: Key,
        *,
        activates_at: float = 0.0,
        retires_at: float | None = None,
        verifies_only: bool = False,
    ) -> None:
        self.kid = kid
        self.algorithm = algorithm
        self.key = key
        self.activates_at = activates_at
        self.retires_at = retires_at
        self.verifies_only = verifies_only
        """A secret key that never signs, though it could: an HS* fallback (`keys.ring`)."""
        self.accepted = accepted_names(algorithm)
        # Built once per key: joserfc builds a registry per call otherwise. It allows only
        # this key's algorithm, which is what pins a token's `alg` to its key.
        self.registry = JWSRegistry(algorithms=sorted(self.accepted))
        # Its signatures are written and accepted in the low-S form only (`low_s`).
        self.low_s = algorithm in LOW_S_ALGORITHMS

    @property
    def can_sign(self) -> bool:
        return self.key.is_private and not self.verifies_only

    def live_at(self, now: float) -> bool:
        return self.retires_at is None or now < self.retires_at

    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.key, kid=self.kid, algorithm=self.algorithm)

    def __repr__(self) -> str:
        return f"KeyEntry(kid={self.kid!r}, algorithm={self.algorithm!r})"


class KeySet:
    """Keys by kid. Refused: no key, two keys with one kid, secret keys mixed with public
    ones (a kid must never leave it open which family verifies), and a key that signs
    tokens longer than verifiers read (`token_budget.check_signing_key`)."""

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self.entries = tuple(entries)
        if not self.entries:
            raise ConfigurationError("a key set needs at least one key")
        self._by_kid = {entry.kid: entry for entry in self.entries}
        if len(self._by_kid) != len(self.entries):
            raise UnusableKeyError("two keys of the key set have the same kid")
        if len({is_symmetric(entry.algorithm) for entry in self.entries}) > 1:
            raise UnusableKeyError("a key set holds HMAC keys or public keys, not both")
        self.symmetric = is_symmetric(self.entries[0].algorithm)
        self._signers = [e for e in self.entries if e.can_sign]
        for entry in self._signers:  # a set given in code too: every token carries these
            check_signing_key(entry.key, entry.kid)

    def __len__(self) -> int:
        return len(self._by_kid)

    def get(self, kid: object, now: float) -> KeyEntry | None:
        entry = self._by_kid.get(kid) if isinstance(kid, str) else None
        return entry if entry is not None and entry.live_at(now) else None

    def signing_key(self, now: float, *, published: Container[str] | None = None) -> KeyEntry:
        """The key that signs at `now` (`ranking.signer`). With `published`, the kids
        known to be in a JWKS written out: a key not among them signs only when none of
        them can, so a new key waits for its publication and the key it replaces signs
        meanwhile."""
        entry = None
        if published is not None:
            entry = signer([e for e in self._signers if e.kid in published], now)
        if entry is None:
            entry = signer(self._signers, now)
        if entry is None:
            raise ConfigurationError("no signing key is active: see `s3auth keys list`")
        return entry

    def jwks(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """The published public keys (none for HMAC keys, which must stay secret)."""
        if self.symmetric:
            return {"keys": []}
        return {"keys": [e.public_jwk() for e in self.entries if e.live_at(now)]}

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        """The verification keys of a published JWKS. Each key is pinned to its `alg`, or
        when it has none to the one algorithm this package uses for its type and curve.
        Keys of other uses, algorithms or types are skipped (a JWKS may hold encryption
        keys, or keys of a type unknown here); a secret or private key, or a kid twice,
        makes the whole document unusable."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise UnusableKeyError("the JWKS is not an object with a `keys` list")
        entries = []
        kids: set[str] = set()
        for jwk in document["keys"]:
            if not isinstance(jwk, dict):
                raise UnusableKeyError("a JWKS member is not a JSON object")
            if jwk.get("kty") == "oct" or has_private_part(jwk):
                raise UnusableKeyError("the JWKS holds secret key material: refusing it")
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            if kid in kids:
                raise UnusableKeyError(f"the JWKS has the kid {kid!r} twice")
            kids.add(kid)
            try:
                algorithm = _algorithm_of(jwk)
                key, _ = import_key(algorithm, jwk)
            except UnusableKeyError:
                continue
            entries.append(KeyEntry(kid, algorithm, key))
        if not entries:
            raise UnusableKeyError("the JWKS has no key this package can verify with")
        return cls(entries)


def jwks_bytes(document: dict[str, Any]) -> bytes:
    """A JWKS as it is served and published: compact JSON with sorted members, so that
    equal key sets give equal bytes in every process."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def jwks_fingerprint(document: dict[str, Any]) -> str:
    """A short hash of a JWKS: its ETag, the same in every process."""
    return hashlib.sha256(jwks_bytes(document)).hexdigest()[:32]


_DEFAULT_ALGORITHM: dict[tuple[object, object], str] = {
    ("EC", "P-256"): "ES256",
    ("OKP", "Ed25519"): "EdDSA",
    ("RSA", None): "RS256",
}
DEFAULT_ALGORITHMS = tuple(_DEFAULT_ALGORITHM.values())
"""The algorithm a public key without `alg` is pinned to, one per key type."""


def _algorithm_of(jwk: dict[str, Any]) -> str:
    alg = jwk.get("alg")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    # Names only: a list or an object there is no type known here (and cannot be looked up).
    if alg is None and isinstance(kty, str) and isinstance(crv, str | None):
        alg = _DEFAULT_ALGORITHM.get((kty, crv))
    algorithm = algorithm_for(alg)
    if is_symmetric(algorithm.name):
        raise UnusableKeyError("an HMAC key cannot be published")
    return algorithm.name


def entry_for(algorithm: str, key: Key, *, kid: str | None = None, **times: Any) -> KeyEntry:
    """A key entry whose kid is the key's thumbprint unless one is given."""
    return KeyEntry(kid or thumbprint(key), algorithm, key, **times)
