"""Peers as servers write them, against trusted proxies as operators write them: a proxy named
in the form a dual-stack socket reports it, and a unix-socket proxy reported the way the
ASGI spec allows (its path, no port) rather than as no peer at all."""

from __future__ import annotations

import logging

import pytest
from conftest import SECRET

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import ClientIPResolver, RateLimit, RateLimiter
from s3auth_asgi.settings import S3AuthSettings

pytestmark = pytest.mark.anyio

MAPPED_PROXY = "::ffff:10.0.0.1"
"""How a server listening on `::` (dual stack) reports the IPv4 proxy 10.0.0.1."""


def scope(client: object, forwarded_for: str | None = None) -> dict[str, object]:
    headers = [] if forwarded_for is None else [(b"x-forwarded-for", forwarded_for.encode())]
    return {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": client}


@pytest.mark.parametrize(
    "listed",
    [MAPPED_PROXY, "::ffff:10.0.0.0/127", "::ffff:a00:1", "64:ff9b::10.0.0.1", "10.0.0.1"],
)
@pytest.mark.parametrize("peer", [MAPPED_PROXY, "10.0.0.1"])
def test_a_proxy_listed_as_an_ipv4_mapped_address_is_trusted(listed: str, peer: str) -> None:
    # Peers are counted with IPv4-mapped (and NAT64) addresses folded to IPv4, so the
    # proxies must be matched the same way: listed as the server reports them, the proxy
    # was never recognised, its header never read, and every client behind it shared the
    # proxy's own count.
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_TRUSTED_PROXIES": listed,
        "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
    }
    resolver = RateLimiter.from_settings(S3AuthSettings.from_env(env)).client_resolver
    assert resolver.client_key(scope((peer, 1), "203.0.113.9")) == "ip:203.0.113.9"
    assert resolver.client_ip(scope((peer, 1), f"198.51.100.7, {peer}")) == "198.51.100.7"
    # Still only the proxy: its neighbour's header is not read.
    assert resolver.client_key(scope(("10.0.0.2", 1), "203.0.113.9")) == "ip:10.0.0.2"


async def test_behind_a_mapped_proxy_one_client_exhausts_only_its_own_budget() -> None:
    limiter = RateLimiter(
        {"login": RateLimit(max_requests=2, window_seconds=60)},
        trusted_proxies=[MAPPED_PROXY],
        trust_x_forwarded_for=True,
    )
    attacker = scope((MAPPED_PROXY, 1), "198.51.100.66")
    answers = [(await limiter.is_rate_limited(attacker, "login"))[0] for _ in range(3)]
    assert answers == [False, False, True]
    limited, info = await limiter.is_rate_limited(scope((MAPPED_PROXY, 1), "203.0.113.9"), "login")
    assert (limited, info.key) == (False, "ip:203.0.113.9")


def test_the_whole_mapped_range_is_a_catch_all() -> None:
    # Every IPv4 peer of a dual-stack socket arrives in ::ffff:0:0/96.
    with pytest.raises(ConfigurationError, match=r"covers 0\.0\.0\.0/0.*S3AUTH_TRUST_ALL_PROXIES"):
        ClientIPResolver(["::ffff:0:0/96"], trust_x_forwarded_for=True)
    assert ClientIPResolver(["::ffff:0:0/96"], trust_x_forwarded_for=True, trust_all_proxies=True)


@pytest.mark.parametrize("path", ["", "/run/app.sock"])
def test_a_unix_peer_written_as_its_path_is_a_unix_proxy(path: str) -> None:
    # ASGI 2.2 lets a server report a unix-socket peer as [path, None] (NGINX Unit does)
    # instead of None: either way it is a peer with no address.
    trusting = ClientIPResolver(["unix"], trust_x_forwarded_for=True)
    assert trusting.client_key(scope((path, None), "203.0.113.9")) == "ip:203.0.113.9"
    assert trusting.client_keys(scope([path, None], "203.0.113.9")) == (
        "203.0.113.9",
        "ip:203.0.113.9",
    )
    assert trusting.client_ip(scope((path, None), "192.0.2.1, 203.0.113.9")) == "203.0.113.9"
    # Not trusted, or nothing said: no client address, as for a peer of None.
    assert ClientIPResolver().client_key(scope((path, None), "203.0.113.9")) == "ip:unknown"
    assert ClientIPResolver().client_ip(scope((path, None))) is None
    assert trusting.client_key(scope((path, None))) == "ip:unknown"


def test_an_untrusted_unix_peer_written_as_its_path_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver = ClientIPResolver(["127.0.0.1"], trust_x_forwarded_for=True)
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        for _ in range(3):
            assert resolver.client_key(scope(("", None), "203.0.113.9")) == "ip:unknown"
    assert len([r for r in caplog.records if "unix" in r.getMessage()]) == 1


def test_a_named_peer_with_a_port_is_still_a_peer_of_its_own() -> None:
    # A test client's name is no unix socket: it keeps a count of its own.
    resolver = ClientIPResolver(["unix"], trust_x_forwarded_for=True)
    assert resolver.client_key(scope(("testclient", 50000), "203.0.113.9")) == "peer:testclient"
