"""Key material in, key material out: PEM and JWK text, the `kid`, the public JWK.

Every key enters through `import_key` (a PEM block, a JWK object as JSON, or a JWK dict),
which also judges it (`algorithms.check_key`) and reads the JWK members that limit a key's
use: `use` must be `sig`, `key_ops` must allow `verify` (a private key's: `sign` or
`verify`), and an `alg` must be the algorithm the key is configured for. A private JWK's
public members must be its private part's (`key_pairs`). A key's `kid` is its RFC 7638
thumbprint unless it came with one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from .algorithms import Key, check_key
from .key_pairs import check_key_pair
from .names import UnusableKeyError, accepted_names, algorithm_for

_KEY_CLASSES: dict[str, type[ECKey] | type[OKPKey] | type[RSAKey] | type[OctKey]] = {
    "EC": ECKey,
    "OKP": OKPKey,
    "RSA": RSAKey,
    "oct": OctKey,
}
_PRIVATE_MEMBERS = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))
MAX_KEY_TEXT = 16384


def import_key(algorithm: str, material: str | bytes | dict[str, Any]) -> tuple[Key, str | None]:
    """The key for `algorithm` from PEM or JWK `material`, and the kid it came with.
    UnusableKeyError says what is wrong without quoting the material."""
    if isinstance(material, bytes):
        try:
            material = material.decode("utf-8")
        except UnicodeDecodeError:
            raise UnusableKeyError("the key is neither PEM nor JWK text") from None
    if isinstance(material, str):
        text = material.strip()
        if len(text) > MAX_KEY_TEXT:
            raise UnusableKeyError("the key text is too long")
        if text.startswith("{"):
            try:
                material = json.loads(text)
            except ValueError:
                raise UnusableKeyError("the key looks like JWK but is not valid JSON") from None
        elif "-----BEGIN" not in text:
            raise UnusableKeyError("the key is neither a PEM block nor a JWK object")
    kty = algorithm_for(algorithm).kty  # a name read from the store may be any string
    key_class = _KEY_CLASSES[kty]
    kid: str | None = None
    try:
        if isinstance(material, dict):
            _check_jwk_members(algorithm, material)
            check_key_pair(material)
            kid = material.get("kid") if isinstance(material.get("kid"), str) else None
            key: Key = key_class.import_key(
                {k: v for k, v in material.items() if k not in ("kid", "alg", "use", "key_ops")}
            )
        else:
            key = key_class.import_key(material)
    except UnusableKeyError:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise UnusableKeyError(
            f"the key is not a valid {kty} key for {algorithm} ({type(exc).__name__})"
        ) from None
    check_key(algorithm, key)
    return key, kid


def _check_jwk_members(algorithm: str, jwk: dict[str, Any]) -> None:
    kty = algorithm_for(algorithm).kty
    if jwk.get("kty") != kty:
        raise UnusableKeyError(f"{algorithm} needs a key of type {kty}")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise UnusableKeyError("the key's `use` is not `sig`")
    ops = jwk.get("key_ops")
    if ops is not None:
        # RFC 7517 §4.3: what the key may be used for. A public key verifies, or is of no
        # use here (one published for `sign` alone says it is not for verifying); a
        # private one signs, and its public half verifies what it signed.
        allowed = ("sign", "verify") if has_private_part(jwk) else ("verify",)
        if not (isinstance(ops, list) and any(op in ops for op in allowed)):
            raise UnusableKeyError(f"the key's `key_ops` allow none of {', '.join(allowed)}")
    alg = jwk.get("alg")
    if alg is not None and alg not in accepted_names(algorithm):
        raise UnusableKeyError(f"the key is for {alg!r}, not {algorithm}")


def thumbprint(key: Key) -> str:
    """The RFC 7638 SHA-256 thumbprint: the same for the private and the public key."""
    return str(key.thumbprint())


def public_jwk(key: Key, *, kid: str, algorithm: str) -> dict[str, Any]:
    """The JWK a verifier needs: public members only, with kid, alg and `use: sig`."""
    if isinstance(key, OctKey):
        raise UnusableKeyError("an HMAC key has no public form")
    jwk = {k: v for k, v in key.as_dict(private=False).items() if k not in _PRIVATE_MEMBERS}
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def public_only(key: Key) -> Key:
    """The public half of a key pair (a verification key must not hold the private one)."""
    return type(key).import_key(key.as_dict(private=False))


def private_jwk(key: Key) -> dict[str, Any]:
    return dict(key.as_dict(private=True))


def has_private_part(jwk: dict[str, Any]) -> bool:
    return any(member in jwk for member in _PRIVATE_MEMBERS)


def is_private(key: Key) -> bool:
    return key.is_private


def read_key_file(variable: str, file: str) -> str:
    """The text of the key file `variable` names; UnusableKeyError says what is wrong with it,
    starting with `variable`. Read up to one byte past the limit rather than judged by its
    size, which a pipe (`<(…)`) does not report."""
    path = Path(file).expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_TEXT + 1)
    except IsADirectoryError:
        raise UnusableKeyError(f"{variable}: {path} is a directory, not a key file") from None
    except OSError as exc:
        raise UnusableKeyError(
            f"{variable}: the file could not be read ({type(exc).__name__})"
        ) from None
    if len(data) > MAX_KEY_TEXT:
        raise UnusableKeyError(f"{variable}: the file is too large for a key")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableKeyError(f"{variable}: the file is not UTF-8 text") from None
