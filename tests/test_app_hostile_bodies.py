"""Bodies and headers built to break the reader rather than to say anything: nesting deep
enough to exhaust a decoder's recursion, a Content-Length too long to be a number or given
twice. Each is a 400 `malformed_body` that reads and writes nothing, never a 500."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_service
from hypothesis import given
from hypothesis import strategies as st
from support import at_most_syncs, call_http, http_scope
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

from s3auth_asgi.app.body import MAX_JSON_DEPTH, nesting_depth

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}


def nested_profile(depth: int, fields: str = "") -> bytes:
    """A JSON object whose `profile` puts the innermost value `depth` levels deep (the body
    itself is the first level), after `fields`."""
    inner = '{"a":' * (depth - 2) + "1" + "}" * (depth - 2)
    return ("{" + fields + '"profile":{"p":' + inner + "}}").encode()


def test_the_bound_is_the_documented_one() -> None:
    assert MAX_JSON_DEPTH == 32


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 5000])
async def test_a_body_nested_too_deep_is_refused_and_writes_nothing(
    tmp_path: Path, depth: int
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        root = await admin_tokens(service, client)
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        account = f'"username":"mallory","email":"m@example.com","password":"{PASSWORD}",'
        requests = [
            ("POST", "/auth/register", nested_profile(depth, account), {}),
            ("PATCH", "/auth/me", nested_profile(depth), bearer(tokens)),
            ("POST", "/auth/admin/users", nested_profile(depth, account), bearer(root)),
            ("PATCH", f"/auth/admin/users/{alice['id']}", nested_profile(depth), bearer(root)),
            # Arrays count alike, and so does nesting in a field that is not an object.
            ("POST", "/auth/login", b'{"username":' + b"[" * depth + b"]" * depth + b"}", {}),
        ]
        before = sorted([info.key async for info in service.store.list("")])
        service.store.reset_counts()
        for method, path, body, headers in requests:
            response = await client.request(method, path, content=body, headers={**JSON, **headers})
            problem = assert_problem(response, 400, "malformed_body")
            assert f"nested more than {MAX_JSON_DEPTH} levels" in problem["detail"], path
        # Refused before any read or write of the store (a sync of the revocations may run).
        assert at_most_syncs(service.store.requests)
        assert sorted([info.key async for info in service.store.list("")]) == before
        assert await service.get_user_by_username("mallory") is None


async def test_nesting_up_to_the_bound_is_read(tmp_path: Path) -> None:
    """At the bound the body is decoded and judged on its fields: no profile fields are
    declared, so the profile is what is wrong."""
    service = service_with(tmp_path)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        body = nested_profile(MAX_JSON_DEPTH)
        # Brackets inside strings are text, not nesting.
        quoted = b'{"full_name":"' + b"[{" * 200 + b'","profile":{"p":1}}'
        for content in (body, quoted):
            response = await client.patch(
                "/auth/me", content=content, headers={**JSON, **bearer(tokens)}
            )
            assert_problem(response, 422, "validation_error")


# Strings rich in what a scanner could mistake for structure.
tricky_text = st.text(st.sampled_from('[]{}"\\/ a\n\u00e9\U0001f600'), max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=20,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@given(json_values, st.booleans())
def test_nesting_depth_is_the_depth_of_the_value(value: Any, spaced: bool) -> None:
    # Brackets, quotes and backslashes in names and strings are text, escaped or not.
    text = json.dumps(value, ensure_ascii=spaced, indent=1 if spaced else None)
    assert nesting_depth(text.encode()) == depth_of(value)


async def test_a_string_that_never_ends_is_scanned_once(tmp_path: Path) -> None:
    """Escaped quotes up to the size limit and no closing one: read in one pass (a search
    that went back for the closing quote from each quote took half a minute here)."""
    service = service_with(tmp_path)
    body = b'{"username":"' + b'\\"' * 32_000
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        started = time.perf_counter()
        response = await client.post("/auth/login", content=body, headers=JSON)
        elapsed = time.perf_counter() - started
    assert_problem(response, 400, "malformed_body")
    assert elapsed < 2


@pytest.mark.parametrize(
    ("declared", "status", "code"),
    [
        # More digits than Python turns into an int by default: still a number, and too big.
        ("1" * 4301, 413, "body_too_large"),
        ("9" * 100_000, 413, "body_too_large"),
        ("65537", 413, "body_too_large"),
        # Leading zeros change nothing: this one says 2, as the body is.
        ("0" * 5000 + "2", 422, "validation_error"),
        ("+2", 400, "malformed_body"),
        ("2, 2", 400, "malformed_body"),
        ("", 400, "malformed_body"),
        ("\u00b2", 400, "malformed_body"),  # a digit, but not a decimal one
    ],
)
async def test_a_content_length_is_read_as_a_number_of_any_length(
    tmp_path: Path, declared: str, status: int, code: str
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
        request = client.build_request("POST", "/auth/login", content=b"{}", headers=JSON)
        raw = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        request.headers = httpx.Headers([*raw, (b"content-length", declared.encode("latin-1"))])
        service.store.reset_counts()
        response = await client.send(request)
    assert_problem(response, status, code)
    assert service.store.requests == {}


@pytest.mark.parametrize(
    "lengths",
    [
        ("real", "65537"),  # the first is the body's: read alone, it passes
        ("65537", "real"),
        ("1", "real"),
        ("real", "real"),  # the same value twice is refused too, as one may be
    ],
)
async def test_a_content_length_given_twice_is_refused_and_writes_nothing(
    tmp_path: Path, lengths: tuple[str, str]
) -> None:
    # Through raw ASGI: an HTTP client would merge the two headers or refuse to send them.
    service = service_with(tmp_path)
    body = json.dumps(
        {"username": "mallory", "email": "m@example.com", "password": PASSWORD}
    ).encode()
    declared = [str(len(body)) if length == "real" else length for length in lengths]
    headers = [(b"content-type", b"application/json")]
    headers += [(b"content-length", length.encode()) for length in declared]
    app = mounted(service)
    service.store.reset_counts()
    response = await call_http(app, http_scope("/auth/register", headers, method="POST"), body)
    assert response.status == 400
    assert response.headers[b"content-type"] == b"application/problem+json"
    assert response.json()["code"] == "malformed_body"
    assert response.json()["detail"] == "The Content-Length header is given more than once"
    assert service.store.requests == {}
    assert await service.get_user_by_username("mallory") is None


@pytest.mark.parametrize(
    "types",
    [
        ("application/json", "application/x-www-form-urlencoded"),
        ("application/x-www-form-urlencoded", "application/json"),
        ("application/json", "text/plain"),
        ("application/json", "application/json"),  # refused too, as Content-Length twice is
    ],
)
@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
async def test_a_content_type_given_twice_is_refused_and_writes_nothing(
    tmp_path: Path, types: tuple[str, str], path: str
) -> None:
    # A filter in front that reads the other header reads another body: a form whose one
    # field is the whole JSON text, no username in it to count or block.
    service = service_with(tmp_path)
    fields = {"username": "mallory", "email": "m@example.com", "password": PASSWORD}
    if path.endswith("/login"):
        await service.create_user(**fields)
        fields.pop("email")
    body = json.dumps(fields).encode()
    headers = [(b"content-type", kind.encode()) for kind in types]
    headers.append((b"content-length", str(len(body)).encode()))
    service.store.reset_counts()
    response = await call_http(mounted(service), http_scope(path, headers, method="POST"), body)
    assert response.status == 400, response.body
    assert response.headers[b"content-type"] == b"application/problem+json"
    assert response.json()["code"] == "malformed_body"
    assert response.json()["detail"] == "The Content-Type header is given more than once"
    assert service.store.requests == {}


@pytest.mark.parametrize(
    "joined",
    [
        "text/plain, application/x+json",
        "application/x-www-form-urlencoded,application/merge-patch+json",
        "application/json, application/json",
    ],
)
@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
async def test_a_content_type_given_twice_in_one_header_is_refused_and_writes_nothing(
    tmp_path: Path, joined: str, path: str
) -> None:
    # As a proxy that merges two Content-Type headers into one forwards them: a filter that
    # went by the first reads plain text or a form where the app, by the last, read JSON.
    service = service_with(tmp_path)
    fields = {"username": "mallory", "email": "m@example.com", "password": PASSWORD}
    if path.endswith("/login"):
        await service.create_user(**fields)
        fields.pop("email")
    body = json.dumps(fields).encode()
    headers = [(b"content-type", joined.encode()), (b"content-length", str(len(body)).encode())]
    service.store.reset_counts()
    response = await call_http(mounted(service), http_scope(path, headers, method="POST"), body)
    assert response.status == 400, response.body
    assert response.json()["code"] == "malformed_body"
    assert response.json()["detail"] == "The Content-Type header is given more than once"
    assert service.store.requests == {}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SENT_SECRET = "Tr0ub4dor-said-once"


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("/auth/login", "password"),
        ("/auth/refresh", "refresh_token"),
        ("/auth/logout", "refresh_token"),
        ("/auth/login/totp", "mfa_token"),
    ],
)
async def test_a_form_field_no_form_takes_is_refused_without_quoting_it(
    path: str, meant: str
) -> None:
    """JSON sent as a form (`curl -d`'s type) is one field named by the whole text, and a
    password with an `&` left unencoded makes its tail the name of a field: a refusal that
    quoted the name would hand the secret to whatever keeps or shows problem details."""
    service = make_service()
    secrets = {"password": SENT_SECRET, "refresh_token": SENT_SECRET, "code": SENT_SECRET}
    as_json = json.dumps({"username": "alice", "mfa_token": "m", **secrets})
    tail = f"username=alice&password=a&{SENT_SECRET}&mfa_token=m&code=1&refresh_token=r"
    twice = f"username=alice&password=a&{SENT_SECRET}&{SENT_SECRET}"
    async with client_for(mounted(service)) as client:
        answers = [
            await client.post(path, content=body.encode(), headers=FORM)
            for body in (as_json, tail, twice)
        ]
        misspelt = await client.post(path, content=f"{meant[:-1]}=a".encode(), headers=FORM)
    for answer in answers[:2]:
        problem = assert_problem(answer, 422, "validation_error")
        assert "a field it does not take" in problem["detail"]
    assert "application/json" in answers[0].json()["detail"]  # what the client meant
    assert "application/json" not in answers[1].json()["detail"]
    assert_problem(answers[2], 400, "malformed_body")
    assert [answer for answer in answers if SENT_SECRET in answer.text] == []
    # Told which field was meant, by its own name.
    assert f"(`{meant}`?)" in assert_problem(misspelt, 422, "validation_error")["detail"]
    assert service.store.requests == {}
