"""What a process saw of the stored key set change: a change made elsewhere (`s3auth keys`,
another host) is logged by its writer only, in the writer's process; each process of the
service logs, `by observer` (`keys.events`), what it found changed itself, so that the
logs of the fleet show the keys changing under it.

    key_set_changed   a read found a set other than the one held: the keys added (with
                      when each signs), removed, given a retirement, and replaced (a
                      kid kept with another key under it: at WARNING)
    key_activated     the first token signed with a key other than the one signed with
                      before: activation is no write, each process's clock decides it

Each is logged once per process and change: the read that first finds the set changed (a
sync, a read caused by a token naming an unknown key, one of keys overdue), and the first
signature with the new key. The first read and the first signature of a process are what
it starts from, and log nothing. Both are computed from what the read brought and the
key chosen to sign: no request of their own.

Keys are compared by kid and by their RFC 7638 thumbprint, computed at each read for each
key read (never per token): a kid kept with another key under it is no rotation this
package makes (a stored key's kid is its thumbprint, `opening`), so it is what a log must
show, whatever made it: an issuer misconfigured, or a JWKS that is not the issuer's.

A JwksVerifier (`keys.remote`) logs `key_set_changed` too, for the JWKS of an issuer whose
log is not its own: a JWKS carries no times, so the keys it names have no `activates_at`
or `retires_at`.
"""

from __future__ import annotations

from .events import KeyTimes, tell
from .keyset import KeyEntry, KeySet
from .material import thumbprint

Held = tuple[float | None, float | None, str]
"""A key as a read found it: when it activates and retires, and its thumbprint."""


class KeyObserver:
    """The key set one process last read, and the key it last signed with. `timed`: the
    keys' times are theirs (a stored set's); untimed, for a JWKS's keys, which have none."""

    def __init__(self, *, timed: bool = True) -> None:
        self._timed = timed
        self._held: dict[str, Held] | None = None
        self._signing: str | None = None
        self.replaced: tuple[str, ...] = ()
        """The kids the last read found kept with another key under them."""

    def read(self, keys: KeySet, now: float) -> bool:
        """After a read of the set at `now`: log what changed since the one held. False
        when it is the set held (the same keys, by kid and thumbprint, at the same times)."""
        held = {e.kid: self._held_of(e) for e in keys.entries}
        before, self._held = self._held, held
        self.replaced = ()
        if before == held:
            return False
        if before is None:
            return True
        added = tuple(KeyTimes(kid, *key[:2]) for kid, key in held.items() if kid not in before)
        retiring = tuple(
            KeyTimes(kid, *key[:2])
            for kid, key in held.items()
            if kid in before and key[1] is not None and key[1] != before[kid][1]
        )
        removed = tuple(kid for kid in before if kid not in held)
        self.replaced = tuple(
            kid for kid, key in held.items() if kid in before and key[2] != before[kid][2]
        )
        if added or retiring or removed or self.replaced:
            tell(
                "key_set_changed",
                now,
                "observer",
                added=added,
                retiring=retiring,
                removed=removed,
                replaced=self.replaced,
            )
        return True

    def thumbprint_held(self, kid: str) -> str | None:
        """The thumbprint of the key the last read found under `kid`; None when it found
        none. Computed at that read: a lookup."""
        held = self._held
        key = None if held is None else held.get(kid)
        return None if key is None else key[2]

    def _held_of(self, entry: KeyEntry) -> Held:
        made = thumbprint(entry.key)
        if self._timed:
            return entry.activates_at, entry.retires_at, made
        return None, None, made

    def signs(self, key: KeyEntry, now: float) -> None:
        """Before signing with `key` at `now`: log it if it is not the key signed with
        last. Called for every token signed: one comparison."""
        if key.kid == self._signing:
            return
        before, self._signing = self._signing, key.kid
        if before is not None:
            tell("key_activated", now, "observer", kid=key.kid, activates_at=key.activates_at)
