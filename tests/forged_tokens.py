"""Access tokens forged under the tests' secret key, HS256 over exactly the header and
claims a test gives: how the token tests reach the edges no codec of this package would
sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from conftest import SECRET, make_settings

SETTINGS = make_settings()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: Any, claims: Any, *, raw: bool = False, secret: bytes = SECRET.encode()) -> str:
    """An HS256 token under `secret` (the UTF-8 bytes of the secret key, as in
    `KeySet.from_settings`) over these header and claims: JSON, or the octets themselves
    when `raw`."""
    parts = (header, claims) if raw else (json.dumps(header).encode(), json.dumps(claims).encode())
    signing_input = f"{b64url(parts[0])}.{b64url(parts[1])}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def claims(**changes: Any) -> dict[str, Any]:
    """The claims of an access token valid now, with `changes`."""
    now = int(time.time())
    return {
        "sub": "0" * 32,
        "iat": now,
        "nbf": now,
        "exp": now + SETTINGS.access_token_seconds,
        "jti": "j" * 22,
        "sid": "f" * 32,
        "scope": "items:read",
        **changes,
    }
