"""Over which transport a JwksVerifier reads the JWKS: TLS, unless the URL names this
machine (`localhost`, a loopback address) or the operator opts in to plain http. Whoever is
on the path of a plain http read can put their own keys in the answer and forge every
token. Addresses of TEST-NET-1 (192.0.2.0/24, RFC 5737) stand for a host off this machine:
no test reaches one; a connection to one is recorded and refused on the spot (`connects`),
so a test sees whether a read went there, without waiting for a timeout."""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_keys_remote import JWKS, RawHttpServer, jwks_server, ok, sending

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.keys.remote import JwksVerifier, KeysUnavailableError

pytestmark = pytest.mark.anyio
__all__ = ["jwks_server"]  # the fixture, used here by name

TEST_NET = ipaddress.ip_network("192.0.2.0/24")
_recording: list[list[tuple[str, int]]] = []


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _recording:
        return
    address = args[1]
    if isinstance(address, tuple) and isinstance(address[0], str):
        _recording[-1].append((address[0], address[1]))
        try:
            off_host = ipaddress.ip_address(address[0]) in TEST_NET
        except ValueError:
            off_host = False
        if off_host:
            raise ConnectionRefusedError("a TEST-NET-1 address is never reached from the tests")


sys.addaudithook(_on_audit)


@pytest.fixture
def connects() -> Iterator[list[tuple[str, int]]]:
    """The (address, port) of every connection attempted while the test runs."""
    made: list[tuple[str, int]] = []
    _recording.append(made)
    yield made
    _recording.remove(made)


def plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1/jwks.json",
        "http://auth.example.com/auth/.well-known/jwks.json",
        "http://localhost.example.com/jwks.json",
        "http://127.0.0.1.nip.io/jwks.json",
        "http://reader:hunter2pass@192.0.2.1:8080/jwks.json?sig=deadbeef",
    ],
)
def test_plain_http_off_this_machine_is_refused_when_the_verifier_is_made(
    url: str, connects: list[tuple[str, int]]
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        JwksVerifier(url)
    said = str(refused.value)
    assert "https://" in said, said
    assert "allow_plain_http=True" in said, said
    for secret in ("hunter2pass", "reader", "deadbeef", "jwks.json"):
        assert secret not in said, (secret, said)
    assert connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/jwks.json",
        "http://LOCALHOST/jwks.json",
        "http://127.0.0.2/jwks.json",
        "http://[::1]:9/jwks.json",
        "https://192.0.2.1/jwks.json",
    ],
)
def test_tls_and_this_machine_need_no_opt_in(url: str) -> None:
    JwksVerifier(url)


async def test_plain_http_on_loopback_reads_the_keys_without_a_warning(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = jwks_server(sending(ok(JWKS)))
    verifier = JwksVerifier(server.url, timeout_seconds=2)
    await verifier.load()
    assert (verifier.fetches, len(server.requests)) == (1, 1)
    assert plain_http_warnings(caplog) == []


async def test_the_opt_in_reads_over_plain_http_and_warns_once_naming_the_host(
    connects: list[tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi.keys")
    url = "http://192.0.2.1:9/jwks.json?sig=deadbeef"
    verifier = JwksVerifier(url, allow_plain_http=True, timeout_seconds=2)
    assert plain_http_warnings(caplog) == []  # at the first read, not when made
    for _ in range(2):
        with pytest.raises(KeysUnavailableError):
            await verifier.load()
    assert connects == [("192.0.2.1", 9)] * 2
    warned = plain_http_warnings(caplog)
    assert len(warned) == 1, warned
    assert "192.0.2.1" in warned[0], warned
    assert "deadbeef" not in warned[0] and "jwks.json" not in warned[0], warned


def redirecting(to: str) -> Callable[..., None]:
    return sending(f"HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n".encode())


async def test_a_redirect_to_plain_http_off_this_machine_needs_the_opt_in(
    jwks_server: Callable[..., RawHttpServer],
    connects: list[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi.keys")
    server = jwks_server(redirecting("http://192.0.2.1:9/jwks.json?sig=deadbeef"))
    with pytest.raises(KeysUnavailableError):
        await JwksVerifier(server.url, timeout_seconds=2).load()
    assert [address for address, _ in connects] == ["127.0.0.1"]
    failed = [r.getMessage() for r in caplog.records if "reading the JWKS failed" in r.getMessage()]
    assert len(failed) == 1 and "plain http" in failed[0], failed
    assert "deadbeef" not in failed[0], failed

    connects.clear()
    with pytest.raises(KeysUnavailableError):
        await JwksVerifier(server.url, allow_plain_http=True, timeout_seconds=2).load()
    assert [address for address, _ in connects] == ["127.0.0.1", "192.0.2.1"]


async def test_a_redirect_to_plain_http_on_this_machine_is_followed(
    jwks_server: Callable[..., RawHttpServer], connects: list[tuple[str, int]]
) -> None:
    keys = jwks_server(sending(ok(JWKS)))
    server = jwks_server(redirecting(keys.url.replace("127.0.0.1", "localhost")))
    verifier = JwksVerifier(server.url, timeout_seconds=2)
    await verifier.load()
    assert (len(server.requests), len(keys.requests)) == (1, 1)
    assert {address for address, _ in connects} <= {"127.0.0.1", "::1"}
