"""A body sent with a content coding (`Content-Encoding: gzip`, …) is refused, 415 with
`Accept-Encoding: identity` (RFC 9110 §15.5.16, RFC 7694 §3), from its headers, before a
byte of it is received. The app decodes no coding: read as it comes, a compressed body is
"not valid JSON", and a plain one labelled gzip is taken as the JSON a proxy or firewall
in front, which decodes it, never sees."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from conftest import make_service
from support import at_most_syncs, http_scope
from test_app import PASSWORD, mounted
from test_app_body_types import ID, admin_bearer, unread, with_bodies

from s3auth_asgi import S3AuthService

pytestmark = pytest.mark.anyio

ALICE = json.dumps({"username": "alice", "email": "alice@example.com", "password": PASSWORD})


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(ALICE.encode())),
        ("gzip", ALICE.encode()),  # labelled gzip, sent plain
        ("deflate", ALICE.encode()),
        ("GZIP", ALICE.encode()),
        ("identity, gzip", ALICE.encode()),
    ],
    ids=["compressed", "labelled only", "deflate", "upper case", "in a list"],
)
async def test_a_coded_body_is_refused_unread_and_writes_nothing(coding: str, body: bytes) -> None:
    service = make_service()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-encoding", coding.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    response = await registration_refused_unread(service, headers, body)
    assert response.headers[b"accept-encoding"] == b"identity"


async def registration_refused_unread(
    service: S3AuthService, headers: list[tuple[bytes, bytes]], body: bytes
) -> Any:
    """The answer to registering alice with `headers`, asserted a 415 given before the
    body was asked for, with no store request but a sync and no user made."""
    service.store.reset_counts()
    response, asked = await unread(
        mounted(service), http_scope("/auth/register", headers, method="POST"), body
    )
    assert response.status == 415, response.body
    assert response.json()["code"] == "unsupported_media_type"
    assert asked == 0
    assert at_most_syncs(service.store.requests)
    assert await service.get_user_by_username("alice") is None
    return response


async def test_every_operation_with_a_body_refuses_a_coding() -> None:
    service = make_service()
    app = mounted(service)
    token = await admin_bearer(service)
    body = gzip.compress(b"{}")
    for op in with_bodies(service):
        path = "/auth" + op.path.format(user_id=ID, session_id=ID)
        framing = [
            (b"content-type", b"application/json"),
            (b"content-encoding", b"gzip"),
            (b"transfer-encoding", b"chunked"),
        ]
        response, asked = await unread(
            app, http_scope(path, [token, *framing], method=op.method), body
        )
        assert (response.status, asked) == (415, 0), (op.operation_id, response.body)
        if op.token_endpoint:
            assert response.json()["error"] == "invalid_request", op.operation_id


@pytest.mark.parametrize("coding", ["identity", " Identity "])
async def test_the_identity_coding_is_no_coding(coding: str) -> None:
    service = make_service()
    headers = [(b"content-type", b"application/json"), (b"content-encoding", coding.encode())]
    response, _ = await unread(
        mounted(service), http_scope("/auth/register", headers, method="POST"), ALICE.encode()
    )
    assert response.status == 201, response.body


async def test_a_body_declared_empty_is_answered_as_empty_whatever_its_coding() -> None:
    service = make_service()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-encoding", b"gzip"),
        (b"content-length", b"0"),
    ]
    response, _ = await unread(
        mounted(service), http_scope("/auth/register", headers, method="POST"), b""
    )
    assert response.status == 400, response.body
    assert response.json()["code"] == "malformed_body"


@pytest.mark.parametrize(
    "header",
    [
        (b"content-encoding", b"gzip"),
        (b"content-type", b"application/json; charset=iso-8859-1"),
    ],
    ids=["coding", "charset"],
)
async def test_a_body_without_a_length_is_judged_by_its_headers_too(
    header: tuple[bytes, bytes],
) -> None:
    """HTTP/2 and HTTP/3 frame a body themselves: it may come with neither Content-Length
    nor Transfer-Encoding. Its headers are judged once it is read, as one a proxy in front
    decodes by them is no body the app may read otherwise."""
    service = make_service()
    headers = [(b"content-type", b"application/json")]
    headers = [h for h in headers if h[0] != header[0]] + [header]
    scope = {**http_scope("/auth/register", headers, method="POST"), "http_version": "2"}
    response, _ = await unread(mounted(service), scope, ALICE.encode())
    assert response.status == 415, response.body
    assert response.json()["code"] == "unsupported_media_type"
    assert await service.get_user_by_username("alice") is None
