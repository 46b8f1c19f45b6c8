"""No password of the store's endpoint in what a failed request leaves behind for anyone to
print: the StoreUnavailableError's whole chain as a traceback shows it (`logger.exception`,
a debug page, an error tracker), the log, the problem response, and `s3auth`'s output.

obstore's messages quote the URL of the request that failed as it was made, and an endpoint
URL may carry user info (`AWS_ENDPOINT_URL=http://user:PASSWORD@host`): here a real S3 store
whose endpoint does, on a loopback port that refuses connections.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback

import httpx
import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from test_cli_failures import concurrently, environment, free_port
from test_store_failures import (
    assert_unavailable,
    calls,
    closed_port,  # noqa: F401 (a fixture)
    operations,
    tokens_of,
)

from s3auth_asgi import S3AuthService, StoreUnavailableError
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

SECRET_PASSWORD = "Pa55-in-the-endpoint"
USER = "endpoint-user"


def endpoint(port: int) -> str:
    return f"http://{USER}:{SECRET_PASSWORD}@127.0.0.1:{port}"


def credentialed_s3(port: int) -> ObjectStore:
    return ObjectStore.from_url(
        "s3://s3auth-unreachable/auth",
        endpoint=endpoint(port),
        access_key_id="unused",
        secret_access_key="unused",
        region="us-east-1",
        client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "2s"},
        retry_config={"max_retries": 0, "retry_timeout": dt.timedelta(seconds=1)},
    )


def shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


async def test_no_request_chains_the_endpoint_password(
    closed_port: int,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = credentialed_s3(closed_port)
    for name, (call, _) in operations('"etag"').items():
        with pytest.raises(StoreUnavailableError) as info:
            await call(store)
        text = shown(info.value)
        assert SECRET_PASSWORD not in text, (name, text)
        assert USER not in text, (name, text)
        # What the store said stays, for the operator: the request and the address.
        assert f"127.0.0.1:{closed_port}" in text, (name, text)
        assert "Connection refused" in text or "error sending request" in text, (name, text)
    assert SECRET_PASSWORD not in caplog.text


async def test_a_hosts_debug_page_shows_no_endpoint_password(
    closed_port: int,  # noqa: F811
) -> None:
    """A host route that lets the service's error through, on Starlette's debug page (its
    plain-text form: the traceback with its chain)."""
    service = make_service(store=credentialed_s3(closed_port))

    async def fresh(request: Request) -> PlainTextResponse:
        await service.ensure_fresh()
        return PlainTextResponse("fresh")

    app = Starlette(debug=True, routes=[Route("/fresh", fresh)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/fresh")
    assert response.status_code == 500
    assert "StoreUnavailableError" in response.text  # the page shows the error and its chain
    assert SECRET_PASSWORD not in response.text and USER not in response.text


async def test_the_problem_response_and_the_log_hold_no_endpoint_password(
    closed_port: int,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = await tokens_of(make_service(), "alice")  # the same secret key
    service: S3AuthService = make_service(store=credentialed_s3(closed_port))
    app = Starlette(routes=[Mount("/auth", app=create_auth_app(service, rate_limit=False))])
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for name, response in (await calls(http, tokens)).items():
            assert_unavailable(name, response, SECRET_PASSWORD, USER)
    assert SECRET_PASSWORD not in caplog.text and USER not in caplog.text
    for record in caplog.records:
        if record.exc_info:
            assert SECRET_PASSWORD not in shown(record.exc_info[1])  # type: ignore[arg-type]


def test_the_command_shows_no_endpoint_password() -> None:
    """`check`, and a command run with --debug, whose traceback shows the whole chain."""
    env = environment(
        S3AUTH_STORE_URL="s3://bucket/auth",
        AWS_ENDPOINT_URL=endpoint(free_port()),
        AWS_ALLOW_HTTP="true",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    check, debugged, plain = concurrently(
        (["check"], env, None),
        (["--debug", "user", "list"], env, None),
        (["user", "list"], env, None),
        retry_window=1,  # refused at once, retried for a second: how long is not tested
    )
    assert check.code == failures.UNAVAILABLE, check
    assert "[FAIL] reachable" in check.out
    assert debugged.code == plain.code == failures.UNAVAILABLE, (debugged, plain)
    assert "Traceback" in debugged.err and "127.0.0.1" in debugged.err
    for result in (check, debugged, plain):
        assert SECRET_PASSWORD not in result.out + result.err, result
        assert USER not in result.out + result.err, result
