"""IPv6 addresses that carry their client's own IPv4 address (6to4, Teredo) are counted as
that IPv4 address: by their /64 one IPv4 holder would have thousands of budgets (6to4) or
every client of one Teredo server would share one (Teredo)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.ratelimit import ClientIPResolver, RateLimit, RateLimiter, address_text

pytestmark = pytest.mark.anyio

CLIENT = "203.0.113.9"
SIX_TO_FOUR = "2002:cb00:7109"
"""The /48 that the holder of 203.0.113.9 owns by 6to4 (RFC 3056)."""
TEREDO = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
"""RFC 4380's kind of example: server 65.54.227.120, client 192.0.2.45, port 40000."""
PROXY = "10.0.0.1"


def scope(peer: str, forwarded_for: str | None = None) -> dict[str, object]:
    headers = [] if forwarded_for is None else [(b"x-forwarded-for", forwarded_for.encode())]
    return {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1)}


@pytest.mark.parametrize("prefix", [48, 64, 128])
def test_a_6to4_client_is_its_ipv4_address_in_every_subnet_of_its_48(prefix: int) -> None:
    resolver = ClientIPResolver(ipv6_prefix_length=prefix)
    ipv4 = resolver.client_keys(scope(CLIENT))
    for peer in (f"{SIX_TO_FOUR}::1", f"{SIX_TO_FOUR}:1::1", f"{SIX_TO_FOUR}:ffff:1:2:3:4"):
        assert resolver.client_keys(scope(peer)) == ipv4 == (CLIENT, f"ip:{CLIENT}")
        # Only the key: the address the client came from is still written as it was.
        assert resolver.client_ip(scope(peer)) == peer
    assert resolver.client_key(scope("2002:cb00:710a::1")) == "ip:203.0.113.10"


def test_a_teredo_client_is_its_own_ipv4_address_not_its_servers_64() -> None:
    resolver = ClientIPResolver()
    assert resolver.client_keys(scope(TEREDO)) == ("192.0.2.45", "ip:192.0.2.45")
    assert resolver.client_ip(scope(TEREDO)) == TEREDO
    # Another port and flags of the same client behind its NAT: the same client.
    assert resolver.client_key(scope("2001:0:4136:e378:0:1234:3fff:fdd2")) == "ip:192.0.2.45"
    # Another client of the same Teredo server, the same /64: a client of its own.
    assert resolver.client_key(scope("2001:0:4136:e378:8000:63bf:3fff:fdd1")) == "ip:192.0.2.46"


def test_neighbours_of_the_prefixes_are_grouped_as_any_ipv6() -> None:
    resolver = ClientIPResolver()
    assert resolver.client_key(scope("2001:1:4136:e378::1")) == "ip:2001:1:4136:e378::/64"
    assert resolver.client_key(scope("2001:db8::1")) == "ip:2001:db8::/64"
    assert resolver.client_key(scope("2003:cb00:7109::1")) == "ip:2003:cb00:7109::/64"


def test_written_with_a_port_behind_a_proxy_the_full_parse_gives_the_same_keys() -> None:
    resolver = ClientIPResolver([PROXY], trust_x_forwarded_for=True)
    assert resolver.client_key(scope(PROXY, f"[{SIX_TO_FOUR}:7::1]:443")) == f"ip:{CLIENT}"
    assert resolver.client_key(scope(PROXY, f"[{TEREDO}]:443")) == "ip:192.0.2.45"
    assert resolver.client_ip(scope(PROXY, f"[{TEREDO}]:443")) == TEREDO


def test_trusted_proxies_are_matched_against_the_real_ipv6_address() -> None:
    # A proxy listed by its IPv4 address: a 6to4 or Teredo peer embedding it is no proxy of
    # ours, its header is not read (it is counted as that address all the same).
    by_ipv4 = ClientIPResolver([CLIENT, "192.0.2.45"], trust_x_forwarded_for=True)
    assert by_ipv4.client_key(scope(f"{SIX_TO_FOUR}::1", "198.51.100.7")) == f"ip:{CLIENT}"
    assert by_ipv4.client_key(scope(TEREDO, "198.51.100.7")) == "ip:192.0.2.45"
    # A proxy listed by its 6to4 address is one.
    by_ipv6 = ClientIPResolver([f"{SIX_TO_FOUR}::/48"], trust_x_forwarded_for=True)
    assert by_ipv6.client_key(scope(f"{SIX_TO_FOUR}::1", "198.51.100.7")) == "ip:198.51.100.7"


async def test_one_ipv4_holder_has_one_budget_however_it_arrives() -> None:
    limiter = RateLimiter(
        {"login": RateLimit(max_requests=3, window_seconds=60)},
        trusted_proxies=[PROXY],
        trust_x_forwarded_for=True,
    )
    arrivals = [
        scope(f"{SIX_TO_FOUR}:1::1"),
        scope(f"{SIX_TO_FOUR}:2::1"),
        scope(CLIENT),
        scope(PROXY, f"[{SIX_TO_FOUR}:3::1]:443"),
    ]
    answers = [await limiter.is_rate_limited(arrival, "login") for arrival in arrivals]
    assert [refused for refused, _ in answers] == [False, False, False, True]
    assert {info.key for _, info in answers} == {f"ip:{CLIENT}"}


@settings(max_examples=100, deadline=None)
@given(st.ip_addresses(v=6))
def test_the_embedded_address_is_what_ipaddress_reads(address: ipaddress.IPv6Address) -> None:
    teredo = address.teredo
    expected = teredo[1] if teredo else address.sixtofour
    found = address_text.embedded_client_ipv4(int(address))
    assert found == (None if expected is None else int(expected))
