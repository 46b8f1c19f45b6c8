"""A new S3AUTH_SECRET_KEY with the old one in S3AUTH_SECRET_KEY_FALLBACKS: everything the old
key made still verifies or opens (access tokens with HS*, refresh tokens, mailed links, device
cookies, second-step tokens, TOTP seeds), everything new is made under the new key alone, and
a key that is neither still makes nothing that works."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import msgspec
import pytest
from support import Clock, login, make_clocked_service, user_record
from test_app import PASSWORD, client_for, mounted, register
from test_app_totp import AGENT, first_step, second_step, turn_on
from test_cli import Run

from s3auth_asgi import S3AuthSettings
from s3auth_asgi.account_tokens import AccountTokens, InvalidAccountTokenError
from s3auth_asgi.app.devices import DEVICE_HEADER, Device, DeviceCookies
from s3auth_asgi.cli import failures
from s3auth_asgi.errors import ConfigurationError, InvalidTokenError
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.mfa_challenges import MfaChallenges
from s3auth_asgi.models import User
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.storage import ObjectStore, keys
from s3auth_asgi.tokens import TokenCodec, derive_key, derive_keys
from s3auth_asgi.totp import new_seed, totp
from s3auth_asgi.totp_errors import InvalidMfaTokenError
from s3auth_asgi.totp_seeds import SeedSeal

pytestmark = pytest.mark.anyio

OLD, NEW, OTHER = new_secret_key(), new_secret_key(), new_secret_key()


def settings(secret_key: str, *fallbacks: str) -> S3AuthSettings:
    return S3AuthSettings(secret_key=secret_key, secret_key_fallbacks=list(fallbacks))


def test_derived_keys_are_the_current_one_first_then_each_fallback() -> None:
    assert settings(NEW, OLD, OTHER).secret_keys == (NEW, OLD, OTHER)
    assert derive_keys((NEW, OLD, OTHER), "device-cookie") == (
        derive_key(NEW, "device-cookie"),
        derive_key(OLD, "device-cookie"),
        derive_key(OTHER, "device-cookie"),
    )
    assert settings(NEW).secret_keys == (NEW,)


@pytest.mark.parametrize(
    "build",
    [
        lambda keys: derive_keys(keys, "device-cookie"),
        lambda keys: DeviceCookies(keys),
        lambda keys: MfaChallenges(keys),
        lambda keys: SeedSeal(keys),
    ],
    ids=["derive_keys", "DeviceCookies", "MfaChallenges", "SeedSeal"],
)
@pytest.mark.parametrize(
    ("secret_keys", "error", "said"),
    [
        ((), ValueError, "secret_keys is empty"),
        ([], ValueError, "secret_keys is empty"),
        ((NEW, ""), ValueError, r"secret_keys\[1\] is empty"),
        # A bare key is a sequence of one-character keys: never taken for the key.
        (NEW, TypeError, "a sequence of secret keys, not one string"),
        ((NEW, b"key"), TypeError, r"secret_keys\[1\] is not a string"),
    ],
    ids=["empty tuple", "empty list", "an empty key", "one string", "a key in bytes"],
)
def test_the_secret_keys_are_refused_when_empty_or_not_a_sequence_of_keys(
    build: Callable[[object], object], secret_keys: object, error: type[Exception], said: str
) -> None:
    with pytest.raises(error, match=said) as raised:
        build(secret_keys)
    assert NEW not in str(raised.value)


def test_the_environment_lists_fallbacks_by_commas_and_no_rendering_shows_them() -> None:
    env = {"S3AUTH_SECRET_KEY": NEW, "S3AUTH_SECRET_KEY_FALLBACKS": f"{OLD}, {OTHER}"}
    read = S3AuthSettings.from_env(env)
    assert read.secret_key_fallbacks == [OLD, OTHER]
    assert OLD not in repr(read) and OTHER not in repr(read)


@pytest.mark.parametrize(
    ("fallbacks", "said"),
    [
        (["short"], "S3AUTH_SECRET_KEY_FALLBACKS (item 1) must be at least 32 characters"),
        ([OLD, "a" * 40], "S3AUTH_SECRET_KEY_FALLBACKS (item 2) is too easy to guess"),
        ([OLD + " "], "S3AUTH_SECRET_KEY_FALLBACKS (item 1) begins or ends with whitespace"),
        ([NEW], "S3AUTH_SECRET_KEY_FALLBACKS (item 1) is S3AUTH_SECRET_KEY itself"),
        ([OLD, OTHER, OLD], "S3AUTH_SECRET_KEY_FALLBACKS (item 3) repeats item 1"),
    ],
)
def test_settings_refuse_a_weak_or_repeated_fallback(fallbacks: list[str], said: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings(NEW, *fallbacks)
    assert said in str(raised.value)
    assert all(text not in str(raised.value) for text in (NEW, OLD, OTHER))


def test_an_hs256_access_token_of_a_fallback_key_verifies_and_only_the_new_key_signs() -> None:
    clock = Clock()
    old = TokenCodec(settings(OLD), clock=clock)
    token, _ = old.issue_access_token(
        user_id="u1", username="alice", session_id="s1", is_admin=False, scopes=[]
    )
    rotated = TokenCodec(settings(NEW, OLD), clock=clock)
    assert rotated.verify_access_token(token)["sub"] == "u1"
    new_token, _ = rotated.issue_access_token(
        user_id="u1", username="alice", session_id="s1", is_admin=False, scopes=[]
    )
    assert TokenCodec(settings(NEW), clock=clock).verify_access_token(new_token)["sub"] == "u1"
    assert rotated.key_set().jwks(clock()) == {"keys": []}
    for codec in (TokenCodec(settings(NEW), clock=clock), TokenCodec(settings(OTHER, NEW))):
        with pytest.raises(InvalidTokenError):
            codec.verify_access_token(token)


async def test_a_refresh_token_of_a_fallback_key_rotates_into_one_of_the_new_key() -> None:
    store, clock = ObjectStore.from_url("memory://"), Clock()
    before = make_clocked_service(store=store, clock=clock, secret_key=OLD)
    after = make_clocked_service(
        store=store, clock=clock, secret_key=NEW, secret_key_fallbacks=[OLD]
    )
    only_new = make_clocked_service(store=store, clock=clock, secret_key=NEW)
    _, pair = await login(before)
    _, other_pair = await login(before, "bob")
    with pytest.raises(InvalidTokenError):
        await only_new.refresh_access_token(other_pair.refresh_token)
    rotated = await after.refresh_access_token(pair.refresh_token)
    # Under the new key alone: a service that knows no fallback takes it.
    again = await only_new.refresh_access_token(rotated.refresh_token)
    assert only_new.tokens.verify_access_token(again.access_token)["sub"]
    neither = make_clocked_service(
        store=store, clock=clock, secret_key=OTHER, secret_key_fallbacks=[NEW]
    )
    with pytest.raises(InvalidTokenError):
        await neither.refresh_access_token(other_pair.refresh_token)


async def test_a_fallback_too_short_for_the_new_hs_algorithm_still_keeps_its_sessions() -> None:
    # HS256 with a key of 40 characters, rotated to a key of 64 and HS512 at once: the old
    # key signed no HS512 token (too short to be an HS512 key), but every session and seed
    # is still its.
    store, clock, short = ObjectStore.from_url("memory://"), Clock(), OLD[:40]
    before = make_clocked_service(store=store, clock=clock, secret_key=short)
    _, pair = await login(before)
    after = make_clocked_service(
        store=store, clock=clock, secret_key=NEW, secret_key_fallbacks=[short], algorithm="HS512"
    )
    assert len(after.tokens.key_set()) == 1
    rotated = await after.refresh_access_token(pair.refresh_token)
    assert after.tokens.verify_access_token(rotated.access_token)["sub"]
    with pytest.raises(InvalidTokenError):  # HS256, under a key that is no HS512 key
        after.tokens.verify_access_token(pair.access_token)


async def test_a_mailed_link_of_a_fallback_key_is_redeemed() -> None:
    store, clock = ObjectStore.from_url("memory://"), Clock()
    user = user_record()
    link = await AccountTokens(store, settings(OLD), clock=clock).issue("password-reset", user)
    rotated = AccountTokens(store, settings(NEW, OLD), clock=clock)
    store.requests.clear()
    _, record = await rotated.redeem("password-reset", link)
    assert record.user_id == user.id and store.requests == {"get": 1}
    for tokens in (
        AccountTokens(store, settings(NEW), clock=clock),
        AccountTokens(store, settings(OTHER, NEW), clock=clock),
    ):
        with pytest.raises(InvalidAccountTokenError):
            await tokens.redeem("password-reset", link)


def test_a_device_cookie_of_a_fallback_key_is_valid_and_current() -> None:
    clock = Clock()
    user = msgspec.structs.replace(user_record(), session_generation="00000003.gen")
    device_id = new_id()
    value = DeviceCookies([OLD], clock=clock).sign(Device(user.id, device_id), user)
    rotated = DeviceCookies([NEW, OLD], clock=clock)
    device = rotated.verify(value, "username:alice")
    assert device is not None and device.device_id == device_id
    assert rotated.current(device, user)  # its generation tag is the old key's too
    for cookies in (DeviceCookies([NEW], clock=clock), DeviceCookies([OTHER, NEW])):
        assert cookies.verify(value, "username:alice") is None
    # Set again at the login, under the new key alone.
    resigned = rotated.sign(device, user)
    assert DeviceCookies([NEW], clock=clock).verify(resigned, "username:alice") is not None


def test_a_second_step_token_of_a_fallback_key_is_read() -> None:
    clock = Clock()
    user = msgspec.structs.replace(user_record(), totp_secret="ts1.x.y")
    token = MfaChallenges([OLD], clock).issue(user, device_id="", name="alice", user_agent="ua")
    assert MfaChallenges([NEW, OLD], clock).read(token, "ua").user_id == user.id
    for challenges in (MfaChallenges([NEW], clock), MfaChallenges([OTHER, NEW], clock)):
        with pytest.raises(InvalidMfaTokenError):
            challenges.read(token, "ua")


async def test_a_seed_of_a_fallback_key_opens_and_its_next_code_seals_it_under_the_new_key() -> (
    None
):
    store, clock = ObjectStore.from_url("memory://"), Clock()
    seed = new_seed()
    user = user_record()
    sealed = SeedSeal([OLD]).seal(seed, user.id)
    await store.create(keys.user(user.id), msgspec.structs.replace(user, totp_secret=sealed))
    assert SeedSeal([OTHER, NEW]).open(sealed, user.id) is None
    rotated = make_clocked_service(
        store=store, clock=clock, secret_key=NEW, secret_key_fallbacks=[OLD]
    )
    assert rotated.seeds.open(sealed, user.id) == seed
    found = await rotated.totp_login_record(user.id)
    assert found is not None
    store.requests.clear()
    after = await rotated.accept_totp_code(found, totp(seed, clock()))
    assert store.requests == {"put": 1}  # the write that spends the code, nothing more
    read = await store.get(keys.user(user.id), User)
    assert read is not None
    stored = read.value
    assert stored.totp_secret == after.totp_secret != sealed
    assert SeedSeal([NEW]).open(stored.totp_secret, user.id) == seed
    assert stored.totp_last_step == after.totp_last_step > 0


async def test_a_seed_of_the_current_key_is_written_as_it_was() -> None:
    store, clock = ObjectStore.from_url("memory://"), Clock()
    seed = new_seed()
    service = make_clocked_service(
        store=store, clock=clock, secret_key=NEW, secret_key_fallbacks=[OLD]
    )
    user = user_record()
    sealed = SeedSeal([NEW]).seal(seed, user.id)
    await store.create(keys.user(user.id), msgspec.structs.replace(user, totp_secret=sealed))
    found = await service.totp_login_record(user.id)
    assert found is not None
    after = await service.accept_totp_code(found, totp(seed, clock()))
    assert after.totp_secret == sealed


async def test_a_login_begun_before_the_rotation_ends_after_it_on_the_old_keys_things() -> None:
    """Through the auth app: the old key's second-step token, seed and device cookie all
    serve the login, which leaves the seed and the cookie under the new key."""
    store, clock = ObjectStore.from_url("memory://"), Clock()
    before = make_clocked_service(store=store, clock=clock, secret_key=OLD)
    after = make_clocked_service(
        store=store, clock=clock, secret_key=NEW, secret_key_fallbacks=[OLD]
    )
    async with client_for(mounted(before)) as client:
        alice = await register(client, "alice")
        response = await client.post(
            "/auth/login", data={"username": "alice", "password": PASSWORD}, headers=AGENT
        )
        device = response.cookies["s3auth_device"]
        seed = await turn_on(client, before, "alice")
        token = await first_step(client, "alice")
    clock.advance(30)
    async with client_for(mounted(after)) as client:
        response = await second_step(client, token, totp(seed, clock()))
        assert response.status_code == 200, response.text
        read = await store.get(keys.user(alice["id"]), User)
        assert read is not None
        assert SeedSeal([NEW]).open(read.value.totp_secret, alice["id"]) == seed
        shown = {DEVICE_HEADER: device}
        again = await first_step(client, "alice", **shown)
        clock.advance(30)
        response = await second_step(client, again, totp(seed, clock()), **shown)
        assert response.status_code == 200, response.text
        reset = response.cookies["s3auth_device"]
        assert reset.split(".")[2] == device.split(".")[2]  # the same device, known
        assert DeviceCookies([NEW], clock=clock).verify(reset, "username:alice") is not None


def test_doctor_counts_the_seeds_still_sealed_under_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(store=store, secret_key=NEW)

    async def users() -> list[str]:
        made = []
        for name, key in (("alice", OLD), ("bob", NEW), ("carol", None)):
            user = await service.create_user(name, f"{name}@example.com", "Correct-Horse-42x")
            if key is not None:
                sealed = SeedSeal([key]).seal(new_seed(), user.id)
                read = await store.get(keys.user(user.id), User)
                assert read is not None
                changed = msgspec.structs.replace(read.value, totp_secret=sealed)
                await store.replace(keys.user(user.id), changed, read.etag)
            made.append(user.id)
        return made

    alice, _, _ = anyio.run(users)
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", NEW)
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "0")
    plain = Run("doctor", open_store=lambda url: store)
    assert plain.code == failures.OK and "seed" not in plain.out, plain
    monkeypatch.setenv("S3AUTH_SECRET_KEY_FALLBACKS", OLD)
    checked = Run("doctor", open_store=lambda url: store)
    assert checked.code == failures.OK, checked
    lines = checked.out.splitlines()
    assert lines[0].startswith(
        f"[WARN] seed_under_fallback users/{alice}.json: user {alice}'s TOTP seed is sealed "
        "under S3AUTH_SECRET_KEY_FALLBACKS (item 1)"
    )
    assert len(lines) == 2 and lines[1].startswith(
        "checked 3 user(s) and 9 index entries: no problem found; 1 TOTP seed(s) still "
        "sealed under a fallback key ("
    )
