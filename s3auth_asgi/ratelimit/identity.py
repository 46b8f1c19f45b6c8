"""Who a request is counted as, besides its client address: the authenticated user, or the
account a login names."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..identifiers import fold
from ..types import Scope

_USER_ID_ATTRIBUTES = ("id", "user_id", "sub", "identity", "username")

KEY_TEXT_MAX = 128
"""The longest key (a key function's, or `key=`'s) counted under its own text; a longer one
is counted under its digest (`counted_key`). Far above an API key or a tenant's name, and
short enough that a limit's `max_keys` keys stay within a few hundred bytes each."""


def user_identity(scope: Scope) -> str | None:
    """The id of the authenticated user in `scope["user"]`, None for anonymous requests.

    Accepts what authentication middlewares put there: a mapping of claims (`sub`/`id`), or
    an object with `id`/`user_id`/`sub`/`identity`/`username` (Starlette's `BaseUser.identity`,
    `SimpleUser.username`), honouring `is_authenticated = False`.
    """
    user: Any = scope.get("user")
    if user is None:
        return None
    if isinstance(user, Mapping):
        for name in ("sub", "id", "user_id"):
            value = user.get(name)
            if value is not None and value != "":
                return str(value)
        return None
    if getattr(user, "is_authenticated", True) is False:
        return None
    for name in _USER_ID_ATTRIBUTES:
        try:
            value = getattr(user, name, None)
        except NotImplementedError:  # Starlette's BaseUser leaves `identity` abstract
            continue
        if value is not None and value != "" and not callable(value):
            return str(value)
    return None


def account_digest(account: str) -> str:
    """A fixed-length name for the account a request targets (a login's username or email).

    Normalised as usernames are (NFKC, case-folded, trimmed), so "Alice" and "alice " share a
    bucket; hashed, so an attacker's 1 MB username costs 32 bytes of limiter memory.
    """
    normalised = fold(account.strip())
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def counted_key(key: str) -> str:
    """What a request counted under `key` is kept by: `key:` and the key, or, for a key
    longer than KEY_TEXT_MAX, `key-sha256:` and its digest. A key function's key is often
    the client's own text (an API key sent), which a limit kept in memory would otherwise
    hold as sent, up to `max_keys` of them. One to one: no key kept as written starts
    `key-sha256:`."""
    if len(key) <= KEY_TEXT_MAX:
        return "key:" + key
    return "key-sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
