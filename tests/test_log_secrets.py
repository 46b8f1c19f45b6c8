"""No secret reaches any log record, whatever logger wrote it and at whatever level: every
flow that carries a password, a token, a mailed link or a cookie is run once with the root
logger at DEBUG, and each record is searched whole (message, arguments, attributes and a
traceback's text) for every secret the flows handled or stored. The second factor's flows,
tokens refused and a store that fails are searched for in the events the hooks see, the
account's trail and every refusal's answer as well."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, get_args

import httpx
import msgspec
import pytest
from conftest import make_settings
from support import Clock, StoreWrapper, make_clocked_service
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from test_app_lifecycle import mailed_token, service_with
from test_app_totp import code_at, first_step, new_codes, second_step, start

from s3auth_asgi import S3AuthService, StoreUnavailableError
from s3auth_asgi.app.devices import DEVICE_COOKIE
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import HookName, Hooks
from s3auth_asgi.keys.keyset import jwks_bytes
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.keys.sealing import unseal
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.models import Session, User
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.totp import encode_secret, totp

pytestmark = pytest.mark.anyio

TYPED_AS_NAME = "Typed-into-the-name-field-1"
WRONG = "Wrong-but-secret-2"
CHANGED = "Changed-by-its-owner-3"
RESET = "Set-by-a-mailed-link-4"
ADMINS = "Chosen-by-the-admin-5"
CREATED = "Given-at-creation-6"


def logged_text(records: list[logging.LogRecord]) -> list[str]:
    """Everything a handler could write of each record."""
    formatter = logging.Formatter()
    texts: list[str] = []
    for record in records:
        texts.append(formatter.format(record))
        texts.extend(repr(value) for value in vars(record).values())
    return texts


async def stored_secrets(service: Any, user_ids: list[str]) -> list[str]:
    """The password hashes and session secrets the store holds for these users."""
    found: list[str] = []
    for user_id in user_ids:
        user = await service.store.get(keys.user(user_id), User)
        found.append(user.value.hashed_password)
        async for info in service.store.list(f"sessions/{user_id}/"):
            if info.key.endswith(".json"):
                session = await service.store.get(info.key, Session)
                found.append(session.value.secret)
    return found


async def test_no_secret_of_any_flow_reaches_any_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = service_with(tmp_path)
    handled: list[str] = [service.settings.secret_key]
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(service, rate_limit=True)) as client:
        alice = await register(client, "alice")
        verification = await mailed_token(service, "email_verification", "alice@example.com")
        assert (
            await client.post("/auth/email/verify", json={"token": verification})
        ).status_code == 204
        # A password typed into the name field, and a wrong one: both are refused.
        for name, password in (("alice", WRONG), (TYPED_AS_NAME, "alice")):
            answer = await client.post("/auth/login", data={"username": name, "password": password})
            assert answer.status_code == 401
        first = await login(client, "alice")
        device = client.cookies.get("s3auth_device")
        assert device
        rotated = (
            await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
        ).json()
        again = (
            await client.post("/auth/refresh", data={"refresh_token": rotated["refresh_token"]})
        ).json()
        # The first token, two rotations old: a reuse, which ends the session.
        reused = await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401
        tokens = await login(client, "alice")
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": CHANGED},
            headers=bearer(tokens),
        )
        assert changed.status_code == 200, changed.text
        after_change = changed.json()
        moved = await client.patch(
            "/auth/me",
            json={"email": "alice@new.example", "current_password": CHANGED},
            headers=bearer(after_change),
        )
        assert moved.status_code == 200, moved.text
        new_address = await mailed_token(service, "email_change", "alice@new.example")
        assert (
            await client.post("/auth/email/verify", json={"token": new_address})
        ).status_code == 204
        assert (
            await client.post("/auth/password/forgot", json={"username": "alice"})
        ).status_code == 202
        reset = await mailed_token(service, "password_reset", "alice@new.example")
        answer = await client.post(
            "/auth/password/reset", json={"token": reset, "new_password": RESET}
        )
        assert answer.status_code == 204
        spent = await client.post(
            "/auth/password/reset", json={"token": reset, "new_password": RESET}
        )
        assert spent.status_code == 400
        admin = await login(client, "root")
        answer = await client.post(
            f"/auth/admin/users/{alice['id']}/password",
            json={"new_password": ADMINS},
            headers=bearer(admin),
        )
        assert answer.status_code == 204, answer.text
        created = await client.post(
            "/auth/admin/users",
            json={"username": "carol", "email": "carol@example.com", "password": CREATED},
            headers=bearer(admin),
        )
        assert created.status_code == 201, created.text
        last = await login(client, "alice", ADMINS)
        assert (await client.post("/auth/logout", headers=bearer(last))).status_code == 204
    await service.mail.drain()
    handled += [PASSWORD, TYPED_AS_NAME, WRONG, CHANGED, RESET, ADMINS, CREATED, device]
    for pair in (first, rotated, again, tokens, after_change, admin, last):
        handled += [pair["access_token"], pair["refresh_token"]]
    for mailed in (verification, new_address, reset):
        handled += [mailed, mailed.rsplit(".", 1)[1]]  # the link's token, and its secret
    stored = await stored_secrets(service, [alice["id"], root.id, created.json()["id"]])
    assert len(stored) == 4  # three hashes, and the administrator's session's secret
    handled += stored
    texts = logged_text(caplog.records)
    assert any("auth event" in text for text in texts)  # the flows were logged at all
    leaked = [secret for secret in handled if any(secret in text for text in texts)]
    assert leaked == []


@pytest.mark.parametrize("sealed", [False, True])
async def test_no_key_material_reaches_any_log_record_of_a_key_change(
    sealed: bool, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The first key set, a rotation, one at once (a leak's) and retirements each log their
    event, as do a service process that reads each change and signs with the new key and a
    JwksVerifier that reads the JWKS, and no record holds a private part, a sealed one or
    the key-encryption key."""
    caplog.set_level(logging.DEBUG)
    kek = new_secret_key() if sealed else ""
    store = ObjectStore.from_url("memory://")
    admin = KeyStore(store, encryption_key=kek, skew_seconds=10)
    clock = Clock()
    now = clock.now = 1_900_000_000.0
    service = make_clocked_service(
        store=store, clock=clock, algorithm="ES256", key_encryption_key=kek
    )
    ring = service.tokens.ring
    assert ring is not None

    published = tmp_path / "jwks.json"
    remote = JwksVerifier(published, clock=clock)

    async def observe() -> None:
        await ring.sync()
        service.tokens.issue_access_token(
            user_id="a" * 32, username="alice", session_id="b" * 32, is_admin=False, scopes=[]
        )
        published.write_bytes(jwks_bytes(ring.key_set().jwks(clock.now)))
        await remote.load()

    (first,) = (await admin.read_or_create("ES256", now)).keys
    await observe()
    pending = await admin.rotate("ES256", now, 500)
    await observe()
    clock.now = now + 1
    leak = await admin.rotate("ES256", now + 1, 0)  # withdraws `pending`
    await observe()
    clock.now = now + 2
    await admin.retire(first.kid, now + 2, after=0, immediately=True, undo_margin=0)
    await observe()
    records = [r for r in caplog.records if r.name == "s3auth_asgi.events.keys"]
    assert [(r.event, r.by) for r in records] == [  # type: ignore[attr-defined]
        ("key_create", "service"),
        ("key_rotate", "service"),
        ("key_set_changed", "observer"),
        ("key_set_changed", "observer"),  # the JwksVerifier's
        ("key_rotate", "service"),
        ("key_set_changed", "observer"),
        ("key_activated", "observer"),
        ("key_set_changed", "observer"),
        ("key_retire", "service"),
        ("key_set_changed", "observer"),
        ("key_set_changed", "observer"),
    ]
    handled = [kek] if kek else []
    for key in (first, pending, leak):
        material = key.jwk
        if key.sealed is not None:
            handled += [key.sealed, *(p for p in key.sealed.split(".") if len(p) >= 16)]
            material = unseal(key.sealed, kid=key.kid, encryption_key=kek)
        assert material is not None and "d" in material
        handled += [material["d"], json.dumps(material)]
    texts = logged_text(caplog.records)
    assert [s for s in handled if any(s in text for text in texts)] == []


class Failing(StoreWrapper):
    """Fails every request named in `failing`, as an unreachable store does."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.failing: tuple[str, ...] = ()

    async def call(self, name: str, run: Any) -> Any:
        if name in self.failing:
            raise StoreUnavailableError() from OSError("connection refused")
        return await run()


def answered_text(answer: httpx.Response) -> str:
    """A refusal as a client, a proxy or an error tracker keeps it: status, headers and
    body; less the `mfa_token` an `mfa_required` answer is there to give."""
    body = answer.json() if answer.content else None
    if isinstance(body, dict) and body.get("code") == "mfa_required":
        body.pop("mfa_token")
    return f"{answer.status_code} {dict(answer.headers)} {body!r}"


async def test_no_secret_of_a_second_factor_or_a_refused_token_reaches_a_log_or_an_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The second factor turned on, logins with a code and a recovery code, a
    re-authentication, then a token of each kind forged or spent, and requests a failing
    store cuts short: no secret in a log record, an event a hook is given, the account's
    trail, or a refusal's answer."""
    caplog.set_level(logging.DEBUG)
    clock, hooks, events = Clock(), Hooks(), list[AuthEvent]()
    for name in get_args(HookName):
        hooks.on(name)(events.append)
    store = Failing(ObjectStore.from_url("memory://"))
    service = S3AuthService(
        make_settings(), store=store, mailer=FileMailer(tmp_path), clock=clock, hooks=hooks
    )
    refusals: list[httpx.Response] = []

    async def keep(answer: httpx.Response) -> None:
        if answer.status_code >= 400:
            await answer.aread()
            refusals.append(answer)

    async with client_for(mounted(service, rate_limit=True)) as client:
        client.event_hooks["response"] = [keep]
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        wrong = await client.post(
            "/auth/me/totp", json={"current_password": WRONG}, headers=bearer(tokens)
        )
        assert wrong.status_code == 403
        seed = await start(client, tokens)
        confirm = "/auth/me/totp/confirm"
        assert (
            await client.post(confirm, json={"code": "000000"}, headers=bearer(tokens))
        ).status_code == 403
        first_code = totp(seed, clock())
        confirmed = await client.post(confirm, json={"code": first_code}, headers=bearer(tokens))
        assert confirmed.status_code == 200, confirmed.text
        codes = await new_codes(client, tokens)
        mfa = await first_step(client, "alice")
        assert (await second_step(client, mfa, "000000")).status_code == 403
        app_code = code_at(seed, clock)
        by_app = await second_step(client, mfa, app_code)
        assert by_app.status_code == 200, by_app.text
        assert (await second_step(client, mfa, code_at(seed, clock))).status_code == 401  # spent
        by_code = await second_step(client, await first_step(client, "alice"), codes[0])
        assert by_code.status_code == 200, by_code.text
        pair = by_code.json()
        again = await client.post(
            "/auth/reauthenticate",
            json={"current_password": PASSWORD, "code": codes[1]},
            headers=bearer(pair),
        )
        assert again.status_code == 200, again.text
        device = client.cookies.get(DEVICE_COOKIE)
        assert device
        assert (
            await client.post("/auth/password/forgot", json={"username": "alice"})
        ).status_code == 202
        reset = await mailed_token(service, "password_reset", "alice@example.com")
        ended = (await client.post("/auth/logout", headers=bearer(by_app.json()))).status_code
        assert ended == 204
        # Forged, altered and spent tokens of every kind, each at its endpoint.
        forged = {
            "access": pair["access_token"][:-6] + "AAAAAA",
            "refresh": pair["refresh_token"][:-6] + "AAAAAA",
            "ended": by_app.json()["refresh_token"],
            "mfa": mfa[:-6] + "AAAAAA",
            "spent mfa": mfa,
            "link": reset[:-6] + "AAAAAA",
            "device": device[:-6] + "AAAAAA",
        }
        for token in (forged["access"], forged["refresh"]):
            assert (
                await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 401
        for token in (forged["refresh"], forged["ended"]):
            assert (
                await client.post("/auth/refresh", data={"refresh_token": token})
            ).status_code == 401
        for token in (forged["mfa"], forged["spent mfa"]):
            assert (await second_step(client, token, codes[2])).status_code == 401
        for path in ("/auth/password/reset", "/auth/email/verify"):
            body = {"token": forged["link"], "new_password": RESET}
            answer = await client.post(
                path, json=body if path.endswith("reset") else {"token": forged["link"]}
            )
            assert answer.status_code == 400
        client.cookies.set(DEVICE_COOKIE, forged["device"])
        assert (
            await client.post("/auth/login", data={"username": "alice", "password": WRONG})
        ).status_code == 401
        client.cookies.set(DEVICE_COOKIE, device)
        # A store that fails the writes: the refresh and the second step are cut short (the
        # first step writes nothing).
        store.failing = ("create", "replace")
        cut_short = [
            await client.post("/auth/login", data={"username": "alice", "password": PASSWORD}),
            await client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]}),
            await second_step(client, await first_step(client, "alice"), codes[3]),
        ]
        store.failing = ()
        assert [answer.status_code for answer in cut_short] == [403, 503, 503]
        trail = await client.get("/auth/me/events", headers=bearer(pair))
        assert trail.status_code == 200, trail.text
    await service.mail.drain()
    handled = [PASSWORD, WRONG, encode_secret(seed), first_code, app_code, *codes, mfa, device]
    handled += [reset, reset.rsplit(".", 1)[1], *forged.values()]
    for answered in (tokens, by_app.json(), pair, again.json()):
        handled += [answered["access_token"], answered.get("refresh_token", "")]
    stored = await service.store.get(keys.user(alice["id"]), User)
    assert stored is not None
    user = stored.value
    handled += [user.hashed_password, user.totp_secret, *user.totp_recovery]
    texts = logged_text([r for r in caplog.records if not r.name.startswith("httpx")])
    texts += [repr(event) + msgspec.json.encode(event).decode() for event in events]
    texts += [trail.text, *(answered_text(answer) for answer in refusals)]
    # All of them were looked at: the recovery code's use, a 503, the trail's events.
    assert any(event.second_factor == "recovery_code" for event in events)
    assert any(answer.status_code == 503 for answer in refusals)
    assert "login_totp" in trail.text
    leaked = [secret for secret in handled if secret and any(shows(text, secret) for text in texts)]
    assert leaked == []


def shows(text: str, secret: str) -> bool:
    """Whether `text` holds `secret`; a code of digits only as a number of its own, not as
    digits of a time or a count."""
    if not secret.isdigit():
        return secret in text
    return re.search(rf"(?<![0-9]){secret}(?![0-9])", text) is not None
