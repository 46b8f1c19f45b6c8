"""Two changes that end an account's sessions, racing: both read the record as it was, one
lands, the other is refused (or lands over it, tried again on what it finds).

A change ends the sessions before it writes the record (`user_records`), so the one that
loses has ended sessions by the time its write finds out. What it may end is bounded by the
record it decided on: the sessions opened from that record's generation or an older one,
never a newer one's. The new pair the winner answers with works, and so does the session of
a login that read the winner's record; a change that lands over another ends that one's
sessions before its own write, as it ends every older one. Last, by themselves: what a
session's id says (when it was opened, from which generation), and the rule over a listing.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from conftest import make_service
from support import AfterRequest, RacedUserWrite, StoreWrapper
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from test_faults import FailFirst
from test_password_change_faults import REQUESTS, RequestLog, _assert_thief_is_out

from s3auth_asgi import (
    ConflictError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    User,
)
from s3auth_asgi.identifiers import (
    new_session_id,
    session_age,
    session_created_ms,
    session_generation_counter,
)
from s3auth_asgi.session_generation import generation_counter, next_generation, opened_up_to
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, Versioned, keys

pytestmark = pytest.mark.anyio
T = TypeVar("T")
NEW_PASSWORD = "NewSecret456!"
OTHER_PASSWORD = "Other789!xyz"

_ROLE: contextvars.ContextVar[str] = contextvars.ContextVar("role", default="")


class PauseAfterUserGet(RequestLog):
    """Holds the task whose role is `role` after its `nth` GET of a user record, until
    `resume` is set (`paused` is set when it holds); logs each role's requests apart."""

    def __init__(self, inner: Store, role: str, nth: int) -> None:
        self.logs: defaultdict[str, list[str]] = defaultdict(list)
        super().__init__(inner)
        self.role, self.nth, self.seen = role, nth, 0
        self.paused, self.resume = anyio.Event(), anyio.Event()

    @property  # type: ignore[override]
    def log(self) -> list[str]:
        return self.logs[_ROLE.get()]

    @log.setter
    def log(self, value: list[str]) -> None:
        self.logs[_ROLE.get()] = value

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await super().get(key, type_)
        if _ROLE.get() == self.role and key.startswith(keys.USERS):
            self.seen += 1
            if self.seen == self.nth:
                self.paused.set()
                await self.resume.wait()
        return found


async def _works_elsewhere(url: str, pair: TokenPair | dict[str, Any]) -> None:
    """The pair's access token is accepted and its refresh token refreshes, on an instance
    that made none of the changes, once it has synced."""
    access, refresh = (
        (pair.access_token, pair.refresh_token)
        if isinstance(pair, TokenPair)
        else (pair["access_token"], pair["refresh_token"])
    )
    other = make_service(url)
    await other.ensure_fresh()
    other.decode_token(access)
    await other.refresh_access_token(refresh)


# The loser's requests once it resumes: its first listing shows only the winner's new
# session, which is of a newer generation than the record it read, so it ends nothing (no
# revocation, no DELETE); its write finds the record changed; the read again writes the
# winner's marker (there already: a create that finds it) and refuses the change.
LOSER_AFTER_ITS_READ = ["list sessions", "replace user", "get user", "create marker"]
# The owner's own change writes a new generation before it lists any session: its first
# write finds the record changed, and the read again refuses the change, ending nothing.
OWNER_LOSER_AFTER_ITS_READ = ["replace user", "get user", "create marker"]


async def test_the_loser_of_two_password_changes_leaves_the_winners_new_session(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = PauseAfterUserGet(ObjectStore.from_url(url), "late", 2)
    service = make_service(url, store=store)
    answers: dict[str, httpx.Response] = {}
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tab_a, tab_b = await login(client, "alice"), await login(client, "alice")

        async def change(role: str, tokens: dict[str, Any], new: str) -> None:
            _ROLE.set(role)
            answers[role] = await client.post(
                "/auth/password",
                json={"current_password": PASSWORD, "new_password": new},
                headers=bearer(tokens),
            )

        async def first_when_the_late_one_has_checked() -> None:
            await store.paused.wait()  # the late change has read the record, old hash
            await change("first", tab_a, NEW_PASSWORD)
            store.resume.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(change, "late", tab_b, OTHER_PASSWORD)
            tg.start_soon(first_when_the_late_one_has_checked)

        assert answers["first"].status_code == 200, answers["first"].text
        assert answers["late"].status_code == 409, answers["late"].text
        won = answers["first"].json()
        # The change that landed answered with a new pair: it must work.
        me = await client.get("/auth/me", headers=bearer(won))
        assert me.status_code == 200, me.text
    await _works_elsewhere(url, won)
    # The revocations' first sync (with the end of every session), the caller's record,
    # then the change's read (where it was held); the refusal's event last.
    assert store.logs["late"] == [
        "list revocation",
        "get not-before",
        "get user",
        "get user",
        *OWNER_LOSER_AFTER_ITS_READ,
        "create audit",
    ]
    assert await make_service(url).authenticate_user("alice", NEW_PASSWORD) is not None


async def test_a_reset_that_loses_to_a_password_change_leaves_the_changes_new_session(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = PauseAfterUserGet(ObjectStore.from_url(url), "reset", 1)
    service = make_service(url, store=store)
    answers: dict[str, httpx.Response] = {}
    async with client_for(mounted(service)) as client:
        user = await register(client, "alice")
        tokens = await login(client, "alice")
        record = await service.get_user_by_id(user["id"])
        assert record is not None
        link = await service.account_tokens.issue("password-reset", record)

        async def reset() -> None:
            _ROLE.set("reset")
            answers["reset"] = await client.post(
                "/auth/password/reset", json={"token": link, "new_password": OTHER_PASSWORD}
            )

        async def change_when_the_reset_has_checked() -> None:
            await store.paused.wait()  # the reset has read the record: its link still holds
            answers["change"] = await client.post(
                "/auth/password",
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                headers=bearer(tokens),
            )
            store.resume.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(reset)
            tg.start_soon(change_when_the_reset_has_checked)

        assert answers["change"].status_code == 200, answers["change"].text
        assert answers["reset"].status_code == 400, answers["reset"].text  # the link died
        won = answers["change"].json()
        me = await client.get("/auth/me", headers=bearer(won))
        assert me.status_code == 200, me.text
    await _works_elsewhere(url, won)
    assert store.logs["reset"] == ["get token", "get user", *LOSER_AFTER_ITS_READ]


async def _race(
    url: str,
    loser: Callable[[S3AuthService, User], Awaitable[object]],
    meanwhile: Callable[[User], Awaitable[TokenPair]],
) -> tuple[User, TokenPair, list[str]]:
    """`loser` reads the user's record; `meanwhile` runs before it goes on, and returns a
    pair opened after what it did. Returns the user, that pair and the loser's requests
    from its read on."""
    owner = make_service(url)
    user = await owner.create_user(
        "victim", "victim@example.com", PASSWORD, is_admin=True, scopes=["reports"]
    )
    store = PauseAfterUserGet(ObjectStore.from_url(url), "loser", 1)
    opened: list[TokenPair] = []

    async def lose() -> None:
        _ROLE.set("loser")
        with pytest.raises(ConflictError):
            await loser(make_service(url, store=store), user)

    async def win() -> None:
        await store.paused.wait()
        opened.append(await meanwhile(user))
        store.resume.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lose)
        tg.start_soon(win)
    return user, opened[0], store.logs["loser"]


async def _owner_changes(service: S3AuthService, user: User) -> object:
    return await service.change_password(user.id, PASSWORD, OTHER_PASSWORD)


async def _disabling_on_the_old_password(service: S3AuthService, user: User) -> object:
    return await service.update_user(
        user.id, is_active=False, expect={"hashed_password": user.hashed_password}
    )


@pytest.mark.parametrize(
    ("change", "after_its_read"),
    [
        (_owner_changes, OWNER_LOSER_AFTER_ITS_READ),
        (_disabling_on_the_old_password, LOSER_AFTER_ITS_READ),
    ],
    ids=["owner's new password", "disabling"],
)
async def test_a_login_to_a_generation_whose_marker_is_missing_is_left_too(
    tmp_path: Path,
    change: Callable[[S3AuthService, User], Awaitable[object]],
    after_its_read: list[str],
) -> None:
    # The winner's process dies between its record's write and its marker's: the marker is
    # not there to tell the loser's listing that the record has moved on. A login that read
    # the new record opens a session of the new generation, which the loser leaves all the
    # same: the session's id says its generation (the owner's new password lists nothing
    # before its first write, which the record's change refuses).
    url = f"file://{tmp_path / 'store'}"

    async def set_then_log_in(user: User) -> TokenPair:
        dying = FailFirst(ObjectStore.from_url(url), "create", "~generation.", after=False)
        with pytest.raises(StoreUnavailableError):
            await make_service(url, store=dying).set_password(user.id, NEW_PASSWORD)
        other = make_service(url)
        found = await other.authenticate_user("victim", NEW_PASSWORD)
        assert found is not None
        return await other.create_token_pair(found)

    _, pair, log = await _race(url, change, set_then_log_in)
    await _works_elsewhere(url, pair)
    # The read again writes the marker the winner left out.
    assert log == ["get user", *after_its_read]


async def test_a_disabling_refused_after_a_demotion_leaves_the_newer_sessions(
    tmp_path: Path,
) -> None:
    # `_update_account`: the disabling was decided on the record's name; a demotion that
    # renames the account lands meanwhile, and a login reads the demoted record.
    url = f"file://{tmp_path / 'store'}"

    async def disable(service: S3AuthService, user: User) -> object:
        return await service.update_user(
            user.id, is_active=False, expect={"full_name": user.full_name}
        )

    async def demote_then_log_in(user: User) -> TokenPair:
        other = make_service(url)
        await other.update_user(user.id, is_admin=False, scopes=[], full_name="Renamed")
        found = await other.authenticate_user("victim", PASSWORD)
        assert found is not None
        return await other.create_token_pair(found)

    user, pair, log = await _race(url, disable, demote_then_log_in)
    await _works_elsewhere(url, pair)
    assert log == ["get user", *LOSER_AFTER_ITS_READ]
    found = await make_service(url).get_user_by_id(user.id)
    assert found is not None and (found.is_active, found.is_admin) == (True, False)


class FailListingAfterUserWrite(StoreWrapper):
    """Every listing of sessions fails once a user record's write has landed: a change that
    dies just after its write."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.written = False

    async def replace(self, key: str, value: Any, etag: str) -> str:
        etag = await super().replace(key, value, etag)
        self.written = self.written or key.startswith(keys.USERS)
        return etag

    def list(self, prefix: str, offset: str | None = None) -> Any:
        if self.written and prefix.startswith(keys.SESSIONS):
            raise StoreUnavailableError("injected fault before list")
        return super().list(prefix, offset)


async def test_a_change_that_lands_over_another_ends_its_sessions_before_its_write(
    tmp_path: Path,
) -> None:
    # An administrator's new password, decided on the record as it was; the owner's change
    # lands before its write, with a new pair. Tried again on the owner's record, the
    # administrator's change ends the sessions of that record's generation before its own
    # write: a failure just after the write leaves none of them.
    url = f"file://{tmp_path / 'store'}"
    owner = make_service(url)
    user = await owner.create_user("victim", "victim@example.com", PASSWORD)
    thief = await owner.create_token_pair(user)
    won: list[TokenPair] = []

    async def owner_changes() -> None:
        won.append(await owner.change_password(user.id, PASSWORD, OTHER_PASSWORD))

    admin = make_service(
        url,
        store=FailListingAfterUserWrite(RacedUserWrite(ObjectStore.from_url(url), owner_changes)),
    )
    with pytest.raises(StoreUnavailableError):
        await admin.set_password(user.id, NEW_PASSWORD)
    assert await make_service(url).authenticate_user("victim", NEW_PASSWORD) is not None
    await _assert_thief_is_out(url, thief)
    await _assert_thief_is_out(url, won[0])


async def test_a_login_with_the_new_password_before_the_last_listing_is_left(
    tmp_path: Path,
) -> None:
    # The listing after the write is bounded by the record the write replaced: a login that
    # read the new record (the new password) and wrote its session before that listing is
    # of the new generation, and stays; the thief's session is ended as ever.
    url = f"file://{tmp_path / 'store'}"
    owner = make_service(url)
    user = await owner.create_user("victim", "victim@example.com", PASSWORD)
    thief = await owner.create_token_pair(user)
    opened: list[TokenPair] = []

    async def log_in_with_the_new_password() -> None:
        found = await owner.authenticate_user("victim", NEW_PASSWORD)
        assert found is not None
        opened.append(await owner.create_token_pair(found))

    logged = RequestLog(
        AfterRequest(ObjectStore.from_url(url), "replace", keys.USERS, log_in_with_the_new_password)
    )
    await make_service(url, store=logged).set_password(user.id, NEW_PASSWORD)
    assert logged.log == REQUESTS["set"]
    await _assert_thief_is_out(url, thief)
    await _works_elsewhere(url, opened[0])


async def test_the_requests_of_a_change_tried_again_after_a_conflict(tmp_path: Path) -> None:
    # Each attempt ends the sessions of the record it read before it writes.
    url = f"file://{tmp_path / 'store'}"
    owner = make_service(url)
    user = await owner.create_user("victim", "victim@example.com", PASSWORD)
    await owner.create_token_pair(user)

    async def owner_changes() -> None:
        await owner.change_password(user.id, PASSWORD, OTHER_PASSWORD)

    logged = RequestLog(RacedUserWrite(ObjectStore.from_url(url), owner_changes))
    await make_service(url, store=logged).set_password(user.id, NEW_PASSWORD)
    assert logged.log == [
        "get user",
        "list sessions",  # the thief's session
        "create revocation",
        "delete_many sessions",
        "replace user",  # lost to the owner's change
        "get user",
        "create marker",  # the owner's, there already
        "list sessions",  # the owner's new session
        "create revocation",
        "delete_many sessions",
        "replace user",
        "create marker",
        "list sessions",
        "delete_many marker",  # the owner's marker, superseded
    ]


def test_a_session_id_says_when_it_was_opened_and_from_which_generation() -> None:
    generation = next_generation(next_generation(""))
    counter = generation_counter(generation)
    assert counter == 2
    session_id = new_session_id(1_700_000_000_123, counter)
    assert len(session_id) == 32 and session_id == session_id.lower()
    assert session_created_ms(session_id) == 1_700_000_000_123
    assert session_generation_counter(session_id) == 2
    assert session_generation_counter(new_session_id(1_700_000_000_123)) == 0
    # An id of the earlier layout, its creation time then random bits: of no generation.
    earlier = f"{1_700_000_000_123:012x}{'f' * 20}"
    assert session_created_ms(earlier) == 1_700_000_000_123
    assert session_generation_counter(earlier) == 0
    # Ranked by age across both layouts, as hosts of two versions write them side by side:
    # the cap and the sessions page rank so.
    later_earlier_layout = f"{1_700_000_000_124:012x}{'0' * 20}"
    assert sorted([later_earlier_layout, session_id, earlier], key=session_age) == [
        earlier,
        session_id,
        later_earlier_layout,
    ]
    assert generation_counter("") == generation_counter(None) == 0


def test_only_sessions_of_the_record_read_or_older_are_listed_for_ending() -> None:
    # The rule by itself, over a listing: a change decided on a record of generation g ends
    # the sessions of g and older (and of ids that do not say), never a newer one's.
    g1 = next_generation("")
    g2 = next_generation(g1)
    ids = {
        "earlier": f"{1:012x}{'a' * 20}",
        "none": new_session_id(2, 0),
        "g1": new_session_id(3, generation_counter(g1)),
        "g2": new_session_id(4, generation_counter(g2)),
    }
    when = dt.datetime.now(dt.UTC)
    listed = [ObjectInfo(keys.session("u" * 32, i), when, 1) for i in ids.values()]
    listed.append(ObjectInfo(keys.generation_marker("u" * 32, g1), when, 1))

    def ended(generation: str) -> set[str]:
        found = {keys.id_from_key(info.key) for info in opened_up_to(listed, generation)}
        return {name for name, i in ids.items() if i in found}

    assert ended("") == {"earlier", "none"}
    assert ended(g1) == {"earlier", "none", "g1"}
    assert ended(g2) == set(ids)
