"""A proxy on a unix socket: servers report no peer address for it, so `unix` in the trusted
proxies is what lets its forwarding header name the client."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from conftest import SECRET
from support import Clock, make_clocked_service
from test_app import PASSWORD, client_for, register

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import ClientIPResolver, RateLimiter
from s3auth_asgi.settings import S3AuthSettings

pytestmark = pytest.mark.anyio


def no_peer(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, object]:
    """A request as uvicorn and hypercorn give it on a unix socket."""
    return {"type": "http", "method": "GET", "path": "/", "headers": headers or [], "client": None}


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode())]


def test_a_trusted_unix_proxy_names_the_client() -> None:
    resolver = ClientIPResolver(["unix"], trust_x_forwarded_for=True)
    assert resolver.client_key(no_peer(xff("203.0.113.9"))) == "ip:203.0.113.9"
    assert resolver.client_keys(no_peer(xff("203.0.113.9"))) == ("203.0.113.9", "ip:203.0.113.9")
    assert resolver.client_ip(no_peer(xff("2001:db8::1"))) == "2001:db8::1"
    # Only the proxy's own entry is believed, as for a proxy with an address.
    assert resolver.client_key(no_peer(xff("192.0.2.1, 203.0.113.9"))) == "ip:203.0.113.9"
    # Nothing said, or nothing that is an address: still no client known.
    assert resolver.client_key(no_peer()) == "ip:unknown"
    assert resolver.client_key(no_peer(xff("nonsense"))) == "ip:unknown"
    # A proxy with an address is not trusted by `unix`.
    with_peer = {**no_peer(xff("203.0.113.9")), "client": ("10.0.0.1", 4000)}
    assert resolver.client_key(with_peer) == "ip:10.0.0.1"


def test_unix_trusted_along_with_addresses_vouches_through_them() -> None:
    resolver = ClientIPResolver("10.0.0.1, unix", trust_x_forwarded_for=True)
    assert resolver.client_key(no_peer(xff("203.0.113.9, 10.0.0.1"))) == "ip:203.0.113.9"
    assert [str(n) for n in resolver.trusted_proxies] == ["10.0.0.1/32"]


def test_without_unix_no_peer_reads_no_header_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver = ClientIPResolver(["127.0.0.1"], trust_x_forwarded_for=True)
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        for _ in range(3):
            assert resolver.client_key(no_peer(xff("203.0.113.9"))) == "ip:unknown"
    warnings = [r.getMessage() for r in caplog.records if "unix" in r.getMessage()]
    assert len(warnings) == 1
    assert "S3AUTH_TRUSTED_PROXIES" in warnings[0]
    # Not reading forwarding headers at all, no peer is no news.
    caplog.clear()
    quiet = ClientIPResolver()
    assert quiet.client_key(no_peer(xff("203.0.113.9"))) == "ip:unknown"
    assert not caplog.records


def test_unix_is_spelled_exactly_and_counts_as_a_proxy() -> None:
    for typo in ("unix:", "unix:/run/proxy.sock", "uds", "unixx"):
        with pytest.raises(ConfigurationError, match=rf"S3AUTH_TRUSTED_PROXIES.*{typo!r}.*unix"):
            ClientIPResolver([typo])
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_TRUSTED_PROXIES": "unix",
        "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
    }
    resolver = RateLimiter.from_settings(S3AuthSettings.from_env(env)).client_resolver
    assert resolver.client_key(no_peer(xff("203.0.113.9"))) == "ip:203.0.113.9"
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUSTED_PROXIES"):
        S3AuthSettings.from_env({**env, "S3AUTH_TRUSTED_PROXIES": "unix:"})


def over_unix_socket(app: Any, peer: Any) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            scope = {**scope, "client": peer}
        await app(scope, receive, send)

    return wrapped


@pytest.mark.parametrize(
    "peer",
    [None, ("", None), ("/run/app.sock", None)],
    ids=["no-peer", "unnamed-path", "path"],
)
async def test_one_client_behind_a_unix_proxy_locks_out_only_itself(peer: Any) -> None:
    # uvicorn and hypercorn give such a peer as None, NGINX Unit as its path and no port.
    service = make_clocked_service(
        clock=Clock(),
        rate_limit_store="store",
        trusted_proxies=["unix"],
        trust_x_forwarded_for=True,
    )
    inner = create_auth_app(service)
    async with client_for(inner, peer=("192.0.2.1", 1)) as client:
        await register(client, "victim", prefix="")
    transport = httpx.ASGITransport(app=over_unix_socket(inner, peer))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answers = [
            (
                await client.post(
                    "/login",
                    data={"username": f"nobody{i}", "password": "Wrong123!"},
                    headers={"X-Forwarded-For": "198.51.100.66"},
                )
            ).status_code
            for i in range(21)
        ]
        assert answers[-1] == 429
        victim = await client.post(
            "/login",
            data={"username": "victim", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.200"},
        )
    assert victim.status_code in (200, 303)
