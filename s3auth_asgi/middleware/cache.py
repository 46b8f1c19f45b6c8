"""The verified-token cache: a token presented again is not verified again.

Keyed by the exact token bytes, bounded, least recently used first out. A token verifies
in one spelling only (an ES256 signature in its low-S form, `keys.low_s`), so one token
holds one entry. An entry is the `scope["auth"]` object, holding the user built from the
claims, so a cache hit allocates nothing, and the moments from which it must be looked at
again, so `exp` is still checked on every request (revocation is checked by
BlacklistMiddleware, also on every request).

Those moments are the token's expiry (`expires_from`, on the verifier's clock, which
judges `exp`) and, when the verifier's keys can change while it runs, the end of the
verification's stand (`recheck_by`): it stands as long as the keys it used may go unread
(`verifier.reverify_bound`), then the token is verified again, so a token whose key was
retired is accepted from the cache at most that long after the process read the keys that
drop it. The stand is timed on the clock that times the reads of the keys
(`verifier.elapsed_clock_of`, monotonic beside the real time): a step back of the host's
clock would otherwise stretch it by the step's length. It is timed on the verifier's clock
(the wall clock) too, and ends by whichever says so first, as the copy of the keys ages
(`freshness.age_since`): a pause of the whole machine stops the monotonic clock, and a key
dropped during it must not verify from the cache after it. A hit compares each clock with
one number (the wall clock's, the earlier of `exp`'s and the stand's end, so no clock more
is read); where the keys are fixed while the verifier runs, the verifier's clock alone.

A verifier whose source can change the key under a kid (a JwksVerifier) clears the cache
at the read that finds that (`verifier.KeyReplacements`): the old key's verifications stand
no moment longer, whatever their stand. Never per request.

Only tokens that passed verification are stored: garbage cannot evict good entries faster
than an attacker can obtain valid tokens. `clear()` drops every entry at once.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

from ..errors import ConfigurationError
from .user import AUTHENTICATED, AuthenticatedUser, BearerCredentials, token_scopes


class VerifiedToken(BearerCredentials):
    """The outcome of one successful verification: `scope["auth"]` for every request
    presenting the token, with the user, the moment the token expires (`expires_from`, on
    the verifier's clock), the one from which the verification no longer stands
    (`recheck_by`: `stands_until`, on the clock that times the reads of its keys; and
    `stands_until_wall`, on the verifier's clock, which with `expires_from` makes
    `due_from`, the first moment on that clock to look at the entry again), and the
    verifier it counts as (`verified_by`: `verifier.verifier_identity`), which the auth
    app, the hosts' checks and a BearerTokenMiddleware nested inside compare with their
    own before they take the caller, and its leeway (`leeway_seconds`), which a step-up
    check allows `auth_time` too (`step_up`)."""

    __slots__ = (
        "due_from",
        "expires_from",
        "leeway_seconds",
        "recheck_by",
        "user",
        "verified_by",
    )

    def __init__(
        self,
        claims: dict[str, Any],
        leeway_seconds: int,
        stands_until: float = math.inf,
        *,
        verified_by: object = None,
        stands_until_wall: float = math.inf,
    ) -> None:
        # On every cache miss, so no super().__init__ call and no copy: the verifier's
        # own fresh dict, behind a read-only view.
        self.claims = view = MappingProxyType(claims)
        granted = (AUTHENTICATED, *token_scopes(claims))
        self.scopes = granted
        self.user = AuthenticatedUser(view, granted)
        # joserfc refuses once `exp <= int(now) - leeway`, i.e. from the first whole
        # second at or after exp + leeway. Comparing `now >= expires_from` gives the same
        # answer as verifying again (asserted in the tests, at the boundary).
        exp = claims["exp"]
        self.expires_from = (exp if type(exp) is int else math.ceil(exp)) + leeway_seconds
        # For `requires`, which has no verifier: `auth_time` gets the same allowance.
        self.leeway_seconds = leeway_seconds
        self.recheck_by = stands_until
        self.due_from = min(self.expires_from, stands_until_wall)
        self.verified_by = verified_by


class VerifiedTokenCache:
    """A bounded LRU of verified tokens; `max_size=0` disables it."""

    def __init__(self, max_size: int = 4096) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
            raise ConfigurationError("cache_size must be a whole number >= 0")
        self.max_size = max_size
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    def get(self, token: bytes) -> VerifiedToken | None:
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(self, token: bytes, entry: VerifiedToken) -> None:
        if self.max_size == 0:
            return
        entries = self._entries
        entries[token] = entry
        entries.move_to_end(token)  # if it was there already
        if len(entries) > self.max_size:
            entries.popitem(last=False)

    def discard(self, token: bytes) -> None:
        self._entries.pop(token, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries
