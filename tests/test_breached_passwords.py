"""New passwords looked up in a Pwned Passwords range API (S3AUTH_BREACHED_PASSWORDS_URL),
here a raw HTTP server on 127.0.0.1 that answers from a few known passwords, padded with
lines of count 0, and keeps every request it was sent. A breached password is refused
(422 `password_breached`) wherever a new password is set; only the 5 hex digits of its
SHA-1 prefix are sent, and nothing is asked for a request that is refused anyway. A service
that does not answer lets the password through (logged) or, set to fail closed, refuses it
with 503; at most a few lookups run at once."""

from __future__ import annotations

import hashlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_service
from test_app import PASSWORD, assert_problem, bearer, checked_client, login, register
from test_cli import Run
from test_keys_remote import RawHttpServer, jwks_server, ok

from s3auth_asgi import (
    ConfigurationError,
    InvalidCredentialsError,
    S3AuthService,
    S3AuthSettings,
    User,
)
from s3auth_asgi.breached_passwords import (
    MAX_LOOKUPS,
    BreachCheckUnavailableError,
    BreachedPasswordError,
    BreachedPasswords,
)
from s3auth_asgi.problems import STORE_RETRY_AFTER_SECONDS
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
_ = jwks_server  # a fixture

BREACHED = "Summer2024!"
RARE = "Autumn2024!"
PADDING = "Winter2024!"
"""Listed as padding only: a line of count 0."""
FRESH = "Unlisted-Passw0rd-7"
SEEN = {BREACHED: 3861, RARE: 3, PADDING: 0}


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()  # noqa: S324 - the API's


def range_answer(prefix: str) -> bytes:
    """What the API answers for `prefix`: the known passwords under it and 20 padding lines."""
    lines = [f"{sha1(p)[5:]}:{n}" for p, n in SEEN.items() if sha1(p).startswith(prefix)]
    lines += [f"{secrets.token_hex(18)[:35].upper()}:0" for _ in range(20)]
    return "\r\n".join(lines).encode()


def ranges(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
    path = request.split(b" ", 2)[1].decode()
    connection.sendall(ok(range_answer(path.rsplit("/", 1)[1]), "Content-Type: text/plain"))


def hanging(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
    server.closed.wait(5)


def base(server: RawHttpServer) -> str:
    return server.url.rsplit("/", 1)[0] + "/pwned"


def service_for(server: RawHttpServer, **settings: Any) -> S3AuthService:
    return make_service(breached_passwords_url=base(server), **settings)


def sent(server: RawHttpServer) -> list[tuple[str, dict[str, str]]]:
    """Each request the server was sent: its request line and its headers."""
    found = []
    for request in server.requests:
        line, *fields = request.decode().split("\r\n\r\n")[0].split("\r\n")
        found.append((line, {n: v.strip() for n, _, v in (f.partition(":") for f in fields)}))
    return found


async def alice(service: S3AuthService) -> User:
    user = await service.create_user("alice", "alice@example.com", FRESH)
    service.store.reset_counts()
    return user


# What is sent, and what is refused --------------------------------------------------------


async def test_a_breached_registration_is_refused_and_only_the_prefix_is_sent(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(ranges)
    service = service_for(server)
    async with checked_client(service) as client:
        answer = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": BREACHED},
        )
    body = assert_problem(answer, 422, "password_breached")
    assert body["errors"] == [BreachedPasswordError.title]
    assert sum(service.store.requests.values()) == 0
    [(line, headers)] = sent(server)
    assert line == f"GET /pwned/range/{sha1(BREACHED)[:5]} HTTP/1.1"
    assert headers["Add-Padding"] == "true"
    assert set(headers) == {"Accept-Encoding", "Host", "User-Agent", "Connection", "Add-Padding"}
    request = server.requests[0].decode().lower()
    for secret in (BREACHED, sha1(BREACHED), sha1(BREACHED)[5:], sha1(BREACHED)[:6]):
        assert secret.lower() not in request


async def test_a_password_listed_as_padding_or_not_at_all_is_taken(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(ranges)
    service = service_for(server)
    await service.create_user("alice", "alice@example.com", PADDING)
    await service.create_user("bob", "bob@example.com", FRESH)
    assert await service.authenticate_user("alice", PADDING) is not None
    assert [line for line, _ in sent(server)] == [
        f"GET /pwned/range/{sha1(p)[:5]} HTTP/1.1" for p in (PADDING, FRESH)
    ]


@pytest.mark.parametrize(("threshold", "refused"), [(3, True), (4, False)])
async def test_the_threshold_is_the_least_count_refused(
    jwks_server: Callable[..., RawHttpServer], threshold: int, refused: bool
) -> None:
    service = service_for(jwks_server(ranges), breached_passwords_threshold=threshold)
    if refused:
        with pytest.raises(BreachedPasswordError):
            await service.create_user("alice", "alice@example.com", RARE)
    else:
        await service.create_user("alice", "alice@example.com", RARE)


async def test_every_operation_that_sets_a_password_refuses_a_breached_one(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(ranges)
    service = service_for(server)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with checked_client(service) as client:
        user = await register(client, "alice")
        me = bearer(await login(client, "alice"))
        admin = bearer(await login(client, "root"))
        record = await service.store.get(keys.user(user["id"]), User)
        assert record is not None
        token = await service.account_tokens.issue("password-reset", record.value)
        service.store.reset_counts()
        new = {"new_password": BREACHED}
        change = {**new, "current_password": PASSWORD}
        answers = [
            await client.post("/auth/password", json=change, headers=me),
            await client.post("/auth/password/reset", json={**new, "token": token}),
            await client.post(f"/auth/admin/users/{user['id']}/password", json=new, headers=admin),
            await client.post(
                "/auth/admin/users",
                json={"username": "bob", "email": "bob@example.com", "password": BREACHED},
                headers=admin,
            ),
        ]
        for answer in answers:
            assert_problem(answer, 422, "password_breached")
        after = await service.store.get(keys.user(user["id"]), User)
        assert after is not None and after.etag == record.etag
        assert await service.get_user_by_username("bob") is None
        # The refused reset left its link unspent.
        reset = await client.post(
            "/auth/password/reset", json={"new_password": FRESH, "token": token}
        )
        assert reset.status_code == 204, reset.text
    assert len(sent(server)) == 2 + 4 + 1  # root's and alice's registrations, the four, the reset


def test_the_cli_refuses_a_breached_password(
    jwks_server: Callable[..., RawHttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = jwks_server(ranges)
    for name, value in (
        ("SECRET_KEY", SECRET), ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_TIME_COST", "1"), ("BREACHED_PASSWORDS_URL", base(server)),
    ):  # fmt: skip
        monkeypatch.setenv(f"S3AUTH_{name}", value)
    store = ObjectStore.from_url("memory://")

    def run(*argv: str, password: str) -> Run:
        return Run(*argv, "--password-stdin", stdin=f"{password}\n", open_store=lambda url: store)

    created = run("user", "create", "alice", "--email", "alice@example.com", password=BREACHED)
    assert created.code == 2 and BreachedPasswordError.title in created.err, created
    assert sum(store.requests.values()) == 0
    assert run("user", "create", "alice", "--email", "alice@example.com", password=FRESH).code == 0
    store.reset_counts()
    refused = run("user", "set-password", "alice", password=BREACHED)
    assert refused.code == 2 and BreachedPasswordError.title in refused.err, refused
    assert "put" not in store.requests and "delete" not in store.requests
    assert len(server.requests) == 3


# Nothing is asked for a request refused anyway ----------------------------------------------


async def test_no_lookup_for_a_password_the_policy_or_a_limit_refuses(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(ranges)
    service = service_for(server)
    body = {"username": "alice", "email": "alice@example.com"}
    async with checked_client(service, rate_limit=True) as client:
        weak = await client.post("/auth/register", json={**body, "password": "short"})
        assert_problem(weak, 422, "weak_password")
        assert server.requests == []
        answers = [
            await client.post("/auth/register", json={**body, "password": BREACHED})
            for _ in range(4)
        ]
    # `register_account`: 3 registrations of a name from an address in 10 minutes, the weak
    # one among them.
    assert [a.status_code for a in answers] == [422, 422, 429, 429]
    assert len(server.requests) == 2


async def test_no_lookup_for_a_change_with_a_wrong_current_password(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(ranges)
    service = service_for(server)
    user = await alice(service)
    server.requests.clear()
    with pytest.raises(InvalidCredentialsError):
        await service.change_password(user.id, "Wrong-Passw0rd", BREACHED)
    assert server.requests == []
    with pytest.raises(BreachedPasswordError):
        await service.change_password(user.id, FRESH, BREACHED)
    assert len(server.requests) == 1


# A service that does not answer ---------------------------------------------------------------

TIMEOUT = 0.3


def cut_short(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
    """A range answer whose connection closes before the end its Content-Length announced:
    its last line, the password's, never arrives, and the lines before it are whole."""
    prefix = request.split(b" ", 2)[1].decode().rsplit("/", 1)[1]
    listed, _, padding = range_answer(prefix).partition(b"\r\n")
    connection.sendall(ok(padding + b"\r\n" + listed)[: -len(listed) - 2])


FAILURES: dict[str, Callable[[RawHttpServer, socket.socket, bytes], None]] = {
    "no answer": hanging,
    "a 500": lambda server, connection, request: connection.sendall(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
    ),
    "not a range answer": lambda server, connection, request: connection.sendall(
        ok(b"<html>maintenance</html>")
    ),
    "an answer cut short": cut_short,
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_without_an_answer_the_password_is_taken_and_a_warning_logged(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    server = jwks_server(FAILURES[failure])
    service = service_for(server, breached_passwords_timeout_seconds=TIMEOUT)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        await service.create_user("alice", "alice@example.com", BREACHED)
    assert time.monotonic() - began < TIMEOUT + 0.5
    assert await service.authenticate_user("alice", BREACHED) is not None
    assert service.breached_passwords.unchecked == 1
    [record] = [r for r in caplog.records if "breached" in r.getMessage()]
    assert record.levelno == logging.WARNING and "taken unchecked" in record.getMessage()
    logged = caplog.text.lower()
    for secret in (BREACHED, sha1(BREACHED)[:5], sha1(BREACHED)[5:]):
        assert secret.lower() not in logged


async def test_failing_closed_refuses_with_503_and_writes_nothing(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = jwks_server(hanging)
    service = service_for(
        server, breached_passwords_timeout_seconds=TIMEOUT, breached_passwords_fail_closed=True
    )
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        async with checked_client(service) as client:
            answer = await client.post(
                "/auth/register",
                json={"username": "alice", "email": "alice@example.com", "password": FRESH},
            )
    assert_problem(answer, 503, "password_check_unavailable")
    assert answer.headers["Retry-After"] == str(STORE_RETRY_AFTER_SECONDS)
    assert sum(service.store.requests.values()) == 0
    assert "refused" in caplog.text and FRESH not in caplog.text


async def test_a_flood_holds_at_most_a_few_lookups_each_within_its_deadline(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    server = jwks_server(hanging)
    lookups = BreachedPasswords(base(server), timeout_seconds=TIMEOUT, fail_closed=True)
    refused: list[float] = []

    async def check(n: int) -> None:
        with pytest.raises(BreachCheckUnavailableError):
            await lookups.check(f"Passw0rd-{n}")
        refused.append(time.monotonic() - began)

    began = time.monotonic()
    async with anyio.create_task_group() as group:
        for n in range(3 * MAX_LOOKUPS):
            group.start_soon(check, n)
    assert len(refused) == 3 * MAX_LOOKUPS and max(refused) < TIMEOUT + 0.5, refused
    assert len(server.requests) == lookups.lookups == MAX_LOOKUPS
    assert lookups.unchecked == 3 * MAX_LOOKUPS


# Settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://passwords.example", "https://user:pw@passwords.example", "https://p.example?k=1",
     "https://p.example#x", "https://", "passwords.example"],
)  # fmt: skip
def test_the_url_is_an_http_base_without_credentials(url: str) -> None:
    with pytest.raises(ConfigurationError, match="S3AUTH_BREACHED_PASSWORDS_URL"):
        S3AuthSettings(secret_key=SECRET, breached_passwords_url=url)


def test_off_by_default() -> None:
    assert not make_service().breached_passwords.enabled
