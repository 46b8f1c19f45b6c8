"""The demo on loopback answers a loopback Host alone: a page of another site that has its
own name resolve to 127.0.0.1 (DNS rebinding) is, to the browser, of that site, and must
reach none of the demo (register, login, resets, the page, the outbox)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from declared_answers import DeclaredAnswers
from support import websocket_scope, websocket_session
from test_app import PASSWORD, assert_problem, client_for
from test_demo import OUTBOX_KEY, demo_service, with_key

from s3auth_asgi.cli.demo import network_note
from s3auth_asgi.demo.app import create_demo_app
from s3auth_asgi.hosts import is_loopback, resolves_to_loopback

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


def resolves_to_loopback_alone(name: str) -> bool:
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in found)


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f.1", "2130706433", "127.0.0.2", "localhost.localdomain", "ip6-localhost"]
)
async def test_a_demo_on_another_spelling_of_loopback_is_on_loopback(
    tmp_path: Path, host: str
) -> None:
    """An IPv4 address in any form the resolver takes (`127.1`, `0x7f.1`: the demo
    listens on 127.0.0.1 for them), or a name that resolves to loopback alone, listens on
    this machine only: the guard is on, and the links printed, which name the host as
    given, are answered."""
    if not host[0].isdigit() and not resolves_to_loopback_alone(host):
        pytest.skip(f"{host} does not resolve to loopback alone here")
    app = create_demo_app(demo_service(tmp_path), outbox_key=OUTBOX_KEY, host=host)
    async with client_for(app, base_url="http://attacker.example:8000") as client:
        assert_problem(await client.get("/"), 421, "misdirected_request")
    async with client_for(app, base_url="http://127.0.0.1:8000") as client:
        given = {**with_key(), "Host": f"{host}:8000"}
        assert (await client.get("/demo/outbox", headers=given)).status_code == 200
        rebound = {**with_key(), "Host": f"{host}.attacker.example:8000"}
        assert_problem(await client.get("/", headers=rebound), 421, "misdirected_request")
    assert network_note(host) == ""


async def test_the_name_a_demo_on_loopback_listens_on_is_answered_and_no_other(
    tmp_path: Path,
) -> None:
    """A name found to resolve to loopback alone at the start (told here, so no lookup is
    needed) is a Host the guard answers, as the printed links name it; others are not."""
    host = "devbox.localdomain"
    app = create_demo_app(
        demo_service(tmp_path), outbox_key=OUTBOX_KEY, host=host, on_loopback=True
    )
    async with client_for(app, base_url="http://127.0.0.1:8000") as client:
        for given in (f"{host}:8000", host.upper(), "localhost:8000"):
            headers = {**with_key(), "Host": given}
            assert (await client.get("/demo/outbox", headers=headers)).status_code == 200
        for rebound in (f"{host}.attacker.example", f"{host}:8001", "attacker.example"):
            refused = await client.get("/", headers={"Host": rebound})
            assert_problem(refused, 421, "misdirected_request")
    assert network_note(host, on_loopback=True) == ""


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.1", True),
        ("0X7F.0.0.1", True),
        ("017700000001", True),
        ("[::1]", True),
        ("127.0.0.1 elsewhere", False),  # inet_aton takes it; no resolver is asked
        ("10.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("", False),
    ],
)
def test_loopback_in_the_resolvers_forms(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert resolves_to_loopback(host) is loopback
