"""A field given twice is refused (400 `malformed_body`) and changes nothing, in JSON bodies
at any depth, however the name is spelt, and in forms: a decoder keeps the last value, and
a proxy in front that reads the first would see another user, password or flag than the
app. (A query parameter given twice: `test_app_query`.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import at_most_syncs
from test_app import (
    PASSWORD,
    assert_problem,
    bearer,
    client_for,
    declared_for,
    login,
    mounted,
    register,
)
from test_app_lifecycle import admin_tokens, service_with

from s3auth_asgi.json_names import RepeatedName, check_unique_names
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}


async def test_every_json_body_with_a_field_twice_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        root = await admin_tokens(service, client)
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        requests: list[tuple[str, str, bytes, dict[str, str]]] = [
            ("POST", "/auth/register",
             b'{"username": "mallory", "username": "zed", "email": "z@example.com", '
             b'"password": "Secret123!"}', {}),
            # The right password last: a first-reading proxy sees a wrong one.
            ("POST", "/auth/login",
             b'{"username": "alice", "password": "wrong", "password": "Secret123!"}', {}),
            # The second name spelt with an escape: still the same name.
            ("POST", "/auth/password/forgot",
             b'{"username": "nobody", "user\\u006eame": "alice"}', {}),
            ("PATCH", "/auth/me",
             b'{"full_name": "A", "full_name": "B"}', bearer(tokens)),
            ("POST", "/auth/admin/users",
             b'{"username": "ops", "email": "ops@example.com", "password": "Secret123!", '
             b'"is_admin": false, "is_admin": true}', bearer(root)),
            ("PATCH", f"/auth/admin/users/{alice['id']}",
             b'{"profile": {"a": 1, "a": 2}}', bearer(root)),
        ]  # fmt: skip
        before = sorted([info.key async for info in service.store.list("")])
        service.store.reset_counts()
        for method, path, body, headers in requests:
            response = await client.request(method, path, content=body, headers={**JSON, **headers})
            problem = assert_problem(response, 400, "malformed_body")
            assert "twice" in problem["detail"], (path, problem)
        # Refused before any read or write of the store (a sync of the revocations may run).
        assert at_most_syncs(service.store.requests)
        assert sorted([info.key async for info in service.store.list("")]) == before
        await service.mail.drain()
        assert isinstance(service.mail.mailer, FileMailer)
        assert not [m for m in service.mail.mailer.messages() if m.kind == "password_reset"]
        assert await service.get_user_by_username("zed") is None
        assert await service.get_user_by_username("ops") is None


async def test_a_form_field_twice_is_refused(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        await register(client, "alice")
        twice = await client.post(
            "/auth/login",
            content=f"username=alice&password=wrong&password={PASSWORD}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_problem(twice, 400, "malformed_body")
    assert [i async for i in service.store.list(keys.SESSIONS)] == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(json_values)
def test_a_document_with_unique_names_passes(value: Any) -> None:
    check_unique_names(json.dumps(value).encode())
    check_unique_names(json.dumps(value, ensure_ascii=False, indent=1).encode())


@given(
    st.dictionaries(st.text(max_size=3), json_values, max_size=4),
    st.text(max_size=3),
    json_values,
    json_values,
    st.integers(min_value=0, max_value=3),
)
def test_a_name_twice_at_any_depth_is_found(
    members: dict[str, Any], name: str, first: Any, second: Any, depth: int
) -> None:
    # The repeated pair is written by hand (a dict cannot hold it), then nested `depth` deep.
    inner = json.dumps(members)[1:-1]
    pairs = [
        f"{json.dumps(name)}: {json.dumps(first)}",
        f"{json.dumps(name)}: {json.dumps(second)}",
    ]
    document = "{" + ", ".join([*pairs, inner] if inner else pairs) + "}"
    for _ in range(depth):
        document = '{"x": [' + document + "]}"
    with pytest.raises(RepeatedName):
        check_unique_names(document.encode())


@pytest.mark.parametrize(
    "document",
    [b"[" * 100_000 + b"]" * 100_000, b"1" * 5_000, b"\xff{}", b"{} trailing"],
    ids=["too deep", "integer too long", "not UTF-8", "not one document"],
)
def test_what_cannot_be_checked_is_refused(document: bytes) -> None:
    with pytest.raises(ValueError):
        check_unique_names(document)
