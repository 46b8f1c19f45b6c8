"""The application's own profile fields (a Struct or a JSON-Schema-shaped dict: validated on
registration and PATCH /me, capped, in the OpenAPI document) and its own access-token
claims (a hook; kept through refreshes; reserved claims are not the hook's to set)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import runpy
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from conftest import make_settings
from test_app import (
    PASSWORD,
    assert_problem,
    bearer,
    checked_client,
    client_for,
    login,
    mounted,
    register,
)
from test_docs_snippets import BLOCKS

from s3auth_asgi import S3AuthService
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.hooks import Hooks
from s3auth_asgi.models import User

pytestmark = pytest.mark.anyio


class Profile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    company: Annotated[str, msgspec.Meta(max_length=40)]
    seats: Annotated[int, msgspec.Meta(ge=1)] = 1


AS_SCHEMA = {
    "type": "object",
    "properties": {
        "company": {"type": "string", "maxLength": 40},
        "seats": {"type": "integer", "minimum": 1, "default": 1},
    },
    "required": ["company"],
}


@pytest.mark.parametrize("declared", [Profile, AS_SCHEMA], ids=["struct", "schema"])
async def test_profile_fields_are_validated_stored_and_documented(declared: Any) -> None:
    service = S3AuthService(make_settings(), profile_fields=declared)
    async with client_for(mounted(service)) as client:

        async def register(name: str, profile: Any) -> Any:
            return await client.post(
                "/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD,
                      "profile": profile},
            )  # fmt: skip

        for bad in ({}, {"company": 7}, {"company": "x" * 41}, {"company": "a", "extra": 1}, []):
            assert_problem(await register("bad", bad), 422, "validation_error")
        assert await service.get_user_by_username("bad") is None  # nothing half-written
        created = await register("alice", {"company": "Acme"})
        assert created.status_code == 201, created.text
        assert created.json()["profile"] == {"company": "Acme", "seats": 1}
        tokens = await login(client, "alice")
        changed = await client.patch(
            "/auth/me", json={"profile": {"seats": 3}}, headers=bearer(tokens)
        )
        assert changed.json()["profile"] == {"company": "Acme", "seats": 3}
        refused = await client.patch(
            "/auth/me", json={"profile": {"seats": 0}}, headers=bearer(tokens)
        )
        assert_problem(refused, 422, "validation_error")
        me = (await client.get("/auth/me", headers=bearer(tokens))).json()
        assert me["profile"] == {"company": "Acme", "seats": 3}

        document = (await client.get("/auth/openapi.json")).json()
        schemas = document["components"]["schemas"]
        (name,) = [n for n in schemas if n.startswith("Profile") and not n.endswith("Change")]
        assert schemas[name]["required"] == ["company"]
        assert schemas["RegisterRequest"]["properties"]["profile"]["anyOf"][0] == {
            "$ref": f"#/components/schemas/{name}"
        }
        assert "required" not in schemas[f"{name}Change"]


async def test_profiles_are_refused_when_none_are_declared_and_capped() -> None:
    service = S3AuthService(make_settings())
    with pytest.raises(ValueError, match="declares no profile"):
        await service.create_user("ann", "a@example.com", PASSWORD, profile={"x": 1})
    open_profile = {"type": "object", "properties": {"note": {"type": "string"}}}
    capped = S3AuthService(make_settings(), profile_fields=open_profile)
    with pytest.raises(ValueError, match="larger than 4096 bytes"):
        await capped.create_user("bea", "b@example.com", PASSWORD, profile={"note": "n" * 5000})


async def test_a_claims_hook_adds_claims_that_refreshes_keep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()

    @hooks.token_claims
    async def tenant(user: User) -> Mapping[str, Any]:
        return {"tenant": f"t-{user.username}", "roles": ["editor"]}

    @hooks.token_claims
    async def greedy(user: User) -> Mapping[str, Any]:
        return {"sub": "someone-else", "adm": True}

    @hooks.token_claims
    async def broken(user: User) -> Mapping[str, Any]:
        raise RuntimeError("the tenant service is down")

    service = S3AuthService(make_settings(), hooks=hooks)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
        pair = await service.create_token_pair(user)
    claims = service.decode_token(pair.access_token)
    assert claims["tenant"] == "t-alice" and claims["roles"] == ["editor"]
    assert claims["sub"] == user.id and claims["adm"] is False
    assert "reserved: adm, sub" in caplog.text and "tenant service is down" in caplog.text
    refreshed = service.decode_token(
        (await service.refresh_access_token(pair.refresh_token)).access_token
    )
    assert refreshed["tenant"] == "t-alice"


async def test_claims_of_any_type_json_encodes_are_carried_alike_from_the_login_on() -> None:
    """The session keeps the claims as JSON, and every token of it carries that form, the
    login's own too: the token's encoder takes no datetime, UUID or set, and a login whose
    token could not be made would fail after its session was written."""
    since = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    key = uuid.UUID(int=7)
    hooks = Hooks()

    @hooks.token_claims
    async def typed(user: User) -> Mapping[str, Any]:
        return {"since": since, "key": key, "tags": {"a"}, "ratio": math.nan, "pair": (1, 2)}

    service = S3AuthService(make_settings(), hooks=hooks)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    kept = {
        "since": "2026-01-02T03:04:05Z",
        "key": str(key),
        "tags": ["a"],
        "ratio": None,
        "pair": [1, 2],
    }
    async with checked_client(service) as client:
        tokens = await login(client, "alice")
        refreshed = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
    for token in (tokens["access_token"], refreshed.json()["access_token"]):
        claims = service.decode_token(token)
        assert {name: claims[name] for name in kept} == kept
    assert len(await service.get_user_active_sessions(user.id)) == 1


async def test_a_declared_pattern_refuses_what_the_published_schema_refuses() -> None:
    """The OpenAPI document's readers take a pattern as ECMA-262 does, where `$` is the end
    of the text; Python's `$` also matches before a final newline, so `"abc\\n"` passed
    `^[a-z]*$` here while every validator of the document refused it."""
    declared = {"type": "object", "properties": {"nick": {"type": "string", "pattern": "^[a-z]*$"}}}
    service = S3AuthService(make_settings(), profile_fields=declared)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")

        async def set_nick(nick: str) -> Any:
            return await client.patch(
                "/auth/me", json={"profile": {"nick": nick}}, headers=bearer(tokens)
            )

        for refused in ("abc\n", "ab\nc", "ABC", "\u0430bc"):  # the last: a Cyrillic a
            problem = assert_problem(await set_nick(refused), 422, "validation_error")
            assert "'^[a-z]*$'" in problem["detail"] and "$.nick" in problem["detail"]
        assert (await set_nick("abc")).json()["profile"] == {"nick": "abc"}
        document = (await client.get("/auth/openapi.json")).json()
    (nick,) = [
        schema["properties"]["nick"]
        for name, schema in document["components"]["schemas"].items()
        if name.startswith("Profile") and not name.endswith("Change")
    ]
    assert {"type": "string", "pattern": "^[a-z]*$"} in nick["anyOf"]
    stored = await service.get_user_by_username("alice")
    assert stored is not None and stored.profile == {"nick": "abc"}


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ({"type": "string", "pattern": "(?i)^[a-z]+$"}, "profile_fields.nick: pattern '(?i)"),
        ({"type": "string", "pattern": 7}, "profile_fields.nick: a pattern is a string"),
        ({"type": "integer", "pattern": "^1$"}, "profile_fields.nick: a pattern needs type string"),
    ],
)
def test_a_pattern_that_cannot_be_checked_as_published_is_refused_at_once(
    spec: dict[str, Any], refusal: str
) -> None:
    declared = {"type": "object", "properties": {"nick": spec}}
    with pytest.raises(ConfigurationError, match=re.escape(refusal)):
        S3AuthService(make_settings(), profile_fields=declared)


def documented_claims_hook(directory: Path) -> Hooks:
    """The `token_claims` hook that docs/accounts.md shows beside the profile fields."""
    (block,) = [
        b for b in BLOCKS if b.document == "docs/accounts.md" and "@hooks.token_claims" in b.code
    ]
    script = directory / "claims_hook.py"
    script.write_text(block.code)
    hooks: Hooks = runpy.run_path(str(script))["hooks"]
    return hooks


async def test_the_documented_claims_hook_takes_no_tenant_from_the_profile(
    tmp_path: Path,
) -> None:
    # A user changes their own profile at PATCH /me, without their password: a claim that
    # follows it must not be one an application decides access on. The documented tenant
    # follows what only administrators set.
    service = S3AuthService(
        make_settings(), profile_fields=Profile, hooks=documented_claims_hook(tmp_path)
    )
    async with client_for(mounted(service)) as client:
        await service.create_user(
            "root", "root@example.com", PASSWORD, is_admin=True, profile={"company": "Ops"}
        )
        root = bearer(await login(client, "root"))
        alice = await register(client, "alice", profile={"company": "Acme"})
        granted = await client.patch(
            f"/auth/admin/users/{alice['id']}", json={"scopes": ["tenant:acme"]}, headers=root
        )
        assert granted.status_code == 200

        async def claims() -> dict[str, Any]:
            return service.decode_token((await login(client, "alice"))["access_token"])

        assert (await claims())["tenant"] == "acme"
        moved = await client.patch(
            "/auth/me",
            json={"profile": {"company": "Victim Corp"}},
            headers=bearer(await login(client, "alice")),
        )
        assert moved.status_code == 200
        assert (await claims())["tenant"] == "acme"
        regranted = await client.patch(
            f"/auth/admin/users/{alice['id']}", json={"scopes": ["tenant:globex"]}, headers=root
        )
        assert regranted.status_code == 200
        assert (await claims())["tenant"] == "globex"
