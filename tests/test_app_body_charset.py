"""A body is read as UTF-8, the only encoding JSON has between systems (RFC 8259 §8.1) and
the one the app decodes forms in. A `charset` parameter naming another is refused, 415,
from the headers, before a byte is received: read as UTF-8 anyway, a Latin-1 `é` in a
password fails as malformed, a UTF-16 body as not JSON, and a proxy in front that decodes
by the label sees other names and passwords than the app."""

from __future__ import annotations

import json

import pytest
from conftest import make_service
from support import http_scope
from test_app import PASSWORD, mounted
from test_app_body_types import unread
from test_app_content_coding import registration_refused_unread

from s3auth_asgi.app.body_headers import declared_charsets

pytestmark = pytest.mark.anyio

ALICE = json.dumps({"username": "alice", "email": "alice@example.com", "password": PASSWORD})


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=iso-8859-1",
        "application/json;charset=UTF-16",
        'application/json; charset="latin1"',
        "application/json; charset=",
        # Named twice: a proxy in front that reads the last would decode another body.
        "application/json; charset=utf-8; charset=iso-8859-1",
        "application/json; charset=iso-8859-1; charset=utf-8",
    ],
)
async def test_a_body_in_another_charset_is_refused_unread(content_type: str) -> None:
    service = make_service()
    body = ALICE.encode()
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    response = await registration_refused_unread(service, headers, body)
    assert "UTF-8" in response.json()["detail"]


async def test_a_form_in_another_charset_is_refused() -> None:
    service = make_service()
    body = b"username=alice&password=x&grant_type=password"
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded; charset=windows-1252"),
        (b"content-length", str(len(body)).encode()),
    ]
    response, asked = await unread(
        mounted(service), http_scope("/auth/login", headers, method="POST"), body
    )
    assert response.status == 415, response.body
    assert response.json()["error"] == "invalid_request"
    assert asked == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json; Charset=UTF-8",
        'application/json; charset="utf-8"',
        # The other labels of UTF-8 (WHATWG Encoding): OkHttp clients built with
        # `"application/json; charset=UTF8".toMediaType()` send this one.
        "application/json; charset=UTF8",
        "application/json; charset=unicode-1-1-utf-8",
        "application/json; charset=utf-8; charset=utf8",
        "application/json; version=2",
        "application/json",
    ],
)
async def test_utf8_or_no_charset_is_read(content_type: str) -> None:
    service = make_service()
    body = ALICE.encode()
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    response, _ = await unread(
        mounted(service), http_scope("/auth/register", headers, method="POST"), body
    )
    assert response.status == 201, response.body


@pytest.mark.parametrize(
    ("content_type", "charset"),
    [
        ("application/json", None),
        ("application/json; charset=UTF-8", "utf-8"),
        ('application/json ; q=1; CHARSET = "Latin1" ', "latin1"),
        ("application/json; charset", ""),
        ('application/json; x="a;charset=utf-16"', None),
    ],
)
def test_the_charset_parameter_is_found(content_type: str, charset: str | None) -> None:
    assert declared_charsets(content_type) == ([] if charset is None else [charset])


def test_every_charset_parameter_is_found() -> None:
    content_type = 'application/json; charset=utf-8; x=1; CHARSET="latin1"'
    assert declared_charsets(content_type) == ["utf-8", "latin1"]
