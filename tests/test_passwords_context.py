"""The `nist` policy and the account's own names in a password (NIST SP 800-63B 5.1.1.2's
context-specific words): a username, an address or its local part of four characters or
more counts for nothing towards the minimum length, folded as the common-password list is
compared, wherever a new password is checked (registration, a change, a reset, an
administrator's password, the CLI); a password that is one of them is refused whatever its
length, as before. None of it reads the store."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from conftest import SECRET, make_service
from hypothesis import given
from hypothesis import strategies as st
from test_app import assert_problem, bearer, client_for, login, mounted
from test_cli import Run

from s3auth_asgi import S3AuthService, User, WeakPasswordError
from s3auth_asgi.identifiers import fold
from s3auth_asgi.password_policy import PasswordPolicy
from s3auth_asgi.secret_strength import common_passwords
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
GOOD = "correct horse battery staple"
PADDED = "alice-2024-09-15!"  # 17 characters; 12 without the name
PADDED_RULE = "The password must be at least 15 characters without the username or email in it"
NIST = PasswordPolicy.nist()


def refused_for_names(password: str, *identifiers: str) -> bool:
    try:
        NIST.check(password, *identifiers)
    except WeakPasswordError as exc:
        return any("username or email" in error for error in exc.errors)
    return False


# The rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "username", "email"),
    [
        (PADDED, "alice", "a.l@example.com"),
        ("ALICE-2024-09-15!", "alice", "a.l@example.com"),  # case
        ("ａｌｉｃｅ-2024-09-15!", "alice", "a.l@example.com"),  # width
        ("2024-09-15!-Alice", "alice", "a.l@example.com"),  # at the end
        ("al.smith-2024-09!", "mallory", "al.smith@example.com"),  # the local part
        ("al.smith@example.com-1", "mallory", "al.smith@example.com"),  # the whole address
        ("alicealicealice!!", "alice", "a.l@example.com"),  # over and over
        ("alice-bobby-2024!", "bobby", "alice@example.com"),  # two of them
    ],
)
def test_a_password_padded_around_a_name_is_refused(
    password: str, username: str, email: str
) -> None:
    assert len(password) >= NIST.min_length and fold(password) not in common_passwords()
    with pytest.raises(WeakPasswordError) as info:
        NIST.check(password, username, email)
    assert info.value.code == "weak_password"
    assert info.value.errors == (PADDED_RULE,)


@pytest.mark.parametrize(
    ("password", "username", "email"),
    [
        (f"{GOOD} alice", "alice", "alice@example.com"),  # long enough without the name
        ("bob-and-friends", "bob", "b.o@example.com"),  # three letters: any word holds some
        ("an-ally-of-mine", "al", "al@example.com"),
        ("alic-e-2024-09-15", "alice", "alice@example.com"),  # not the name as written
    ],
)
def test_a_name_the_password_can_spare_or_a_short_one_is_not_held_against_it(
    password: str, username: str, email: str
) -> None:
    assert NIST.check(password, username, email) == password


def test_a_password_that_is_a_name_is_refused_however_short_the_name() -> None:
    policy = PasswordPolicy(min_length=3, refuse_identifiers=True, require_upper=False)
    for password in ("bob", "BOB", "bo@example.com", "bo"):
        with pytest.raises(WeakPasswordError, match="must not be the username or email"):
            policy.check(password, "bob", "bo@example.com")


def test_the_default_policy_does_not_look_for_names() -> None:
    policy = PasswordPolicy.default()
    assert policy.check("Alice2024!", "alice", "alice@example.com") == "Alice2024!"


_TEXT = st.text(string.printable.strip() + " ", max_size=14)
_NAMES = st.text(string.ascii_letters + string.digits + "._-", min_size=4, max_size=20)


@given(_TEXT, _NAMES, st.integers(0, 14), st.sampled_from([str.lower, str.upper, str.title]))
def test_no_name_pads_a_short_password_to_the_minimum(
    short: str, name: str, at: int, case: Callable[[str], str]
) -> None:
    """Whatever is short of the minimum stays refused with the username put in it, at any
    place and in any case: the name is the first thing a guesser who knows it tries."""
    password = short[:at] + case(name) + short[at:]
    assert refused_for_names(password, name, f"x{name}@example.com")


@given(st.text(min_size=15, max_size=40), _NAMES)
def test_a_password_without_the_names_is_judged_as_without_them(password: str, name: str) -> None:
    email = f"{name}@example.com"
    if any(fold(word) in fold(password) for word in (name, email)):
        return
    assert not refused_for_names(password, name, email)


# Where a new password is checked ------------------------------------------------------------


def nist_service(store: ObjectStore | None = None) -> S3AuthService:
    return make_service(store=store, password_policy="nist")


async def alice(service: S3AuthService) -> str:
    user = await service.create_user("alice", "alice@example.com", GOOD)
    service.store.reset_counts()
    return user.id


async def test_registration_refuses_it_before_any_request() -> None:
    service = nist_service()
    with pytest.raises(WeakPasswordError) as info:
        await service.create_user("alice", "alice@example.com", PADDED)
    assert info.value.errors == (PADDED_RULE,)
    assert sum(service.store.requests.values()) == 0


async def test_registration_over_http_answers_weak_password() -> None:
    service = nist_service()
    async with client_for(mounted(service)) as client:
        answer = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": PADDED},
        )
    body = assert_problem(answer, 422, "weak_password")
    assert body["errors"] == [PADDED_RULE]
    assert sum(service.store.requests.values()) == 0


async def test_a_change_refuses_it_and_writes_nothing() -> None:
    service = nist_service()
    user_id = await alice(service)
    with pytest.raises(WeakPasswordError) as info:
        await service.change_password(user_id, GOOD, PADDED)
    assert info.value.errors == (PADDED_RULE,)
    assert dict(service.store.requests) == {"get": 1}
    assert await service.authenticate_user("alice", GOOD) is not None


async def test_a_reset_refuses_it_and_leaves_the_link_usable() -> None:
    service = nist_service()
    user_id = await alice(service)
    user = await service.get_user_by_id(user_id)
    assert user is not None
    token = await service.account_tokens.issue("password-reset", user)
    service.store.reset_counts()
    with pytest.raises(WeakPasswordError) as info:
        await service.reset_password(token, PADDED)
    assert info.value.errors == (PADDED_RULE,)
    assert "put" not in service.store.requests and "delete" not in service.store.requests
    await service.reset_password(token, f"{GOOD} again")
    assert await service.authenticate_user("alice", f"{GOOD} again") is not None


async def test_an_administrators_password_is_held_to_it() -> None:
    service = nist_service()
    user_id = await alice(service)
    with pytest.raises(WeakPasswordError):
        await service.set_password(user_id, PADDED)
    assert dict(service.store.requests) == {"get": 1}
    await service.create_user("root", "root@example.com", GOOD, is_admin=True)
    before = await service.store.get(keys.user(user_id), User)
    async with client_for(mounted(service)) as client:
        root = await login(client, "root", GOOD)
        answer = await client.post(
            f"/auth/admin/users/{user_id}/password",
            json={"new_password": PADDED},
            headers=bearer(root),
        )
    assert assert_problem(answer, 422, "weak_password")["errors"] == [PADDED_RULE]
    after = await service.store.get(keys.user(user_id), User)
    assert before is not None and after is not None and after.etag == before.etag
    assert await service.authenticate_user("alice", GOOD) is not None


def test_the_cli_holds_both_of_its_passwords_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("SECRET_KEY", SECRET), ("PASSWORD_POLICY", "nist"), ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_TIME_COST", "1"),
    ):  # fmt: skip
        monkeypatch.setenv(f"S3AUTH_{name}", value)
    store = ObjectStore.from_url("memory://")

    def run(*argv: str, password: str) -> Run:
        return Run(*argv, "--password-stdin", stdin=f"{password}\n", open_store=lambda url: store)

    created = run("user", "create", "alice", "--email", "alice@example.com", password=PADDED)
    assert created.code != 0 and PADDED_RULE in created.err, created
    assert sum(store.requests.values()) == 0
    assert run("user", "create", "alice", "--email", "alice@example.com", password=GOOD).code == 0
    store.reset_counts()
    refused = run("user", "set-password", "alice", password=PADDED)
    assert refused.code != 0 and PADDED_RULE in refused.err, refused
    assert "put" not in store.requests and "delete" not in store.requests
