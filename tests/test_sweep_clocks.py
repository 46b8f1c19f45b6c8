"""The sweep (`cleanup_expired_tokens`) deletes a session or a mailed token only once no host
would still accept it, whatever the hosts' clocks within the skew allowance
(`S3AUTH_REVOCATION_SKEW_SECONDS`) and across a change of a lifetime setting; what it keeps
past its expiry, every host refuses, so whether the sweep has run changes no answer. It
deletes a revocation entry only once no host would accept a token the entry refuses.

Hosts share one store whose Last-Modified follows the shared time (`StoreClock`, in whole
seconds); each host, the one that writes an object too, reads that time through its own
offset. A host judges by the earlier of the expiry written in the object (by the writer's
clock) and the one today's lifetimes give it; the sweep, from the listing, by today's
lifetimes plus twice the allowance past a Last-Modified (the writer's clock and the store's
may be the allowance apart, and the sweeper's and the reader's too), and plus the allowance
past a session id's creation time (read from the clock that wrote the session's
`created_at`, which the reader compares).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from support import RacedUserWrite, SharedTime, StoreClock, login, skewed_host, user_record

from s3auth_asgi import S3AuthService, TokenExpiredError, TokenRevokedError
from s3auth_asgi.account_tokens import InvalidAccountTokenError, Purpose
from s3auth_asgi.models import User
from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
DAY = 86400
SKEW = 10  # the default allowance
LEEWAY = 5  # the default S3AUTH_LEEWAY_SECONDS
RESET = 1800  # the default S3AUTH_PASSWORD_RESET_MINUTES, in seconds
PASSWORD = "Correct-Horse-42x"
NEW_PASSWORD = "Brand-new-pass-7"


def shared_store() -> tuple[SharedTime, StoreClock]:
    time = SharedTime()
    return time, StoreClock(ObjectStore.from_url("memory://"), lambda: time.now)


async def listed(store: StoreClock, prefix: str) -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def mailed(host: S3AuthService, purpose: Purpose, user: User) -> str:
    """A token `host` issues (for its configured lifetime), as if it mailed it."""
    return await host.account_tokens.issue(purpose, user)


# Mailed tokens across clocks ----------------------------------------------------------------


async def test_a_mailed_token_is_kept_while_a_host_whose_clock_is_behind_accepts_it() -> None:
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    user = await issuer.create_user("alice", "alice@example.com", PASSWORD)
    token = await mailed(issuer, "password-reset", user)
    time.advance(RESET - 3)  # 3 s left by the store's and the issuer's clock
    ahead, behind = skewed_host(store, time, 5.0), skewed_host(store, time, -4.0)
    assert await ahead.cleanup_expired_tokens() == 0  # 2 s past it by its own clock
    await behind.reset_password(token, NEW_PASSWORD)  # 7 s left by its clock
    assert await issuer.authenticate_user("alice", NEW_PASSWORD) is not None
    assert await listed(store, keys.ACCOUNT_TOKENS) == []  # spent, and deleted by its use


async def test_the_sweep_deletes_a_mailed_token_twice_the_allowance_after_its_expiry() -> None:
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    await mailed(issuer, "password-reset", user_record())
    await mailed(issuer, "email-verification", user_record())  # 48 hours
    time.advance(RESET + 2 * SKEW)
    sweeper = skewed_host(store, time, 0.0)
    assert await sweeper.cleanup_expired_tokens() == 0
    time.advance(1)
    store.reset_counts()
    assert await sweeper.cleanup_expired_tokens() == 1
    # One LIST each of sessions, revocations, mailed tokens, events and rate-limit objects;
    # the GET of the end of every session; one DELETE.
    assert dict(store.requests) == {"list": 5, "get": 1, "delete": 1}
    assert [key.split("/")[1] for key in await listed(store, keys.ACCOUNT_TOKENS)] == [
        "email-verification"
    ]


async def test_a_host_further_behind_than_the_allowance_is_refused_cleanly() -> None:
    """Clocks further apart than the allowance: the token is gone before the late host's
    clock says it expires, and that host gives the answer of an expired token, having
    written nothing."""
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    user = await issuer.create_user("alice", "alice@example.com", PASSWORD)
    pair = await issuer.create_token_pair(user)
    token = await mailed(issuer, "password-reset", user)
    time.advance(RESET + 2 * SKEW + 1)
    assert await skewed_host(store, time, 0.0).cleanup_expired_tokens() == 1
    late = skewed_host(store, time, -(2 * SKEW + 50))  # by its clock, 49 s left
    store.reset_counts()
    with pytest.raises(InvalidAccountTokenError):
        await late.reset_password(token, NEW_PASSWORD)
    assert dict(store.requests) == {"get": 1}  # the token's GET; nothing written
    assert await issuer.authenticate_user("alice", PASSWORD) is not None
    assert await issuer.refresh_access_token(pair.refresh_token)  # the session lives on


async def test_a_token_swept_while_it_is_being_used_is_used_once() -> None:
    """A sweeper whose clock is further ahead than the allowance deletes the token between
    its GET and the write that spends it: the use completes, and the token works no more."""
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    user = await issuer.create_user("alice", "alice@example.com", PASSWORD)
    token = await mailed(issuer, "password-reset", user)
    time.advance(RESET - 1)
    swept: list[int] = []

    async def sweep() -> None:
        swept.append(await skewed_host(store, time, 2 * SKEW + 5).cleanup_expired_tokens())

    raced = skewed_host(RacedUserWrite(store, sweep), time, 0.0)
    await raced.reset_password(token, NEW_PASSWORD)
    assert swept == [1]
    assert await issuer.authenticate_user("alice", NEW_PASSWORD) is not None
    with pytest.raises(InvalidAccountTokenError):
        await issuer.reset_password(token, "Another-pass-8")
    assert await listed(store, keys.ACCOUNT_TOKENS) == []


async def test_a_mailed_token_is_kept_while_any_host_within_the_allowance_accepts_it() -> None:
    """Every clock within 5 s of the store's, so within the allowance of each other. The
    issuer, 5 s ahead, wrote an expiry 5 s after its Last-Modified's; the sweeper, 5 s
    ahead too, must also wait out the 10 s that a host behind still has."""
    time, store = shared_store()
    issuer = skewed_host(store, time, 5.0)
    user = await issuer.create_user("alice", "alice@example.com", PASSWORD)
    token = await mailed(issuer, "password-reset", user)
    time.advance(RESET + 7)  # 7 s past its expiry by the store's clock, 12 s by the sweeper's
    sweeper, behind = skewed_host(store, time, 5.0), skewed_host(store, time, -5.0)
    assert await sweeper.cleanup_expired_tokens() == 0
    await behind.account_tokens.redeem("password-reset", token)  # 3 s left by its clock
    # Swept once twice the allowance has passed, by the sweeper's clock.
    time.advance(8)
    assert await sweeper.cleanup_expired_tokens() == 0  # 20 s past, by its clock
    time.advance(1)
    with pytest.raises(InvalidAccountTokenError):
        await behind.account_tokens.redeem("password-reset", token)
    assert await sweeper.cleanup_expired_tokens() == 1


# Mailed tokens across a change of lifetime --------------------------------------------------


async def test_a_shortened_link_lifetime_applies_to_links_already_mailed() -> None:
    time, store = shared_store()
    before = skewed_host(store, time, 0.0, password_reset_minutes=60)
    token = await mailed(before, "password-reset", user_record())
    time.advance(20 * 60)
    after = skewed_host(store, time, 0.0, password_reset_minutes=15)
    with pytest.raises(InvalidAccountTokenError):  # 20 minutes old: past today's 15
        await after.account_tokens.redeem("password-reset", token)
    assert await after.cleanup_expired_tokens() == 1


async def test_a_lengthened_link_lifetime_leaves_links_already_mailed_their_own() -> None:
    time, store = shared_store()
    before = skewed_host(store, time, 0.0, password_reset_minutes=15)
    token = await mailed(before, "password-reset", user_record())
    time.advance(20 * 60)
    after = skewed_host(store, time, 0.0, password_reset_minutes=60)
    assert await after.cleanup_expired_tokens() == 0  # kept: today's 60 minutes
    with pytest.raises(InvalidAccountTokenError):  # refused: it was mailed for 15
        await after.account_tokens.redeem("password-reset", token)


# Sessions across a change of lifetime -------------------------------------------------------


async def test_a_shortened_idle_lifetime_applies_to_existing_sessions() -> None:
    time, store = shared_store()
    before = skewed_host(store, time, 0.0, refresh_token_expire_days=7)
    user, pair = await login(before)
    time.advance(3 * DAY)
    (session,) = await before.get_user_active_sessions(user.id)  # as the old setting says
    assert session.expires_at == int(time.now) + 4 * DAY
    after = skewed_host(store, time, 0.0, refresh_token_expire_days=1)
    assert await after.get_user_active_sessions(user.id) == []
    with pytest.raises(TokenExpiredError):  # unused for 3 days: past today's 1
        await after.refresh_access_token(pair.refresh_token)


async def test_a_shortened_idle_lifetime_is_the_sweeps_too() -> None:
    time, store = shared_store()
    before = skewed_host(store, time, 0.0, refresh_token_expire_days=7)
    await login(before)
    time.advance(DAY + 2 * SKEW + 1)
    after = skewed_host(store, time, 0.0, refresh_token_expire_days=1)
    assert await after.cleanup_expired_tokens() == 1
    assert await listed(store, keys.SESSIONS) == []


async def test_a_session_is_kept_while_any_host_within_the_allowance_refreshes_it() -> None:
    """As for a mailed token: the session was last written by a host 5 s ahead of the
    store, the sweeper is 5 s ahead and the refreshing host 5 s behind."""
    time, store = shared_store()
    writer = skewed_host(store, time, 5.0)
    _, pair = await login(writer)
    time.advance(7 * DAY + 7)  # 7 s past its idle expiry by the store's clock
    sweeper, behind = skewed_host(store, time, 5.0), skewed_host(store, time, -5.0)
    assert await sweeper.cleanup_expired_tokens() == 0
    await behind.blacklist.sync()
    store.reset_counts()
    pair = await behind.refresh_access_token(pair.refresh_token)  # 3 s left by its clock
    assert dict(store.requests) == {"get": 1, "list": 1, "put": 1}
    # Idle again, written by the host behind: swept once twice the allowance has passed
    # since its Last-Modified's expiry, by the sweeper's clock; refused well before.
    time.advance(7 * DAY + 2 * SKEW - 5)
    assert await sweeper.cleanup_expired_tokens() == 0
    time.advance(1)
    assert await sweeper.cleanup_expired_tokens() == 1
    assert await listed(store, keys.SESSIONS) == []


async def test_a_lengthened_idle_lifetime_leaves_existing_sessions_their_own() -> None:
    time, store = shared_store()
    before = skewed_host(store, time, 0.0, refresh_token_expire_days=1)
    user, pair = await login(before)
    time.advance(2 * DAY)
    after = skewed_host(store, time, 0.0, refresh_token_expire_days=7)
    assert await after.cleanup_expired_tokens() == 0  # kept: today's 7 days
    assert await after.get_user_active_sessions(user.id) == []
    with pytest.raises(TokenExpiredError):  # refused: it was written for 1
        await after.refresh_access_token(pair.refresh_token)


# The invariant, across clocks and lifetime changes ------------------------------------------

_ANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_NEAR = st.floats(-2.5 * SKEW, 2.5 * SKEW)  # around each expiry, by the reader's clock
_WRITTEN_AT = st.floats(0, 1, exclude_max=True)  # a fraction of a second: Last-Modified drops it
# The worst case the allowance admits: the writer as far ahead of the store as it may be,
# and the sweeper of the reader, a quarter of a second before the reader's expiry; the
# writer's clock on a whole second and the store's half a second into one, which its
# Last-Modified drops.
_WORST_CLOCKS = (SKEW - 0.5, -0.5, SKEW - 0.5)


@st.composite
def _clocks(draw: st.DrawFn) -> tuple[float, float, float]:
    """The offsets off the store's clock of the host that writes the object, of one that
    reads it and of the sweeper: the first two and the store's within the allowance of each
    other; the sweeper up to the allowance ahead of them (further behind is harmless)."""
    low = draw(st.one_of(st.sampled_from([-SKEW, -SKEW / 2, 0]), st.floats(-SKEW, 0)))
    within = st.one_of(st.sampled_from([low, low + SKEW]), st.floats(low, low + SKEW))
    sweeper = st.one_of(within, st.floats(low - 2 * SKEW, low))
    return draw(within), draw(within), draw(sweeper)


@_ANY
@given(
    idle=st.tuples(st.integers(1, 7), st.integers(1, 7)),  # days: when written, today
    absolute=st.tuples(st.integers(7, 30), st.integers(7, 30)),
    refreshed_on_day=st.integers(0, 6),
    anchor=st.sampled_from(["idle before", "idle today", "absolute before", "absolute today"]),
    near=_NEAR,
    written_at=_WRITTEN_AT,
    clocks=_clocks(),
)
@example(
    idle=(7, 7),
    absolute=(30, 30),
    refreshed_on_day=1,
    anchor="idle today",
    near=-0.25,
    written_at=0.5,
    clocks=_WORST_CLOCKS,
)
async def test_the_sweep_deletes_no_session_a_host_would_still_refresh(
    idle: tuple[int, int],
    absolute: tuple[int, int],
    refreshed_on_day: int,
    anchor: str,
    near: float,
    written_at: float,
    clocks: tuple[float, float, float],
) -> None:
    writer_offset, reader, sweeper_offset = clocks
    time, store = shared_store()
    time.advance(written_at)
    lifetimes = [
        {"refresh_token_expire_days": i, "session_absolute_lifetime_days": a}
        for i, a in zip(idle, absolute, strict=True)
    ]
    writer = skewed_host(store, time, writer_offset, **lifetimes[0])
    _, pair = await login(writer)
    refreshed = min(refreshed_on_day, idle[0] - 1) * DAY
    if refreshed:
        time.advance(refreshed)
        pair = await writer.refresh_access_token(pair.refresh_token)
    expiries = {
        "idle before": refreshed + idle[0] * DAY,
        "idle today": refreshed + idle[1] * DAY,
        "absolute before": absolute[0] * DAY,
        "absolute today": absolute[1] * DAY,
    }
    time.advance(max(expiries[anchor] + writer_offset - reader + near - refreshed, 0))
    sweeper = skewed_host(store, time, sweeper_offset, **lifetimes[1])
    host = skewed_host(store, time, reader, **lifetimes[1])
    (key,) = await listed(store, keys.SESSIONS)
    body = await store.get(key, dict)  # type: ignore[type-abstract]
    assert body is not None
    swept = await sweeper.cleanup_expired_tokens()
    if swept:  # put it back: would the host have refreshed it?
        await store.create(key, body.value)
    try:
        await host.refresh_access_token(pair.refresh_token)
        accepted = True
    except TokenExpiredError:
        accepted = False
    assert not (swept and accepted)


_LIFETIME_SETTINGS: dict[Purpose, tuple[str, int]] = {
    "password-reset": ("password_reset_minutes", 60),
    "email-verification": ("email_verification_hours", 3600),
}


@_ANY
@given(
    purpose=st.sampled_from(list(_LIFETIME_SETTINGS)),
    lifetime=st.tuples(st.integers(1, 60), st.integers(1, 60)),  # when mailed, today
    anchor=st.sampled_from([0, 1]),
    near=_NEAR,
    written_at=_WRITTEN_AT,
    clocks=_clocks(),
)
@example(
    purpose="password-reset",
    lifetime=(30, 30),
    anchor=0,
    near=-0.25,
    written_at=0.5,
    clocks=_WORST_CLOCKS,
)
async def test_the_sweep_deletes_no_mailed_token_a_host_would_still_accept(
    purpose: Purpose,
    lifetime: tuple[int, int],
    anchor: int,
    near: float,
    written_at: float,
    clocks: tuple[float, float, float],
) -> None:
    writer_offset, reader, sweeper_offset = clocks
    name, unit = _LIFETIME_SETTINGS[purpose]
    time, store = shared_store()
    time.advance(written_at)
    writer = skewed_host(store, time, writer_offset, **{name: lifetime[0]})
    token = await mailed(writer, purpose, user_record())
    time.advance(max(lifetime[anchor] * unit + writer_offset - reader + near, 0))
    sweeper = skewed_host(store, time, sweeper_offset, **{name: lifetime[1]})
    host = skewed_host(store, time, reader, **{name: lifetime[1]})

    async def accepted() -> bool:
        try:
            await host.account_tokens.redeem(purpose, token)
        except InvalidAccountTokenError:
            return False
        return True

    before = await accepted()
    swept = await sweeper.cleanup_expired_tokens()
    assert not (swept and before)
    assert await accepted() == (before and not swept)  # a kept token: the same answer


# Revocation entries across clocks ----------------------------------------------------------


def refused(host: S3AuthService, token: str) -> bool:
    try:
        host.decode_token(token)
    except (TokenExpiredError, TokenRevokedError):
        return True
    return False


async def test_a_jti_revocation_is_kept_while_a_host_behind_the_sweeper_accepts_the_token() -> None:
    """The token is accepted until `exp` plus the leeway by the verifier's clock, and the
    sweeper's may be the allowance ahead of it: a host started after the sweep must still
    find the entry."""
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    await issuer.blacklist.add(claims["jti"], claims["exp"])
    time.advance(claims["exp"] - time.now + 3)  # 3 s past exp: within the 5 s leeway
    sweeper = skewed_host(store, time, +8.0)
    assert await sweeper.cleanup_expired_tokens() == 0
    started_now = skewed_host(store, time, 0.0)
    await started_now.blacklist.sync()
    with pytest.raises(TokenRevokedError):
        started_now.decode_token(pair.access_token)
    # Once no host within the allowance behind the sweeper accepts the token, it goes.
    time.advance(10)
    assert await sweeper.cleanup_expired_tokens() == 1
    with pytest.raises(TokenExpiredError):
        skewed_host(store, time, 8.0 - SKEW).decode_token(pair.access_token)


async def test_a_logout_is_kept_while_a_host_behind_accepts_a_token_a_host_ahead_issued() -> None:
    """The token's `exp` is by its issuer's clock, up to the allowance ahead of the logout's
    writer's; and the sweeper's may be the allowance ahead of the verifier's."""
    time, store = shared_store()
    issuer, writer = skewed_host(store, time, +5.0), skewed_host(store, time, -5.0)
    _, pair = await login(issuer)
    assert await writer.revoke_refresh_token(pair.refresh_token)
    time.advance(1800 + 10)  # the verifier's clock 5 s before `exp` and the leeway end
    assert await skewed_host(store, time, +5.0).cleanup_expired_tokens() == 0
    started_now = skewed_host(store, time, -5.0)
    await started_now.blacklist.sync()
    with pytest.raises(TokenRevokedError):
        started_now.decode_token(pair.access_token)


async def test_a_jti_revoked_within_its_leeway_by_a_host_ahead_is_written() -> None:
    """By the revoking host's clock the token is the allowance past `exp`; by a host 8 s
    behind, still within the leeway."""
    time, store = shared_store()
    issuer = skewed_host(store, time, 0.0)
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    time.advance(claims["exp"] - time.now + 3)
    await skewed_host(store, time, +8.0).blacklist.add(claims["jti"], claims["exp"])
    started_now = skewed_host(store, time, 0.0)
    await started_now.blacklist.sync()
    with pytest.raises(TokenRevokedError):
        started_now.decode_token(pair.access_token)


_BAND = st.floats(0, SKEW)  # each host's offset: any two are within the allowance


@_ANY
@given(
    kind=st.sampled_from(["jti", "session", "user"]),
    offsets=st.tuples(_BAND, _BAND, _BAND, _BAND),  # issuer, revoker, host, sweeper
    revoked_late=st.booleans(),
    late_by=st.floats(-SKEW, LEEWAY),  # from the token's `exp`, by the true time
    near=st.floats(-SKEW, 3 * SKEW),  # likewise
)
async def test_a_revoked_token_is_refused_whether_or_not_the_sweep_has_run(
    kind: str,
    offsets: tuple[float, float, float, float],
    revoked_late: bool,
    late_by: float,
    near: float,
) -> None:
    issuer_offset, revoker_offset, host_offset, sweeper_offset = offsets
    # A host further behind the issuer than the leeway does not accept the token yet, nor
    # take its `exp` as one of a token it could have been given.
    assume(kind != "jti" or revoked_late or issuer_offset - revoker_offset <= LEEWAY)
    time, store = shared_store()
    issuer = skewed_host(store, time, issuer_offset)
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    exp = claims["exp"] - issuer_offset  # by the true time
    if revoked_late:
        time.advance(max(exp + late_by - time.now, 0))
    revoker = skewed_host(store, time, revoker_offset).blacklist
    if kind == "jti":
        await revoker.add(claims["jti"], claims["exp"])
    elif kind == "session":
        await revoker.revoke_session(claims["sid"])
    else:
        await revoker.revoke_user(claims["sub"], [claims["sid"]])
    running = skewed_host(store, time, host_offset)
    await running.blacklist.sync()
    time.advance(max(exp + near - time.now, 0))
    await skewed_host(store, time, sweeper_offset).cleanup_expired_tokens()
    started_now = skewed_host(store, time, host_offset)
    for host in (running, started_now):
        await host.blacklist.sync()
        assert refused(host, pair.access_token)


# Rate-limit state -----------------------------------------------------------------------

SHORT = RateLimit(max_requests=5, window_seconds=5)


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_a_sweeper_ahead_within_the_allowance_deletes_no_state_still_owed(
    store_url: str,
) -> None:
    """A window of 5 s and a sweeper 8 s ahead (within the 10 s allowance): what the
    listing shows was written just now, and what it reads still owes on the right clock."""
    time = SharedTime()
    store = StoreClock(ObjectStore.from_url(store_url), lambda: time.now)
    writer = ObjectStoreRateLimitStore(store, clock=lambda: time.now)
    sweeper = ObjectStoreRateLimitStore(store, clock=lambda: time.now + 8.0)
    for _ in range(5):
        assert (await writer.acquire("named", "k", SHORT, 1)).allowed
        assert (await writer.acquire("own", "k", SHORT, 1)).allowed
    assert await sweeper.delete_expired({"named": SHORT}) == 0
    assert not (await writer.acquire("named", "k", SHORT, 1)).allowed
    assert not (await writer.acquire("own", "k", SHORT, 1)).allowed
    # What is read goes once its time is the allowance behind the sweeper's clock; what is
    # judged from the listing, twice the allowance past its window by the sweeper's clock.
    time.advance(5 + SKEW - 8 - 1)
    assert await sweeper.delete_expired({"named": SHORT}) == 0
    time.advance(1)
    assert await sweeper.delete_expired({"named": SHORT}) == 1
    time.advance(SKEW)  # now exactly twice the allowance past: not yet
    assert await sweeper.delete_expired({"named": SHORT}) == 0
    time.advance(1)
    assert await sweeper.delete_expired({"named": SHORT}) == 1
    assert [info.key async for info in store.list(keys.RATELIMIT)] == []
