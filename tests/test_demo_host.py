"""The demo on loopback answers a loopback Host alone: a page of another site that has its
own name resolve to 127.0.0.1 (DNS rebinding) is, to the browser, of that site, and must
reach none of the demo (register, login, resets, the page, the outbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from declared_answers import DeclaredAnswers
from support import websocket_scope, websocket_session
from test_app import PASSWORD, assert_problem, client_for
from test_demo import OUTBOX_KEY, demo_service, with_key

from s3auth_asgi.cli.demo import network_note
from s3auth_asgi.demo.app import create_demo_app

pytestmark = pytest.mark.anyio

REBOUND = (
    "attacker.example",
    "attacker.example:8000",
    "127.0.0.1.attacker.example:8000",
    "localhost.attacker.example",
    "localhost:8001",  # loopback, but not the demo's port
    "127.0.0.1:8000@attacker.example",
    "[::1]x",
    "",
    "localhost:" + "0" * 5_000 + "8000",  # more digits than Python turns into an int
)
LOCAL = ("127.0.0.1:8000", "127.0.0.1", "localhost:8000", "LOCALHOST", "[::1]:8000", "[::1]")
REQUESTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("POST", "/auth/register", {"json": {"username": "mallory", "email": "m@example.com",
                                         "password": PASSWORD}}),
    ("POST", "/auth/login", {"data": {"username": "root", "password": "Wrong-horse-9"}}),
    ("POST", "/auth/password/forgot", {"json": {"username": "root"}}),
    ("GET", "/auth/openapi.json", {}),
    ("GET", "/", {}),
    ("GET", "/api/hello", {}),
    ("GET", "/demo/outbox", {"headers": with_key()}),
)  # fmt: skip


async def test_a_rebound_host_reaches_nothing_of_a_demo_on_loopback(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    app = create_demo_app(service, outbox_key=OUTBOX_KEY)
    async with client_for(app, base_url="http://127.0.0.1:8000") as client:
        # Its auth operations' refusals are the ones the document it serves declares.
        declared = DeclaredAnswers((await client.get("/auth/openapi.json")).json())
        service.store.reset_counts()
        for host in REBOUND:
            for method, path, options in REQUESTS:
                headers = {**options.get("headers", {}), "Host": host}
                sent = {**options, "headers": headers}
                response = await client.request(method, path, **sent)
                assert_problem(response, 421, "misdirected_request")
                assert response.headers["cache-control"] == "no-store"
                declared.check(response)
        # Two Host headers: which one the server acts on is anyone's guess.
        twice = [("Host", "127.0.0.1:8000"), ("Host", "attacker.example")]
        assert_problem(await client.get("/", headers=twice), 421, "misdirected_request")
        assert sum(service.store.requests.values()) == 0
        # To this machine's own names, the same requests are answered as ever.
        for host in LOCAL:
            answered = await client.get("/demo/outbox", headers={**with_key(), "Host": host})
            assert answered.status_code == 200, host
        statuses = [
            (await client.request(method, path, **options)).status_code
            for method, path, options in REQUESTS
        ]
        assert statuses == [201, 401, 202, 200, 200, 401, 200]


async def test_a_rebound_host_opens_no_websocket(tmp_path: Path) -> None:
    app = create_demo_app(demo_service(tmp_path))
    scope = websocket_scope("/auth/ws") | {
        "headers": [(b"host", b"attacker.example:8000")],
        "server": ("127.0.0.1", 8000),
    }
    refused = await websocket_session(app, scope)
    assert refused.sent == [
        {"type": "websocket.close", "code": 1008, "reason": "misdirected_request"}
    ]


async def test_a_demo_served_to_the_network_answers_the_names_it_is_reached_by(
    tmp_path: Path,
) -> None:
    """`--host 0.0.0.0`: others reach it by this machine's name or address; the outbox
    still answers this machine, to a loopback Host, alone."""
    service = demo_service(tmp_path)
    app = create_demo_app(service, outbox_key=OUTBOX_KEY, host="0.0.0.0")  # noqa: S104
    async with client_for(app, base_url="http://demo.lan:8000") as client:
        statuses = [
            (await client.request(method, path, **options)).status_code
            for method, path, options in REQUESTS
        ]
        assert statuses == [201, 401, 202, 200, 200, 401, 404]
        document = (await client.get("/auth/openapi.json")).json()
    # No Host is refused, so no operation says one may be.
    for item in document["paths"].values():
        assert all("421" not in operation["responses"] for operation in item.values())
    async with client_for(app, base_url="http://127.0.0.1:8000") as local:
        assert (await local.get("/demo/outbox", headers=with_key())).status_code == 200


@pytest.mark.parametrize("host", ["LOCALHOST", "Localhost"])
async def test_a_demo_on_localhost_in_capitals_is_on_loopback(tmp_path: Path, host: str) -> None:
    """Host names are the same in any case (RFC 4343): `--host LOCALHOST` listens where
    `--host localhost` does, so a rebound name reaches none of it either, and no line says
    that others on the network reach it."""
    app = create_demo_app(demo_service(tmp_path), outbox_key=OUTBOX_KEY, host=host)
    async with client_for(app, base_url="http://attacker.example:8000") as client:
        assert_problem(await client.get("/"), 421, "misdirected_request")
    async with client_for(app, base_url=f"http://{host}:8000") as client:
        assert (await client.get("/")).status_code == 200
    assert network_note(host) == ""
