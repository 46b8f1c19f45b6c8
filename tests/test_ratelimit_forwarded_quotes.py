"""RFC 7239 `Forwarded` values a proxy quotes: a comma or a semicolon inside a quoted
string (the Host a client sent, which RFC 3986 lets hold both) separates nothing, so what
the client wrote there never names the client."""

from __future__ import annotations

import pytest

from s3auth_asgi.ratelimit import ClientIPResolver, RateLimit, RateLimiter

PROXY = "10.0.0.1"
CLIENT = "203.0.113.9"
FORGED = "198.51.100.7"


def forwarded(value: str, peer: str = PROXY) -> dict[str, object]:
    return {
        "type": "http",
        "client": (peer, 4711),
        "headers": [(b"forwarded", value.encode("latin-1"))],
    }


RESOLVER = ClientIPResolver([PROXY], trust_x_forwarded_for=True, forwarded_header="forwarded")


@pytest.mark.parametrize(
    "element",
    [
        # The host after `for`, with a comma: naively split, its tail is an element of its own.
        f'for={CLIENT};host="app.example, for={FORGED}";proto=https',
        # The host before `for`, with a semicolon: naively split, its tail is a `for` first.
        f'proto=https;host="app.example;for={FORGED}";for={CLIENT}',
        f'host="a,for={FORGED};b";for="{CLIENT}:4711"',
        # Quoted-pairs: an escaped quote does not end the string.
        f'host="a\\", for={FORGED}";for={CLIENT}',
        f'for={CLIENT};host="a\\\\";by=_x',
    ],
)
def test_a_separator_inside_a_quoted_value_separates_nothing(element: str) -> None:
    assert RESOLVER.client_key(forwarded(element)) == f"ip:{CLIENT}"
    # Behind a client's own element, which is never read, and a trusted hop's element.
    chain = f'for="_{FORGED}, {element}, for={PROXY};host="x,y"'
    assert RESOLVER.client_key(forwarded(chain)) == f"ip:{CLIENT}"


def test_an_unbalanced_quote_stops_the_walk_at_the_trusted_hop() -> None:
    assert RESOLVER.client_key(forwarded(f'for="{CLIENT}')) == f"ip:{PROXY}"
    assert RESOLVER.client_key(forwarded(f'for={CLIENT};host="a')) == f"ip:{PROXY}"
    # The client's own unbalanced quote, left of the proxy's element, is never reached.
    assert RESOLVER.client_key(forwarded(f'for="x, for={CLIENT}')) == f"ip:{CLIENT}"


@pytest.mark.anyio
async def test_a_client_cannot_pick_its_key_through_the_host_a_proxy_quotes() -> None:
    """One client, a new forged address in its Host on every request: one budget."""
    limiter = RateLimiter(
        {"login": RateLimit(max_requests=3, window_seconds=60)},
        trusted_proxies=[PROXY],
        trust_x_forwarded_for=True,
        forwarded_header="forwarded",
    )
    refused = [
        (
            await limiter.is_rate_limited(
                forwarded(f'proto=https;host="h, for=198.51.100.{n}";for={CLIENT}'), "login"
            )
        )[0]
        for n in range(6)
    ]
    assert refused == [False] * 3 + [True] * 3
