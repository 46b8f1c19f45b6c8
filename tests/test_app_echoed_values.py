"""A problem's detail that quotes what the client sent (a Content-Type, a field's name)
quotes at most ECHO_MAX characters of it: a request of 64 KiB must not come back as a
detail of 64 KiB, for every log, error tracker and page that shows details to carry."""

from __future__ import annotations

import json

import pytest
from conftest import make_service
from test_app import client_for, mounted

from s3auth_asgi.problems import ECHO_MAX

LONG = "n" * 20_000
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
CASES = {
    "content_type": ("/auth/login", b"a=b", {"content-type": "text/" + LONG}),
    "unknown_json_member": (
        "/auth/register",
        json.dumps({"username": "alice", LONG: 1}).encode(),
        JSON,
    ),
}
UNQUOTED = {
    # A form field's name may be a password cut loose by an unencoded `&`: never quoted.
    "form_field_twice": ("/auth/login", f"{LONG}=1&{LONG}=2".encode(), FORM),
    "unknown_form_field": ("/auth/login", f"username=a&password=b&{LONG}=1".encode(), FORM),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
async def test_a_detail_quotes_a_bounded_part_of_what_was_sent(case: str) -> None:
    path, body, headers = CASES[case]
    async with client_for(mounted(make_service())) as client:
        answer = await client.post(path, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    detail = answer.json()["detail"]
    # The value's start is still there to read, and the detail ends soon after it.
    assert "n" * (ECHO_MAX // 2) in detail and len(detail) <= ECHO_MAX + 100, (case, detail)


@pytest.mark.anyio
@pytest.mark.parametrize("case", UNQUOTED)
async def test_a_form_field_name_is_not_quoted_at_all(case: str) -> None:
    path, body, headers = UNQUOTED[case]
    async with client_for(mounted(make_service())) as client:
        answer = await client.post(path, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert "nnnn" not in answer.text and len(answer.json()["detail"]) <= 300, answer.text
