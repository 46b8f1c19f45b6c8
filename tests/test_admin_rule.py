"""One rule for administrators: `is_admin` and the `admin` scope go together in the record,
the tokens, `requires("admin")`, the admin endpoints and the CLI; and the CLI's account
tools."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_service
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from support import RacedUserWrite, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_cli import Run
from test_names_confusable import legacy_user

from s3auth_asgi import (
    BearerTokenMiddleware,
    S3AuthError,
    S3ValidationError,
    auth_error_response,
    requires,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.cli import failures
from s3auth_asgi.service import S3AuthService
from s3auth_asgi.storage import ObjectStore

SCOPES = st.lists(st.sampled_from(["admin", "read", "write"]), unique=True)


@settings(max_examples=30, deadline=None)
@given(is_admin=st.booleans(), scopes=SCOPES)
def test_the_flag_and_the_scope_agree_everywhere(is_admin: bool, scopes: list[str]) -> None:
    service = make_service()

    async def check() -> None:
        if "admin" in scopes and not is_admin:  # an explicit false contradicts the scope
            with pytest.raises(S3ValidationError):
                await service.create_user(
                    "someone", "someone@example.com", PASSWORD, is_admin=is_admin, scopes=scopes
                )
            assert await service.get_user_by_username("someone") is None
            return
        user = await service.create_user(
            "someone", "someone@example.com", PASSWORD, is_admin=is_admin, scopes=scopes
        )
        admin = is_admin or "admin" in scopes
        public = user.public()
        assert public.is_admin is admin and "admin" not in public.scopes
        claims = service.decode_token((await service.create_token_pair(user)).access_token)
        assert claims["adm"] is admin
        assert ("admin" in claims["scope"].split()) is admin
        refreshed = await service.refresh_access_token(
            (await service.create_token_pair(user)).refresh_token
        )
        assert ("admin" in service.decode_token(refreshed.access_token)["scope"].split()) is admin
        if "admin" in scopes:
            with pytest.raises(S3ValidationError):
                await service.update_user(user.id, scopes=scopes, is_admin=False)

    anyio.run(check)


@pytest.mark.anyio
async def test_the_admin_create_endpoint_refuses_what_patch_refuses() -> None:
    service = make_clocked_service()  # a still clock: the revocations are read once
    async with client_for(mounted(service)) as client:
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        root = bearer(await login(client, "root"))
        assert (await client.get("/auth/me", headers=root)).status_code == 200
        new = {"email": "carol@example.com", "password": PASSWORD}
        service.store.reset_counts()
        refused = await client.post(
            "/auth/admin/users",
            json={"username": "carol", **new, "is_admin": False, "scopes": ["admin"]},
            headers=root,
        )
        problem = assert_problem(refused, 422, "validation_error")
        assert "is_admin" in problem["detail"]
        # Refused before a name is reserved: the root's record, which every admin call
        # reads, and the root's audit event.
        assert dict(service.store.requests) == {"get": 1, "put": 1}
        assert await service.get_user_by_username("carol") is None
        created = {}
        for name, asked in {
            "scope-only": {"scopes": ["admin", "read"]},
            "flag-and-scope": {"is_admin": True, "scopes": ["admin"]},
            "flag-false": {"is_admin": False, "scopes": ["read"]},
            "neither": {},
        }.items():
            answer = await client.post(
                "/auth/admin/users",
                json={"username": name, **new, "email": f"{name}@example.com", **asked},
                headers=root,
            )
            assert answer.status_code == 201, answer.text
            created[name] = (answer.json()["is_admin"], answer.json()["scopes"])
        assert created == {
            "scope-only": (True, ["read"]),
            "flag-and-scope": (True, []),
            "flag-false": (False, ["read"]),
            "neither": (False, []),
        }


def host(service: S3AuthService) -> Any:
    @requires("admin")
    async def console(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.is_admin})

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, S3AuthError)
        status, headers, body = auth_error_response(error)
        return Response(body, status_code=status, headers=headers)

    app = Starlette(
        routes=[
            Route("/console", console),
            Mount("/auth", app=create_auth_app(service, rate_limit=False)),
        ],
        exception_handlers={S3AuthError: refused},
    )
    return BearerTokenMiddleware(app, tokens=service, exclude=("/auth", "/auth/*"))


def _cli_store(monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """The environment the command reads (its key, a fast hasher), and a store to give it."""
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    return ObjectStore.from_url("memory://")


@pytest.mark.anyio
async def test_a_user_created_with_admin_passes_requires_admin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _cli_store(monkeypatch)
    # The command runs its own event loop: in a thread of its own.
    run = await anyio.to_thread.run_sync(
        lambda: Run(
            "user",
            "create",
            "root",
            "--email=root@example.com",
            "--admin",
            "--password-stdin",
            stdin=f"{PASSWORD}\n",
            open_store=lambda url: store,
        )
    )
    assert run.code == 0, run
    service = make_service(store=store)
    await service.create_user("plain", "plain@example.com", PASSWORD)
    async with client_for(host(service)) as client:
        root = await login(client, "root")
        allowed = await client.get("/console", headers=bearer(root))
        assert allowed.status_code == 200 and allowed.json() == {"admin": True}
        users = await client.get("/auth/admin/users", headers=bearer(root))
        assert users.status_code == 200
        plain = await login(client, "plain")
        assert (await client.get("/console", headers=bearer(plain))).status_code == 403
        assert (await client.get("/auth/admin/users", headers=bearer(plain))).status_code == 403


def test_the_cli_account_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    def run(*argv: str, stdin: str = "") -> Run:
        result = Run(*argv, stdin=stdin, open_store=lambda url: store)
        assert result.code == 0, result
        return result

    async def setup() -> str:
        user = await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.create_user("bob", "bob@example.com", PASSWORD)
        await service.create_token_pair(user, device_info="curl/8")
        return user.id

    alice = anyio.run(setup)
    assert run("user", "scopes", "alice", "--add", "read", "write").out == "read write\n"
    assert run("user", "promote", "alice").out.startswith("alice is an administrator")
    assert run("user", "scopes", "alice").out == "admin read write\n"
    assert run("user", "scopes", "alice", "--remove", "admin", "write").out == "read\n"
    listed = json.loads(run("user", "list", "--json", "--search", "ALICE@").out)
    assert [u["username"] for u in listed] == ["alice"] and listed[0]["scopes"] == ["read"]
    sessions = run("user", "sessions", "alice", "--json").out
    assert json.loads(sessions) == []  # the privilege change ended the session
    run("user", "set-password", "alice", "--password-stdin", stdin="Brand-new-pass-7\n")
    assert run("user", "revoke", "alice").out == "ended 0 session(s) of alice\n"
    unknown = Run("user", "revoke", "alice", "--session", "0" * 32, open_store=lambda url: store)
    assert (unknown.code, unknown.err) == (
        failures.NOT_FOUND,
        f"s3auth: alice has no session {'0' * 32}\n",
    )

    async def check() -> None:
        assert await service.authenticate_user("alice", "Brand-new-pass-7") is not None
        events, _ = await service.audit.page(alice)
        assert [e.event.name for e in events][:2] == ["admin_user_revoke", "admin_password_set"]
        assert all(e.event.client == "cli" for e in events)

    anyio.run(check)
    refused = Run("user", "delete", "bob", open_store=lambda url: store)
    assert refused.code != 0 and "--yes" in refused.err
    run("user", "delete", "bob", "--yes")
    run("user", "demote", "alice")
    assert "bob" not in run("user", "list").out


def test_an_id_that_is_also_anothers_username_is_refused_until_told_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Accounts made before such names were refused may hold one: the command must not pick
    # the id's owner on its own (nor take the id as `delete`'s confirmation).
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    store = ObjectStore.from_url("memory://")
    service = make_service(store=store)

    async def setup() -> tuple[str, str]:
        root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        other = await legacy_user(service, root.id, "mallory@example.com")
        return root.id, other.id

    root_id, other_id = anyio.run(setup)

    def run(*argv: str) -> Run:
        return Run("user", *argv, stdin="Brand-new-pass-7\n", open_store=lambda url: store)

    said = (
        f"s3auth: {root_id} is the id of root <root@example.com> and the username of "
        f"another account <mallory@example.com> (id {other_id}): pass --id or --username "
        "to say which\n"
    )
    for action in (["delete"], ["delete", "--yes"], ["disable"], ["enable"], ["promote"],
                   ["demote"], ["scopes"], ["scopes", "--add", "x"], ["sessions"], ["revoke"],
                   ["set-password", "--password-stdin"]):  # fmt: skip
        refused = run(action[0], root_id, *action[1:])
        assert (refused.code, refused.out, refused.err) == (failures.USAGE, "", said), action
    root = anyio.run(service.get_user_by_id, root_id)
    assert root is not None and root.is_admin and root.is_active
    assert anyio.run(service.authenticate_user, "root", PASSWORD) is not None

    assert run("sessions", root_id, "--id").out == "SESSION" + " " * 27 + (
        "LAST USED" + " " * 13 + "ADDRESS          DEVICE\n0 session(s)\n"
    )
    assert (
        run("disable", root_id, "--username").out
        == f"{root_id} disabled (its sessions have ended)\n"
    )
    assert run("disable", root_id, "--id", "--username").code == failures.USAGE  # one or the other
    assert run("disable", "root", "--id").code == failures.NOT_FOUND
    unconfirmed = run("delete", root_id, "--username")  # a name, not the id: confirm
    assert unconfirmed.code == failures.USAGE and "pass --yes" in unconfirmed.err
    assert (
        run("delete", root_id, "--username", "--yes").out
        == f"deleted {root_id} (its sessions have ended)\n"
    )
    assert anyio.run(service.get_user_by_id, other_id) is None
    assert run("sessions", root_id).code == failures.OK  # only an id now
    assert anyio.run(service.get_user_by_id, root_id) is not None


def test_cli_scopes_are_changed_on_what_the_record_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    other = make_service(store=store)  # another administrator, on another instance
    alice = anyio.run(
        lambda: other.create_user(
            "alice", "a@example.com", PASSWORD, is_admin=True, scopes=["read"]
        )
    )
    # The other administrator's demotion lands between the command's read and its write.
    raced = RacedUserWrite(store, lambda: other.update_user(alice.id, is_admin=False))
    run = Run("user", "scopes", "alice", "--add", "billing", open_store=lambda url: raced)
    assert run.code == 0, run
    assert raced.meanwhile is None  # the race happened
    assert run.out == "billing read\n"  # added to what the demotion left
    after = anyio.run(other.get_user_by_id, alice.id)
    assert after is not None and not after.is_admin and after.scopes == ["billing", "read"]


def test_every_cli_account_change_is_kept_in_the_accounts_trail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The trail shows the owner every administrator's action, "from the API or the CLI":
    # a creation and a disabling the most of all, which the admin endpoints keep too.
    store = _cli_store(monkeypatch)

    def run(*argv: str) -> None:
        done = Run("user", *argv, stdin=f"{PASSWORD}\n", open_store=lambda url: store)
        assert done.code == 0, done

    run("create", "alice", "--email", "alice@example.com", "--password-stdin")
    run("disable", "alice")
    run("enable", "alice@example.com")
    service = make_service(store=store)

    async def trail() -> list[tuple[str, str, str | None]]:
        user = await service.get_user_by_username("alice")
        assert user is not None
        events, _ = await service.audit.page(user.id)
        return [(e.event.name, e.event.outcome, e.event.client) for e in reversed(events)]

    assert anyio.run(trail) == [
        ("admin_user_create", "success", "cli"),
        ("admin_user_update", "success", "cli"),
        ("admin_user_update", "success", "cli"),
    ]


def test_a_session_the_cli_ends_is_named_in_the_trail_as_the_apis_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`admin_session_end` says which session an administrator ended, from the endpoint or
    from `s3auth user revoke --session`: without it, the trail of an account with several
    sessions cannot tell which device was logged out."""
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    async def sessions() -> tuple[str, str, str]:
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        user = await service.create_user("alice", "alice@example.com", PASSWORD)
        pairs = [await service.create_token_pair(user) for _ in range(2)]
        ids = [service.tokens.parse_refresh_token(p.refresh_token).session_id for p in pairs]
        return user.id, ids[0], ids[1]

    alice, by_cli, by_api = anyio.run(sessions)
    done = Run("user", "revoke", "alice", "--session", by_cli, open_store=lambda url: store)
    assert done.code == 0, done

    async def end_by_api_then_read() -> list[tuple[str, str | None, str | None]]:
        async with client_for(mounted(service)) as client:
            root = await login(client, "root")
            path = f"/auth/admin/users/{alice}/sessions/{by_api}"
            assert (await client.delete(path, headers=bearer(root))).status_code == 204
        events, _ = await service.audit.page(alice, limit=2)
        return [(e.event.name, e.event.session_id, e.event.client) for e in reversed(events)]

    cli, api = anyio.run(end_by_api_then_read)
    assert cli == ("admin_session_end", by_cli, "cli")
    assert api[:2] == ("admin_session_end", by_api)


def test_cli_sessions_table_gives_the_last_use_in_utc_as_keys_list_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    async def setup() -> None:
        user = await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.create_token_pair(user, device_info="curl/8", ip_address="192.0.2.7")

    anyio.run(setup)
    listed = Run("user", "sessions", "alice", "--json", open_store=lambda url: store)
    (session,) = json.loads(listed.out)
    table = Run("user", "sessions", "alice", open_store=lambda url: store)
    used = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session["last_used_at"]))
    assert table.out.splitlines() == [
        f"{'SESSION':32}  {'LAST USED':20}  {'ADDRESS':15}  DEVICE",
        f"{session['id']:32}  {used:20}  {'192.0.2.7':15}  curl/8",
        "1 session(s)",
    ]
