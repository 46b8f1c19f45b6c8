"""A store endpoint over plain http, without the variable that allows it: obstore refuses to
send the request and says only "HTTP error: builder error" (its debug dump, `BadScheme`),
which reads like a store that failed for a moment. The log, `s3auth check` and the
command's one line say instead what is wrong and what to do: AWS_ALLOW_HTTP=true, for a
plain-http endpoint such as a local test server, never in production.

The endpoint is moto's, a real S3 server on 127.0.0.1 over http.
"""

from __future__ import annotations

import logging

import pytest
from conftest import make_bucket
from test_cli_failures import concurrently, environment

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

FIX = "AWS_ALLOW_HTTP=true"
NOT_IN_PRODUCTION = "never in production"


async def test_the_log_names_the_fix(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = make_bucket(moto_endpoint)
    monkeypatch.delenv("AWS_ALLOW_HTTP")  # the fixture sets it for the other tests
    store = ObjectStore.from_url(f"s3://{bucket}/auth")
    with pytest.raises(StoreUnavailableError) as info:
        await store.get("users/a.json", dict)
    assert store.requests["get"] == 1
    records = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(records) == 1, records
    assert FIX in records[0] and NOT_IN_PRODUCTION in records[0], records
    assert "plain http" in records[0]
    # The public detail stays what it is for any failure.
    assert info.value.detail == "The store could not be read; try again later"
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    assert await ObjectStore.from_url(f"s3://{bucket}/auth").get("users/a.json", dict) is None


def test_check_and_a_command_name_the_fix(moto_endpoint: str) -> None:
    env = environment(
        S3AUTH_STORE_URL=f"s3://{make_bucket(moto_endpoint)}/auth",
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    check, listed = concurrently((["check"], env, None), (["user", "list"], env, None))
    assert check.code == failures.UNAVAILABLE, check
    reachable = next(line for line in check.out.splitlines() if "reachable" in line)
    assert reachable.startswith("[FAIL]")
    assert FIX in reachable and NOT_IN_PRODUCTION in reachable, check.out
    assert "try again later" not in reachable, check.out
    assert listed.code == failures.UNAVAILABLE, listed
    assert FIX in listed.err and NOT_IN_PRODUCTION in listed.err, listed
    assert "try again later" not in listed.err, listed
    assert len(listed.err.splitlines()) == 1, listed
