"""What a listing of sessions says on its own: which have expired, and which are beyond the
per-user cap (`S3AUTH_MAX_SESSIONS_PER_USER`) once those that cannot be used are known.

Expired, from a listing: a session's object is rewritten at every rotation, and no session
refreshes past that write plus the idle lifetime; its id begins with its creation time, and
no session outlives that (held to the store's clock: `session_times`) plus the absolute
lifetime. Both are the lifetimes configured
today, which a refresh applies too (`Session.idle_expiry`, `absolute_expiry`), so the
sweep and every host agree after an operator shortens one. So a listed session whose
Last-Modified is older than the idle lifetime, or whose id is older than the absolute
lifetime, has expired — give or take the clock-skew allowance
(`S3AUTH_REVOCATION_SKEW_SECONDS`) between the clocks of the store, the host that wrote the
session, the host it reaches and this one. The sweep errs towards counting a session as
live (it must not delete one that can still refresh): twice the allowance past its
Last-Modified (`last_modified` says why), the allowance past its id's time, which the
hosts compare with a time from the same clock. The cap errs towards counting it as expired
(a session that may have expired must not push a live one out), which at worst lets one
more session refresh for the allowance. The converse does not hold: after an operator
lengthens a lifetime, a session that expired under the old one (its written expiry) looks
live here, and so does a session its account's generation refuses (`session_generation`);
only the object tells, which is why `session_rules` reads the sessions a listing ranks
when it shows more than the cap.

The cap: only the newest `cap` sessions of a user that can be used (`session_rules`) may
refresh. Session ids hold their creation time (`identifiers`), so a listing ranks them by
age, then by id: the same total order on every host whatever its clock. The age is the
opening time as `session_times` holds it to the store's clock, from the objects where they
are read (over the cap), so a session opened by a host far ahead does not rank newer than
the sessions opened after it. The cap is
enforced when a session refreshes, not when one is opened: a login keeps its request
budget (a LIST of the user's sessions there would add a request to every login), and a
refresh, which already reads and writes the session, adds the one LIST; when
that shows more live sessions than the cap, 1 GET per other one of them, after which those
beyond the cap and those that cannot be used are ended, so the next listing is within the
cap and reads nothing (`session_rules`). The guarantee that gives:

- a session that is not among the newest `cap` usable ones when it refreshes is refused and
  ended (its access tokens too), but for the previous token within the grace window, which
  repeats the answer to a rotation that passed the cap and lists nothing (an access token
  more, revoked with the session at the next refresh that lists it); any refresh that finds
  such sessions ends them all, so a login beyond the cap ends the oldest session at the
  first refresh of any of the user's sessions, and at the latest its access token expires
  (`S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES`) without a refresh being possible;
- the slack under races: a refresh whose LIST ran before a concurrent login's PUT landed
  does not see that session, and may succeed once more while ranking `cap + 1`; its next
  refresh is refused. Once the logins have landed, exactly the newest `cap` usable
  sessions can refresh, whichever hosts serve them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from .identifiers import session_created_ms
from .last_modified import lapsed_everywhere
from .session_times import opened_ms
from .settings import S3AuthSettings
from .storage import ObjectInfo, keys


def listed_as_expired(
    info: ObjectInfo, settings: S3AuthSettings, now: float, *, surely: bool = True
) -> bool:
    """Whether the listed session has expired (see the module): `surely`, on every host
    within the allowance (the sweep's question); otherwise, maybe, on one (the cap's)."""
    skew = settings.revocation_skew_seconds
    created = opened_ms(keys.id_from_key(info.key), info.last_modified, skew) / 1000
    if surely:
        return (
            lapsed_everywhere(info, settings.refresh_token_seconds, skew, now)
            or created + settings.session_absolute_seconds + skew < now
        )
    written = info.last_modified.timestamp()
    return (
        written + settings.refresh_token_seconds - skew < now
        or created + settings.session_absolute_seconds - skew < now
    )


def counted(
    listed: Iterable[ObjectInfo],
    settings: S3AuthSettings,
    now: float,
    own_key: str | None = None,
    opened: Mapping[str, int] | None = None,
) -> list[str]:
    """The keys of the listed sessions that may be live by the listing alone (towards
    expired: see the module), oldest first: by when each was opened (`session_times`), as
    `opened` gives it for the sessions read, else as the listing does, then by id. `own_key`,
    the session being refreshed, is among them whatever the listing says of it: its object
    was just read."""
    listed = list(listed)
    skew = settings.revocation_skew_seconds
    ages = {
        info.key: opened_ms(keys.id_from_key(info.key), info.last_modified, skew) for info in listed
    }
    ages.update(opened or {})
    live = {info.key for info in listed if not listed_as_expired(info, settings, now, surely=False)}
    if own_key is not None:
        live.add(own_key)

    def age(key: str) -> tuple[int, str]:
        session_id = keys.id_from_key(key)
        return ages.get(key, session_created_ms(session_id)), session_id

    return sorted(live, key=age)  # oldest first


def beyond_cap(
    listed: Iterable[ObjectInfo],
    settings: S3AuthSettings,
    now: float,
    own_key: str | None = None,
    unusable: Collection[str] = (),
    opened: Mapping[str, int] | None = None,
) -> list[str]:
    """The keys of the `counted` sessions older than the newest `max_sessions_per_user`,
    oldest first, not ranking those known to be `unusable` (`session_rules`)."""
    ranked = [key for key in counted(listed, settings, now, own_key, opened) if key not in unusable]
    return ranked[: max(len(ranked) - settings.max_sessions_per_user, 0)]
