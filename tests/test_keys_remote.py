"""JwksVerifier against a JWKS server that breaks HTTP on purpose: a raw socket server on
127.0.0.1 writes each answer byte for byte. Whatever goes wrong in a read (transport,
protocol, parse) is a failed read: 503 `keys_unavailable` while there is no copy of the
keys, never an exception out of the middleware. A read ends at one deadline however slowly
the server answers, and the ETag of a refused document is never sent back."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import bearer, call_http, http_scope, ok_app

from s3auth_asgi import BearerTokenMiddleware, S3AuthSettings
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.material import private_jwk
from s3auth_asgi.keys.remote import JwksVerifier, KeysUnavailableError
from s3auth_asgi.tokens import TokenCodec

pytestmark = pytest.mark.anyio

KEY = generate_key("EdDSA")
KEYS = KeySet([KeyEntry("k1", "EdDSA", KEY)])
JWKS = json.dumps(KEYS.jwks(0)).encode()


Answer = Callable[["RawHttpServer", socket.socket, bytes], None]


class RawHttpServer:
    """Answers each request on 127.0.0.1 with whatever `answer` writes to the socket;
    `first`: at once, without reading a request (a TLS client waits for the server's
    handshake)."""

    def __init__(self, answer: Answer, *, first: bool = False) -> None:
        self.answer = answer
        self.first = first
        self.requests: list[bytes] = []
        self.dropped: list[float] = []
        """When the client went away while the answer was being written (monotonic)."""
        self.closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/jwks.json"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            while not self.first and b"\r\n\r\n" not in request:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            try:
                self.answer(self, connection, request)
            except OSError:
                self.dropped.append(time.monotonic())

    def if_none_match(self) -> list[str | None]:
        """The If-None-Match header of each request, in order."""
        found: list[str | None] = []
        for request in self.requests:
            lines = request.decode().split("\r\n")
            values = [v for n, _, v in (x.partition(":") for x in lines) if n == "If-None-Match"]
            found.append(values[0].strip() if values else None)
        return found

    def close(self) -> None:
        self.closed.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def jwks_server() -> Iterator[Callable[..., RawHttpServer]]:
    servers: list[RawHttpServer] = []

    def start(answer: Answer, *, first: bool = False) -> RawHttpServer:
        servers.append(RawHttpServer(answer, first=first))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def sending(response: bytes) -> Answer:
    def answer(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
        connection.sendall(response)

    return answer


def ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in (*headers, f"Content-Length: {len(body)}"))
    return f"HTTP/1.1 200 OK\r\n{head}\r\n".encode() + body


def with_etags(served: dict[str, Any]) -> Answer:
    """Serves `served["document"]` with `served["etag"]`, 304 to a request naming that ETag;
    change either between requests to serve another."""

    def answer(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
        if server.if_none_match()[-1] == served["etag"]:
            connection.sendall(
                f"HTTP/1.1 304 Not Modified\r\nETag: {served['etag']}\r\n\r\n".encode()
            )
            return
        connection.sendall(ok(served["document"], f"ETag: {served['etag']}"))

    return answer


def token() -> str:
    settings = S3AuthSettings(secret_key="Zq7#vL2pXw9!mRt4Kd8@Hs3^Nb6&Yc1*", algorithm="EdDSA")
    issued, _ = TokenCodec(settings, keys=KEYS).issue_access_token(
        user_id="u", username="u", session_id="s", is_admin=False, scopes=[]
    )
    return issued


# A failed read is a 503 ------------------------------------------------------------------

BROKEN_ANSWERS = {
    "a 404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "a bad status line": b"HTTP/1.1 2OO OK\r\n\r\n{}",
    "101 headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n{}",
    "a broken chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "no answer at all": b"",
    "a short body": ok(JWKS)[:-20],
    "deeply nested JSON": ok(b"[" * 20000 + b"]" * 20000),
    "a body over the cap": ok(b" " * 65537),
    "not a JWKS": ok(b'{"keys": 5}'),
}


@pytest.mark.parametrize("answer", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
async def test_any_failed_read_is_keys_unavailable_never_an_exception(
    jwks_server: Callable[..., RawHttpServer], answer: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = jwks_server(sending(answer))
    with pytest.raises(KeysUnavailableError):
        await JwksVerifier(server.url, timeout_seconds=2).load()

    verifier = JwksVerifier(server.url, timeout_seconds=2)
    app = BearerTokenMiddleware(ok_app, verifier)
    answers = [await call_http(app, http_scope(headers=bearer(token()))) for _ in range(2)]
    assert [(a.status, a.json()["code"]) for a in answers] == [(503, "keys_unavailable")] * 2
    # The second request shares the first one's read: one fetch each verifier.
    assert (verifier.fetches, len(server.requests)) == (1, 2)
    failures = [r for r in caplog.records if r.getMessage().startswith("reading the JWKS failed")]
    assert len(failures) == 2


async def test_a_failed_read_logs_no_credentials_of_the_url_it_quotes(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The transport's message quotes what failed: a redirect's target whole, with its
    user info and signed query; or a part of the verifier's own URL, its password in a
    complaint about the port."""
    moved = b"HTTP/1.1 302 Found\r\nLocation: s3://AKIDEXAMPLE:wJalrXUtn@bucket/jwks.json"
    server = jwks_server(sending(moved + b"?X-Amz-Signature=f00dcafe\r\nContent-Length: 0\r\n\r\n"))
    own = "http://reader:hunter2pass@127.0.0.1/jwks.json?sig=deadbeef"
    caplog.set_level(logging.WARNING, "s3auth_asgi.keys")
    for url in (server.url, own):
        with pytest.raises(KeysUnavailableError):
            await JwksVerifier(url, timeout_seconds=2).load()
    said = [r.getMessage() for r in caplog.records if "reading the JWKS failed" in r.getMessage()]
    assert [m.split(":")[1] for m in said] == [" HTTPError", " InvalidURL"], said
    assert "s3://…@bucket/jwks.json" in said[0], said
    for secret in ("wJalrXUtn", "AKIDEXAMPLE", "f00dcafe", "hunter2pass", "deadbeef"):
        assert not any(secret in m for m in said), (secret, said)


# One deadline for a whole read -------------------------------------------------------------

TIMEOUT = 1.0
SLOW = ok(JWKS, "Content-Type: application/json")
HEAD = SLOW.index(b"\r\n\r\n") + 4
# The header of a TLS handshake record of 16 KiB, which the client reads to its end.
HANDSHAKE = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000


def dripping(response: bytes, steady: int) -> Answer:
    """Sends the first `steady` bytes of `response` at once, then one byte every 0.2 s
    (each socket read waits far less than the timeout), for 5 timeouts at most."""

    def answer(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
        connection.sendall(response[:steady])
        for byte in response[steady : steady + int(5 * TIMEOUT / 0.2)]:
            if server.closed.wait(0.2):
                return
            connection.sendall(bytes([byte]))

    return answer


@pytest.mark.parametrize(
    ("scheme", "response", "steady"),
    [("http", SLOW, 0), ("http", SLOW, HEAD), ("https", HANDSHAKE, 0)],
    ids=["status line and headers", "body", "TLS handshake"],
)
async def test_a_read_ends_at_one_deadline_and_queued_callers_share_it(
    jwks_server: Callable[..., RawHttpServer], scheme: str, response: bytes, steady: int
) -> None:
    server = jwks_server(dripping(response, steady), first=scheme == "https")
    verifier = JwksVerifier(server.url.replace("http:", f"{scheme}:"), timeout_seconds=TIMEOUT)
    waited: list[float] = []

    async def unknown_kid() -> None:
        # What the middleware does for a token naming a key it lacks, while load() reads.
        await anyio.sleep(0.1)
        began = time.monotonic()
        assert await verifier.read_keys_again()  # no keys: verify again, and answer 503
        waited.append(time.monotonic() - began)

    async def load() -> None:
        with pytest.raises(KeysUnavailableError):
            await verifier.load()
        waited.insert(0, time.monotonic() - began)

    began = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(load)
        for _ in range(5):
            group.start_soon(unknown_kid)
    assert len(waited) == 6 and max(waited) < 2 * TIMEOUT, waited
    assert (verifier.fetches, len(server.requests)) == (1, 1)
    # The connection was closed at the deadline, not left to a thread reading on.
    deadline = time.monotonic() + 2 * TIMEOUT
    while not server.dropped and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert server.dropped and server.dropped[0] - began < 2 * TIMEOUT


# The ETag of a refused document -------------------------------------------------------------


async def test_the_etag_of_a_refused_jwks_is_not_sent_back(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    leaked = json.dumps({"keys": [{**private_jwk(KEY), "kid": "k2", "alg": "EdDSA"}]}).encode()
    served = {"document": JWKS, "etag": '"A"'}

    server = jwks_server(with_etags(served))
    now = [1000.0]
    verifier = JwksVerifier(
        server.url, clock=lambda: now[0], min_refresh_seconds=1, refresh_seconds=10
    )
    await verifier.load()
    served.update(document=leaked, etag='"B"')
    caplog.set_level(logging.WARNING, "s3auth_asgi.keys")
    for _ in range(2):
        now[0] += 2
        assert not await verifier.read_keys_again()
    # Each read fetched the refused document again, and said so; the copy is the first one.
    assert server.if_none_match() == [None, '"A"', '"A"']
    refusals = [r.getMessage() for r in caplog.records]
    assert refusals == ["reading the JWKS failed: UnusableKeyError: " + repr(
        "the JWKS holds secret key material: refusing it"
    )] * 2  # fmt: skip
    assert [e.kid for e in verifier.key_set().entries] == ["k1"]


async def test_after_an_idle_spell_the_first_token_waits_for_the_jwks(tmp_path: Path) -> None:
    """A copy twice `refresh_seconds` old is read before the token is verified: a key
    the JWKS dropped meanwhile verifies nothing, not even once."""
    source = tmp_path / "jwks.json"
    source.write_bytes(JWKS)
    now = [time.time()]
    verifier = JwksVerifier(source, clock=lambda: now[0], refresh_seconds=10, min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier)
    dropped = token()
    assert (await call_http(app, http_scope(headers=bearer(dropped)))).status == 200
    assert verifier.fetches == 1
    others = KeySet([KeyEntry("k2", "EdDSA", generate_key("EdDSA"))])
    source.write_text(json.dumps(others.jwks(0)))
    now[0] += 20  # no request meanwhile
    answer = await call_http(app, http_scope(headers=bearer(dropped)))
    assert answer.status == 401 and verifier.fetches == 2


# What a JWKS member says it is for ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key_ops", "verifies"),
    [
        (["sign"], False),
        (["encrypt", "wrapKey"], False),
        (["verify"], True),
        (["sign", "verify"], True),
    ],
)
async def test_a_public_key_verifies_only_where_its_key_ops_allow_verify(
    jwks_server: Callable[..., RawHttpServer], key_ops: list[str], verifies: bool
) -> None:
    """RFC 7517 §4.3: `key_ops` names what the key is for. A public key published for
    `sign` alone (which it cannot do) is no verification key, and is skipped as an
    encryption key is; the JWKS's other keys verify all the same."""
    other = KeySet([KeyEntry("k2", "EdDSA", generate_key("EdDSA"))]).jwks(0)["keys"]
    member = {**KEYS.jwks(0)["keys"][0], "key_ops": key_ops}
    server = jwks_server(sending(ok(json.dumps({"keys": [member, *other]}).encode())))
    app = BearerTokenMiddleware(ok_app, JwksVerifier(server.url, timeout_seconds=2))
    answer = await call_http(app, http_scope(headers=bearer(token())))
    assert answer.status == (200 if verifies else 401)
