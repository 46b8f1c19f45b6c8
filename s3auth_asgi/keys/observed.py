"""What a process saw of the stored key set change: a change made elsewhere (`s3auth keys`,
another host) is logged by its writer only, in the writer's process; each process of the
service logs, `by observer` (`keys.events`), what it found changed itself, so that the
logs of the fleet show the keys changing under it.

    key_set_changed   a read found a set other than the one held: the keys added (with
                      when each signs), removed, and given a retirement
    key_activated     the first token signed with a key other than the one signed with
                      before: activation is no write, each process's clock decides it

Each is logged once per process and change: the read that first finds the set changed (a
sync, a read caused by a token naming an unknown key, one of keys overdue), and the first
signature with the new key. The first read and the first signature of a process are what
it starts from, and log nothing. Both are computed from what the read brought and the
key chosen to sign: no request of their own.

A JwksVerifier (`keys.remote`) logs `key_set_changed` too, for the JWKS of an issuer whose
log is not its own: a JWKS carries no times, so its keys are compared by kid alone, and
those it names have no `activates_at` or `retires_at`.
"""

from __future__ import annotations

from .events import KeyTimes, tell
from .keyset import KeyEntry, KeySet

Times = tuple[float | None, float | None]
UNTIMED: Times = (None, None)


class KeyObserver:
    """The key set one process last read, and the key it last signed with. `timed`: the
    keys' times are theirs (a stored set's); untimed, for a JWKS's keys, which have none."""

    def __init__(self, *, timed: bool = True) -> None:
        self._timed = timed
        self._held: dict[str, Times] | None = None
        self._signing: str | None = None

    def read(self, keys: KeySet, now: float) -> bool:
        """After a read of the set at `now`: log what changed since the one held. False
        when it is the set held (the same keys at the same times)."""
        held = {
            e.kid: (e.activates_at, e.retires_at) if self._timed else UNTIMED for e in keys.entries
        }
        before, self._held = self._held, held
        if before == held:
            return False
        if before is None:
            return True
        added = tuple(KeyTimes(kid, *times) for kid, times in held.items() if kid not in before)
        retiring = tuple(
            KeyTimes(kid, *times)
            for kid, times in held.items()
            if kid in before and times[1] is not None and times[1] != before[kid][1]
        )
        removed = tuple(kid for kid in before if kid not in held)
        if added or retiring or removed:
            tell(
                "key_set_changed",
                now,
                "observer",
                added=added,
                retiring=retiring,
                removed=removed,
            )
        return True

    def signs(self, key: KeyEntry, now: float) -> None:
        """Before signing with `key` at `now`: log it if it is not the key signed with
        last. Called for every token signed: one comparison."""
        if key.kid == self._signing:
            return
        before, self._signing = self._signing, key.kid
        if before is not None:
            tell("key_activated", now, "observer", kid=key.kid, activates_at=key.activates_at)
