"""The pairs of operations of the race sweep (`test_race_sweep`), and what must hold once
both are answered, whatever the interleaving (no tests here: the name keeps pytest from
collecting it).

Each pair runs on a `Race`: the world of the fault sweep (`sweep_operations`: alice with two
sessions and her links, root an administrator) on one memory:// store, and two instances
on it, each with its own auth app; the first operation of a pair is sent to one, the
second to the other.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import sweep_operations as ops
from conftest import make_settings
from support import StoreWrapper
from sweep_operations import LATER, World
from test_app import PASSWORD, bearer
from test_app_lifecycle import NEW_PASSWORD
from test_password_change_faults import _kind

from s3auth_asgi import S3AuthService
from s3auth_asgi.errors import TokenRevokedError
from s3auth_asgi.identifiers import fold
from s3auth_asgi.models import User
from s3auth_asgi.storage import ObjectInfo, Store

R = TypeVar("R")
SETTINGS = make_settings()
"""One for every instance: checking settings is a good part of starting one."""
OTHER_PASSWORD = "Other-pass-word-9"


class Pausing(StoreWrapper):
    """Counts the requests of its instance; at the `at`-th (before it is sent, or `after`
    it landed) runs `meanwhile` to its end, once: another instance's whole operation
    between two of this one's requests. `log` names each request."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.count = 0
        self.at: int | None = None
        self.after = False
        self.meanwhile: Callable[[], Awaitable[object]] | None = None
        self.log: list[str] = []
        self.holding = False
        """Instead of running `meanwhile`, set `paused` and wait for `resume`."""
        self.paused, self.resume = asyncio.Event(), asyncio.Event()

    async def _pause(self, here: bool) -> None:
        if here and self.holding:
            self.holding = False
            self.paused.set()
            await self.resume.wait()
        if here and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            # A context of its own: nothing of this request's context is the other's.
            await asyncio.create_task(_run(meanwhile), context=contextvars.Context())

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        raise AssertionError("every request is counted by its own method")

    async def _request(self, name: str, key: str, run: Callable[[], Awaitable[R]]) -> R:
        self.count += 1
        self.log.append(f"{name} {_kind(key)}")
        here = self.count == self.at
        await self._pause(here and not self.after)
        result = await run()
        await self._pause(here and self.after)
        return result

    async def get(self, key: str, type_: type[R]) -> Any:
        return await self._request("get", key, lambda: self.inner.get(key, type_))

    async def create(self, key: str, value: Any) -> str:
        return await self._request("create", key, lambda: self.inner.create(key, value))

    async def replace(self, key: str, value: Any, etag: str) -> str:
        return await self._request("replace", key, lambda: self.inner.replace(key, value, etag))

    async def delete(self, key: str) -> None:
        await self._request("delete", key, lambda: self.inner.delete(key))

    async def delete_many(self, keys_: Iterable[str]) -> int:
        listed = list(keys_)
        first = listed[0] if listed else ""
        return await self._request("delete_many", first, lambda: self.inner.delete_many(listed))

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        return await self._request(
            "list_page", prefix, lambda: self.inner.list_page(prefix, after, limit)
        )

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        async def listed() -> list[ObjectInfo]:
            return [item async for item in self.inner.list(prefix, offset)]

        for item in await self._request("list", prefix, listed):
            yield item


async def _run(meanwhile: Callable[[], Awaitable[object]]) -> object:
    return await meanwhile()


@dataclass
class Race:
    """The world, seen through each of the two instances (`sides`), and every session the
    operations opened, by a name, with its latest pair."""

    world: World
    sides: tuple[World, World]
    stores: tuple[Pausing, Pausing]
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def other(self, ahead: float = 0.0) -> S3AuthService:
        """A third instance on the store, its clock `ahead` of the true time."""
        return S3AuthService(SETTINGS, store=self.world.inner, clock=lambda: time.time() + ahead)

    def later(self) -> S3AuthService:
        """A third instance a reservation's time later: a claim that never finished
        counts as abandoned."""
        return self.other(LATER)


Send = Callable[[World], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Step:
    """One operation of a pair: what it sends, its success, the 4xx (with their problem
    codes) it may answer when the other lands first, whether a success opens a session
    (`opens`: its answer's pair) or rotates one of alice's (`rotates`: its name)."""

    name: str
    send: Send
    ok: int
    lost: dict[int, tuple[str, ...]] = field(default_factory=dict)
    opens: bool = False
    rotates: str = ""
    ends: tuple[str, ...] = ()
    """The sessions opened before it began that a success ends."""


def reset_to(password: str) -> Send:
    async def send(w: World) -> httpx.Response:
        body = {"token": w.links["reset"], "new_password": password}
        return await w.client.post("/auth/password/reset", json=body)

    return send


def registration(username: str, email: str) -> Send:
    async def send(w: World) -> httpx.Response:
        body = {"username": username, "email": email, "password": PASSWORD}
        return await w.client.post("/auth/register", json=body)

    return send


async def change_password(w: World) -> httpx.Response:
    body = {"current_password": PASSWORD, "new_password": OTHER_PASSWORD}
    return await w.client.post("/auth/password", json=body, headers=bearer(w.sessions[1]))


async def refresh_second(w: World) -> httpx.Response:
    body = {"refresh_token": w.sessions[1]["refresh_token"]}
    return await w.client.post("/auth/refresh", json=body)


async def profile(w: World) -> httpx.Response:
    body = {"full_name": "Alice Liddell"}
    return await w.client.patch("/auth/me", json=body, headers=bearer(w.sessions[0]))


def admin_update(**changes: Any) -> Send:
    return ops.admin_update(**changes)


BOTH = ("alice-0", "alice-1")
TAKEN = {409: ("account_exists",)}
GONE = {401: ("invalid_token", "token_revoked", "invalid_credentials")}
"""The caller's session ended, or its account gone or disabled, by the other."""
LINK_DEAD = {400: ("invalid_account_token",)}
CHANGED = (409, ("conflict",))
ADDRESS_LOST = {409: ("email_taken", "conflict")}
NO_USER = {404: ("user_not_found",)}

RESET = Step("reset", reset_to(NEW_PASSWORD), 204, LINK_DEAD, ends=BOTH)
RESET_AGAIN = Step("reset-again", reset_to(OTHER_PASSWORD), 204, LINK_DEAD, ends=BOTH)
CHANGE = Step(
    "change-password",
    change_password,
    200,
    # 403: an instance that has not synced the revocation of the caller's session yet
    # takes its access token, and then the password it checks is the reset's.
    {**GONE, 403: ("wrong_password",), 409: ("conflict",)},
    opens=True,
    ends=BOTH,
)
LOGIN = Step("login", ops.log_in, 200, {401: ("invalid_credentials",)}, opens=True)
REFRESH = Step("refresh", ops.refresh, 200, GONE, rotates="alice-0")
REFRESH_AGAIN = Step("refresh-again", ops.refresh, 200, GONE)
REFRESH_SECOND = Step("refresh-second", refresh_second, 200, GONE, rotates="alice-1")
LOGOUT = Step("logout", ops.logout, 204, GONE, ends=("alice-0",))
LOGOUT_BEARER = Step("logout-bearer", ops.logout_by_access_token, 204, GONE, ends=("alice-0",))
LOGOUT_ALL = Step("logout-all", ops.logout_all, 200, GONE, ends=BOTH)
END_SESSION = Step(
    "end-session", ops.end_session, 204, {**GONE, 404: ("session_not_found",)}, ends=("alice-1",)
)
END_OWN_SESSION = Step("end-own-session", ops.end_own_session, 204, GONE, ends=("alice-0",))
VERIFY = Step("verify", ops.verify, 204, LINK_DEAD)
CONFIRM = Step("confirm-address", ops.confirm_address, 204, {**LINK_DEAD, **ADDRESS_LOST})
ASK_ADDRESS = Step(
    "ask-new-address", ops.ask_new_address, 200, {**GONE, **NO_USER, 409: ("conflict",)}
)
PROFILE = Step("profile", profile, 200, GONE)
DISABLE = Step("admin-disable", admin_update(is_active=False), 200, ends=BOTH)
SET_PASSWORD = Step("admin-set-password", ops.admin_set_password, 204, ends=BOTH)
SCOPES = Step(
    "admin-scopes",
    admin_update(scopes=["reports"]),
    200,
    {**NO_USER, 409: ("conflict",)},
    ends=BOTH,
)
SCOPES_AGAIN = Step(
    "admin-scopes-again", admin_update(scopes=["billing"]), 200, {409: ("conflict",)}, ends=BOTH
)
ADMIN_EMAIL = Step(
    "admin-email", admin_update(email="alice@admin.example"), 200, {**NO_USER, **ADDRESS_LOST}
)
ADMIN_EMAIL_AGAIN = Step(
    "admin-email-again", admin_update(email="alice@admin2.example"), 200, ADDRESS_LOST
)
ADMIN_EMAIL_NEW = Step(
    "admin-email-new", admin_update(email="Alice@New.example"), 200, ADDRESS_LOST
)
DELETE = Step("admin-delete", ops.admin_delete, 204, NO_USER, ends=BOTH)
DELETE_AGAIN = Step("admin-delete-again", ops.admin_delete, 204, NO_USER, ends=BOTH)
REGISTER = Step("register", registration("newbie", "newbie@example.com"), 201, TAKEN)
REGISTER_NEWBIE = Step("register-NEWBIE", registration("NEWBIE", "other@example.com"), 201, TAKEN)
REGISTER_FOLDED_EMAIL = Step(
    "register-folded-email", registration("newcomer", "NewBie@Example.COM"), 201, TAKEN
)
REGISTER_MODERN = Step("register-modern", registration("modern", "modern@example.com"), 201, TAKEN)
REGISTER_RNODERN = Step(  # the same skeleton as `modern`: it looks the same
    "register-rnodern", registration("rnodern", "rnodern@example.com"), 201, TAKEN
)
REGISTER_NEW = Step(
    "register-new-address", registration("claimer", "alice@new.example"), 201, TAKEN
)
REGISTER_OLD = Step("register-old-address", registration("heir", "alice@example.com"), 201, TAKEN)
REGISTER_ALICE = Step("register-alice", registration("alice", "alice@example.com"), 201, TAKEN)


# What each pair promises besides ---------------------------------------------------------

Check = Callable[[Race, list[bool]], Awaitable[None]]
"""Given which of the pair succeeded, in the pair's order."""


async def _password(race: Race) -> str | None:
    """The one of the passwords the race may leave that logs alice in."""
    other = race.other()
    held = [
        p
        for p in (PASSWORD, NEW_PASSWORD, OTHER_PASSWORD)
        if await other.authenticate_user("alice", p)
    ]
    assert len(held) <= 1
    return held[0] if held else None


async def _alice(race: Race) -> User | None:
    return await race.other().get_user_by_id(race.world.alice)


async def _free(race: Race, addresses: Iterable[str]) -> None:
    """Each of `addresses` can be registered at once: nothing holds it any more."""
    other = race.other()
    for index, address in enumerate(sorted(addresses)):
        assert await other.create_user(f"heir{index}", address, PASSWORD)


async def first_won(race: Race, won: list[bool]) -> None:
    """The first of the pair succeeds whatever the other does (what it promises is
    checked for every pair: its sessions end)."""
    assert won[0]


async def one_new_password(race: Race, won: list[bool]) -> None:
    """A link used twice serves one use, and its password holds."""
    assert won.count(True) == 1, "a single-use link served two uses, or none"
    assert await _password(race) == (NEW_PASSWORD if won[0] else OTHER_PASSWORD)


async def a_new_password(race: Race, won: list[bool]) -> None:
    """Of a reset and the owner's change, one lands at least; the password left is one a
    caller was told holds."""
    assert any(won), "neither new password was made"
    told = {p for p, w in zip((NEW_PASSWORD, OTHER_PASSWORD), won, strict=True) if w}
    assert await _password(race) in told


async def reset_holds(race: Race, won: list[bool]) -> None:
    assert won[0]
    assert await _password(race) == NEW_PASSWORD


async def change_holds(race: Race, won: list[bool]) -> None:
    assert won[0]
    assert await _password(race) == OTHER_PASSWORD


async def reset_unless_logged_out_first(race: Race, won: list[bool]) -> None:
    """A link is bound to the session generation it was mailed in: a logout everywhere
    that lands first withdraws it. Either the new password holds, told, or the old one."""
    assert won[1]
    assert await _password(race) == (NEW_PASSWORD if won[0] else PASSWORD)


async def owner_and_administrator(race: Race, won: list[bool]) -> None:
    """The owner's change and an administrator's: the administrator's lands, and the
    password left is one a caller was told holds."""
    assert won[1]
    told = {NEW_PASSWORD, *([OTHER_PASSWORD] if won[0] else [])}
    assert await _password(race) in told


async def disabled(race: Race, won: list[bool]) -> None:
    """The administrator's disabling (either of the pair) lands, whatever ran with it."""
    assert won[0] or won[1]
    alice = await _alice(race)
    assert alice is not None and not alice.is_active
    assert await _password(race) is None


async def deleted(race: Race, won: list[bool]) -> None:
    """The deletion lands, whatever ran with it, and alice's names are free at once."""
    assert won[0] or won[1]
    assert await _alice(race) is None
    assert await race.other().create_user("alice", "alice@example.com", PASSWORD)


async def deleted_with_every_address(race: Race, won: list[bool]) -> None:
    """A deletion racing a new address for the account: it is gone, and every address it
    held or was about to hold is free."""
    assert won[0]
    assert await _alice(race) is None
    await _free(race, {"alice@example.com", "alice@new.example", "alice@admin.example"})


async def deleted_or_registered_again(race: Race, won: list[bool]) -> None:
    """A deletion racing a registration of the same names: the old account is gone, and
    the names are held by the new one, or free."""
    assert won[0]
    assert await _alice(race) is None
    found = await race.other().get_user_by_email("alice@example.com")
    if won[1]:
        assert found is not None and found.id != race.world.alice
    else:
        assert found is None
        assert await race.other().create_user("alice", "alice@example.com", PASSWORD)


async def one_scope_set(race: Race, won: list[bool]) -> None:
    assert any(won)
    told = [s for s, w in zip((["reports"], ["billing"]), won, strict=True) if w]
    alice = await _alice(race)
    assert alice is not None and alice.scopes in told


async def one_registration(race: Race, won: list[bool]) -> None:
    """Two names that fold (or look) the same: exactly one account is made."""
    assert won.count(True) == 1, won


async def _address_told(race: Race, won: list[bool], addresses: tuple[str, str]) -> None:
    """alice's address is one a caller was told she has; the others of the race are free."""
    assert any(won)
    told = {a for a, w in zip(addresses, won, strict=True) if w}
    alice = await _alice(race)
    assert alice is not None and fold(alice.email) in told
    await _free(race, {"alice@example.com", *addresses} - {fold(alice.email)})


async def confirmed_or_set(race: Race, won: list[bool]) -> None:
    await _address_told(race, won, ("alice@new.example", "alice@admin.example"))


async def set_twice(race: Race, won: list[bool]) -> None:
    await _address_told(race, won, ("alice@admin.example", "alice@admin2.example"))


async def confirmed_and_set(race: Race, won: list[bool]) -> None:
    """alice's link for an address and an administrator setting that same address."""
    await _address_told(race, won, ("alice@new.example", "alice@new.example"))


async def one_holder_of_the_new_address(race: Race, won: list[bool]) -> None:
    """alice's new address, confirmed by her (or set by an administrator) and registered
    by another at once: exactly one of them holds it."""
    assert won.count(True) == 1, won
    alice = await _alice(race)
    holder = await race.other().get_user_by_email("alice@new.example")
    assert alice is not None and holder is not None
    assert (holder.id == alice.id) == won[0]


async def old_address_once_let_go(race: Race, won: list[bool]) -> None:
    """alice moving off her address while another registers it: the other has it if,
    and only if, told so."""
    assert won[0]
    alice = await _alice(race)
    assert alice is not None and alice.email != "alice@example.com"
    found = await race.other().get_user_by_email("alice@example.com")
    assert (found is not None and found.username == "heir") == won[1]


async def verified_only_where_mailed(race: Race, won: list[bool]) -> None:
    """A link mailed to the old address verifies that address, never the one an
    administrator set meanwhile."""
    assert won[1]
    alice = await _alice(race)
    assert alice is not None and alice.email == "alice@admin.example"
    assert not alice.email_verified


async def link_withdrawn_or_used(race: Race, won: list[bool]) -> None:
    """A new request of an address withdraws the link mailed for the one before: the
    address left is the old one or the confirmed one, never the newly asked one."""
    alice = await _alice(race)
    assert alice is not None
    assert alice.email == ("alice@new.example" if won[0] else "alice@example.com")


async def reset_or_new_address(race: Race, won: list[bool]) -> None:
    """A reset and the link of a new address: each kills the other's link, so one lands.
    A reset that lost had either read the record after the address moved, and ended
    nothing, or ended every session before its write was refused: they stay ended, with
    the password as it was (the safe way to be wrong), and are checked here, since no
    success promised their end."""
    assert won.count(True) == 1, won
    alice = await _alice(race)
    assert alice is not None
    if won[0]:
        assert (alice.email, await _password(race)) == ("alice@example.com", NEW_PASSWORD)
        return
    assert (alice.email, await _password(race)) == ("alice@new.example", PASSWORD)
    synced = race.other()
    ids = {
        synced.tokens.parse_refresh_token(race.sessions[n]["refresh_token"]).session_id
        for n in BOTH
    }
    left = ids & {s.id for s in await synced.get_user_active_sessions(alice.id)}
    assert left in (set(), ids), "a reset ended some of the sessions and not the others"
    if left:
        return
    await synced.ensure_fresh()
    for name in BOTH:
        pair = race.sessions.pop(name)
        with pytest.raises(TokenRevokedError):
            synced.decode_token(pair["access_token"])
        with pytest.raises(TokenRevokedError):
            await synced.refresh_access_token(pair["refresh_token"])


async def both_rotated(race: Race, won: list[bool]) -> None:
    """Two refreshes of one token at once, on two instances (a client's retry): both are
    answered, and neither is taken for a reuse (the session goes on)."""
    assert all(won)


PAIRS: dict[str, tuple[Step, Step, Check]] = {
    # A reset link, used twice, or with another new password, or a disabling.
    "reset-twice": (RESET, RESET_AGAIN, one_new_password),
    "reset-change": (RESET, CHANGE, a_new_password),
    "reset-disable": (RESET, DISABLE, disabled),
    "reset-login": (RESET, LOGIN, reset_holds),
    "reset-logout-all": (RESET, LOGOUT_ALL, reset_unless_logged_out_first),
    "set-password-reset": (SET_PASSWORD, RESET, first_won),
    "reset-confirm": (RESET, CONFIRM, reset_or_new_address),
    # The owner's new password.
    "change-login": (CHANGE, LOGIN, change_holds),
    "change-logout-all": (CHANGE, LOGOUT_ALL, first_won),
    "change-set-password": (CHANGE, SET_PASSWORD, owner_and_administrator),
    # Sessions ended while they refresh, or while another opens.
    "logout-all-login": (LOGOUT_ALL, LOGIN, first_won),
    "logout-all-refresh": (LOGOUT_ALL, REFRESH, first_won),
    "logout-all-end-session": (LOGOUT_ALL, END_SESSION, first_won),
    "logout-refresh": (LOGOUT, REFRESH, first_won),
    "logout-bearer-refresh": (LOGOUT_BEARER, REFRESH, first_won),
    "end-session-refresh": (END_SESSION, REFRESH_SECOND, first_won),
    "end-own-session-refresh": (END_OWN_SESSION, REFRESH, first_won),
    "refresh-twice": (REFRESH, REFRESH_AGAIN, both_rotated),
    "change-refresh": (CHANGE, REFRESH, change_holds),
    # An administrator's disabling and privileges.
    "disable-refresh": (DISABLE, REFRESH, disabled),
    "disable-login": (DISABLE, LOGIN, disabled),
    "disable-change": (DISABLE, CHANGE, disabled),
    "scopes-twice": (SCOPES, SCOPES_AGAIN, one_scope_set),
    "scopes-login": (SCOPES, LOGIN, first_won),
    # A deletion, and what the account does meanwhile.
    "delete-login": (DELETE, LOGIN, deleted),
    "delete-refresh": (DELETE, REFRESH, deleted),
    "delete-change": (DELETE, CHANGE, deleted),
    "delete-reset": (DELETE, RESET, deleted),
    "delete-verify": (DELETE, VERIFY, deleted),
    "delete-ask-address": (DELETE, ASK_ADDRESS, deleted),
    "delete-scopes": (DELETE, SCOPES, deleted),
    "delete-twice": (DELETE, DELETE_AGAIN, deleted),
    "delete-logout-all": (DELETE, LOGOUT_ALL, deleted),
    "delete-logout": (DELETE, LOGOUT, deleted),
    "delete-logout-bearer": (DELETE, LOGOUT_BEARER, deleted),
    "delete-end-session": (DELETE, END_SESSION, deleted),
    "delete-end-own-session": (DELETE, END_OWN_SESSION, deleted),
    "delete-profile": (DELETE, PROFILE, deleted),
    "disable-logout-all": (DISABLE, LOGOUT_ALL, disabled),
    "delete-confirm": (DELETE, CONFIRM, deleted_with_every_address),
    "delete-admin-email": (DELETE, ADMIN_EMAIL, deleted_with_every_address),
    "delete-register-alice": (DELETE, REGISTER_ALICE, deleted_or_registered_again),
    # Addresses: alice's link, an administrator, another's registration.
    "confirm-admin-email": (CONFIRM, ADMIN_EMAIL, confirmed_or_set),
    "confirm-admin-same-address": (CONFIRM, ADMIN_EMAIL_NEW, confirmed_and_set),
    "admin-email-twice": (ADMIN_EMAIL, ADMIN_EMAIL_AGAIN, set_twice),
    "confirm-register": (CONFIRM, REGISTER_NEW, one_holder_of_the_new_address),
    "admin-email-register": (ADMIN_EMAIL_NEW, REGISTER_NEW, one_holder_of_the_new_address),
    "confirm-register-old": (CONFIRM, REGISTER_OLD, old_address_once_let_go),
    "admin-email-register-old": (ADMIN_EMAIL, REGISTER_OLD, old_address_once_let_go),
    "confirm-ask-again": (CONFIRM, ASK_ADDRESS, link_withdrawn_or_used),
    "verify-admin-email": (VERIFY, ADMIN_EMAIL, verified_only_where_mailed),
    # Registrations of names that fold, or look, the same.
    "register-folded-name": (REGISTER, REGISTER_NEWBIE, one_registration),
    "register-folded-email": (REGISTER, REGISTER_FOLDED_EMAIL, one_registration),
    "register-lookalike": (REGISTER_MODERN, REGISTER_RNODERN, one_registration),
}
