"""The request bodies and query parameters the OpenAPI document admits are those the app
takes: a client generated from the document (or a tool that builds requests from it) must
not be able to send, by the document's word, what the app refuses for its form. Each case
is an input the app refuses, checked against the document's own schema of it (JSON Schema
2020-12), and a close one the app takes, which the document must admit too.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from jsonschema import Draft202012Validator
from test_app import PASSWORD, bearer, checked_client, login, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app

pytestmark = pytest.mark.anyio


def admits(service: S3AuthService, schema: str, body: dict[str, Any]) -> bool:
    """Whether the document of `service`'s app admits `body` as the schema named `schema`."""
    document = create_auth_app(service, rate_limit=False).openapi
    assert document is not None
    components = document.for_mount("/auth")["components"]
    root = {"$ref": f"#/components/schemas/{schema}", "components": components}
    return Draft202012Validator(root).is_valid(body)


@pytest.mark.parametrize(
    ("path", "schema", "body", "grant_type"),
    [
        ("/login", "LoginRequest", {"username": "alice", "password": PASSWORD}, "password"),
        ("/refresh", "RefreshRequest", {"refresh_token": "rt"}, "refresh_token"),
    ],
    ids=["login", "refresh"],
)
async def test_a_token_endpoint_is_documented_with_the_one_grant_type_it_takes(
    path: str, schema: str, body: dict[str, str], grant_type: str
) -> None:
    service = make_service()
    # A form field has no null: a client that encodes one sends the text "null".
    async with checked_client(service) as client:
        await register(client, "alice")
        refused = await client.post(f"/auth{path}", data={**body, "grant_type": "null"})
        taken = await client.post(f"/auth{path}", data={**body, "grant_type": grant_type})
    assert refused.json()["code"] == "unsupported_grant_type"
    assert taken.json().get("code") != "unsupported_grant_type"
    assert not admits(service, schema, {**body, "grant_type": "null"})
    assert admits(service, schema, {**body, "grant_type": grant_type})
    assert admits(service, schema, {**body, "grant_type": None})
    assert admits(service, schema, body)


async def test_without_profile_fields_the_document_admits_no_profile() -> None:
    service = make_service()
    new = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    async with checked_client(service) as client:
        alice = (await register(client, "alice", profile=None))["id"]
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        own, root = bearer(await login(client, "alice")), bearer(await login(client, "root"))
        for schema, method, path, body, headers in [
            ("RegisterRequest", "POST", "/register", new, {}),
            ("UpdateProfileRequest", "PATCH", "/me", {}, own),
            ("AdminUserCreate", "POST", "/admin/users", new, root),
            ("AdminUserUpdate", "PATCH", f"/admin/users/{alice}", {}, root),
        ]:
            sent = {**body, "profile": {}}
            refused = await client.request(method, f"/auth{path}", json=sent, headers=headers)
            assert (
                refused.json()["detail"] == "profile: this application declares no profile fields"
            )
            assert not admits(service, schema, sent), schema
            assert admits(service, schema, body), schema
        taken = await client.post("/auth/admin/users", json={**new, "profile": None}, headers=root)
        assert taken.status_code == 201
    assert admits(service, "AdminUserCreate", {**new, "profile": None})
    assert admits(service, "RegisterRequest", {**new, "profile": None})


@pytest.mark.parametrize("scope", ["", "s" * 65], ids=["empty", "too long"])
async def test_the_document_admits_the_scopes_an_administrator_may_give(scope: str) -> None:
    service = make_service()
    new = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    async with checked_client(service) as client:
        alice = (await register(client, "alice"))["id"]
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        root = bearer(await login(client, "root"))
        for schema, method, path, body in [
            ("AdminUserCreate", "POST", "/admin/users", new),
            ("AdminUserUpdate", "PATCH", f"/admin/users/{alice}", {}),
        ]:
            refused = {**body, "scopes": ["read", scope]}
            answer = await client.request(method, f"/auth{path}", json=refused, headers=root)
            assert answer.status_code == 422
            assert not admits(service, schema, refused), schema
            taken = {**body, "scopes": ["read", "s" * 64]}
            answer = await client.request(method, f"/auth{path}", json=taken, headers=root)
            assert answer.status_code in (200, 201)
            assert admits(service, schema, taken), schema


def admits_query(service: S3AuthService, path: str, name: str, value: str) -> bool:
    """Whether the document admits `value` as the query parameter `name` of `GET path`."""
    document = create_auth_app(service, rate_limit=False).openapi
    assert document is not None
    parameters = document.for_mount("/auth")["paths"][path]["get"]["parameters"]
    (schema,) = [p["schema"] for p in parameters if p["name"] == name and p["in"] == "query"]
    return Draft202012Validator(schema).is_valid(value)


async def test_the_document_admits_the_cursors_a_page_takes() -> None:
    service = make_service()
    async with checked_client(service) as client:
        alice = (await register(client, "alice"))["id"]
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        root = bearer(await login(client, "root"))
        event_cursors = ("1795838823000.a1", ["1795838823000.a-1", ".A", "1." + "a" * 63])
        pages = [
            ("/admin/users", "/admin/users", ("0" * 32, ["0" * 31 + "g", "0" * 33])),
            ("/me/events", "/me/events", event_cursors),
            ("/admin/users/{user_id}/events", f"/admin/users/{alice}/events", event_cursors),
        ]
        for documented, path, (cursor, malformed) in pages:
            taken = await client.get(f"/auth{path}", params={"after": cursor}, headers=root)
            assert taken.status_code == 200
            assert admits_query(service, documented, "after", cursor), documented
            for after in malformed:
                refused = await client.get(f"/auth{path}", params={"after": after}, headers=root)
                assert refused.json()["detail"] == "The cursor is not valid"
                assert not admits_query(service, documented, "after", after), (documented, after)
