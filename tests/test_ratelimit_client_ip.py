"""Client IP behind proxies: only trusted hops are believed, IPv6 counts by /64, and no
header content can make resolution fail."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from conftest import SECRET
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import ClientIPResolver, RateLimit, RateLimiter, address_text, client_ip
from s3auth_asgi.settings import S3AuthSettings

pytestmark = pytest.mark.anyio

PROXY = "10.0.0.1"
INNER_PROXY = "10.0.0.2"


def scope(peer: str | None, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": headers or [],
        "client": None if peer is None else (peer, 40000),
    }


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode("latin-1"))]


def is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


BEHIND_TWO_PROXIES = ClientIPResolver([PROXY, INNER_PROXY], trust_x_forwarded_for=True)


def test_nothing_is_trusted_by_default() -> None:
    resolver = ClientIPResolver()
    assert resolver.client_key(scope("198.51.100.7", xff("1.2.3.4"))) == "ip:198.51.100.7"
    assert resolver.client_key(scope(PROXY, xff("1.2.3.4"))) == f"ip:{PROXY}"


def test_proxies_whose_header_is_not_trusted_are_refused() -> None:
    """Listed without their header read, every client behind them would count as the proxy:
    one budget of each per-address limit for all of them."""
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_X_FORWARDED_FOR is not"):
        ClientIPResolver([PROXY], trust_x_forwarded_for=False)


def test_a_forwarded_header_that_would_never_be_read_is_refused_wherever_it_is_given() -> None:
    """`forwarded` named without the header trusted reads nothing: the operator believes the
    clients behind an RFC 7239 proxy are told apart, and all count as the proxy. Refused
    alike from the settings and from every constructor that takes the argument."""
    from s3auth_asgi.app import default_limiter

    plain = S3AuthSettings(secret_key=SECRET)
    behind = S3AuthSettings(secret_key=SECRET, trusted_proxies=[PROXY], trust_x_forwarded_for=True)
    refusals = [
        lambda: S3AuthSettings(secret_key=SECRET, forwarded_header="forwarded"),
        lambda: S3AuthSettings.from_env(
            {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_FORWARDED_HEADER": "forwarded"}
        ),
        lambda: ClientIPResolver(forwarded_header="forwarded"),
        lambda: ClientIPResolver([PROXY], forwarded_header="forwarded"),
        lambda: RateLimiter({}, forwarded_header="forwarded"),
        lambda: RateLimiter.from_settings(plain, forwarded_header="forwarded"),
        lambda: default_limiter(plain, forwarded_header="forwarded"),
    ]
    for refused in refusals:
        with pytest.raises(ConfigurationError) as info:
            refused()
        assert "S3AUTH_FORWARDED_HEADER" in str(info.value)
        assert "S3AUTH_TRUST_X_FORWARDED_FOR" in str(info.value)
    # Read where the header is trusted; the default is no choice, so it says nothing alone.
    for taken in (
        RateLimiter.from_settings(behind, forwarded_header="forwarded").client_resolver,
        default_limiter(behind, forwarded_header="forwarded").client_resolver,
        ClientIPResolver([PROXY], trust_x_forwarded_for=True, forwarded_header="forwarded"),
    ):
        request = scope(PROXY, [(b"forwarded", b"for=203.0.113.9")])
        assert taken.client_key(request) == "ip:203.0.113.9"
    assert ClientIPResolver(forwarded_header="x-forwarded-for").client_key(scope(PROXY)) == (
        f"ip:{PROXY}"
    )


def test_spoofed_header_from_an_untrusted_peer_changes_nothing() -> None:
    peer = "198.51.100.7"
    for header in ("1.2.3.4", f"1.2.3.4, {PROXY}", PROXY, "garbage"):
        assert BEHIND_TWO_PROXIES.client_key(scope(peer, xff(header))) == f"ip:{peer}"


def test_trusted_chain_of_two_proxies() -> None:
    # client → inner proxy (appends client) → outer proxy (appends inner) → app
    chain = scope(PROXY, xff(f"203.0.113.9, {INNER_PROXY}"))
    assert BEHIND_TWO_PROXIES.client_key(chain) == "ip:203.0.113.9"
    assert BEHIND_TWO_PROXIES.client_ip(chain) == "203.0.113.9"
    # Whatever the client wrote itself sits further left and is ignored.
    spoofed = scope(PROXY, xff(f"1.1.1.1, 8.8.8.8, 203.0.113.9, {INNER_PROXY}"))
    assert BEHIND_TWO_PROXIES.client_key(spoofed) == "ip:203.0.113.9"
    # Several header lines are one list, in order.
    split = scope(
        PROXY, [(b"x-forwarded-for", b"1.1.1.1, 203.0.113.9"), (b"x-forwarded-for", b"10.0.0.2")]
    )
    assert BEHIND_TWO_PROXIES.client_key(split) == "ip:203.0.113.9"


def test_trusted_proxies_may_be_networks() -> None:
    resolver = ClientIPResolver(["10.0.0.0/8", "fd00::/8"], trust_x_forwarded_for=True)
    assert resolver.client_key(scope("10.9.8.7", xff("203.0.113.9, 10.1.1.1"))) == (
        "ip:203.0.113.9"
    )
    assert resolver.client_key(scope("fd00::1", xff("203.0.113.9"))) == "ip:203.0.113.9"


def test_an_untrusted_peer_chain_stops_at_the_first_untrusted_hop() -> None:
    # The inner hop is not a proxy we know: it is the client, whatever it claims.
    resolver = ClientIPResolver([PROXY], trust_x_forwarded_for=True)
    assert resolver.client_key(scope(PROXY, xff(f"203.0.113.9, {INNER_PROXY}"))) == (
        f"ip:{INNER_PROXY}"
    )


def test_garbage_from_a_trusted_hop_stops_at_the_last_trusted_address() -> None:
    for header in ("not-an-ip", "", " , ", "1.2.3.4, nonsense", "999.1.1.1", "[::1"):
        key = BEHIND_TWO_PROXIES.client_key(scope(PROXY, xff(header)))
        assert key == f"ip:{PROXY}", header
    key = BEHIND_TWO_PROXIES.client_key(scope(PROXY, xff(f"nonsense, {INNER_PROXY}")))
    assert key == f"ip:{INNER_PROXY}"


def test_all_trusted_means_the_request_came_from_the_leftmost_proxy() -> None:
    assert BEHIND_TWO_PROXIES.client_key(scope(PROXY, xff(INNER_PROXY))) == f"ip:{INNER_PROXY}"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert BEHIND_TWO_PROXIES.client_key(scope(PROXY, xff("203.0.113.9:1234"))) == (
        "ip:203.0.113.9"
    )
    assert BEHIND_TWO_PROXIES.client_key(scope(PROXY, xff("[2001:db8::1]:443"))) == (
        "ip:2001:db8::/64"
    )
    assert ClientIPResolver().client_key(scope("::ffff:203.0.113.9")) == "ip:203.0.113.9"


def test_behind_nat64_each_ipv4_client_is_its_own() -> None:
    # Behind a NAT64 gateway every IPv4 client arrives in 64:ff9b::/96, one /64: grouped by
    # that, all of them would share one count.
    resolver = ClientIPResolver()
    assert resolver.client_key(scope("64:ff9b::cb00:7109")) == "ip:203.0.113.9"
    assert resolver.client_key(scope("64:ff9b::203.0.113.10")) == "ip:203.0.113.10"
    assert resolver.client_keys(scope("64:ff9b::cb00:7109")) == resolver.client_keys(
        scope("203.0.113.9")
    )
    assert resolver.client_ip(scope("64:ff9b::cb00:7109")) == "203.0.113.9"
    # Only the well-known prefix: another /96 is IPv6 as usual.
    assert resolver.client_key(scope("64:ff9c::cb00:7109")) == "ip:64:ff9c::/64"
    # And its IPv4 form is what trusted IPv4 networks are matched against.
    trusting = ClientIPResolver(["203.0.113.0/24"], trust_x_forwarded_for=True)
    assert trusting.client_key(scope("64:ff9b::cb00:7109", xff("198.51.100.7"))) == (
        "ip:198.51.100.7"
    )


def test_rfc7239_forwarded_header() -> None:
    resolver = ClientIPResolver(
        [PROXY, INNER_PROXY], trust_x_forwarded_for=True, forwarded_header="forwarded"
    )
    header = [
        (
            b"forwarded",
            b'for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2;by=x',
        )
    ]
    assert resolver.client_key(scope(PROXY, header)) == "ip:2001:db8:cafe::/64"
    assert resolver.client_ip(scope(PROXY, header)) == "2001:db8:cafe::17"
    # Obfuscated and "unknown" identifiers are not addresses: stop at the trusted hop.
    hidden = [(b"forwarded", b"for=_hidden, for=10.0.0.2")]
    assert resolver.client_key(scope(PROXY, hidden)) == f"ip:{INNER_PROXY}"
    # Only the configured header is read: an X-Forwarded-For passed through is ignored,
    no_forwarded = [(b"x-forwarded-for", b"203.0.113.9")]
    assert resolver.client_key(scope(PROXY, no_forwarded)) == f"ip:{PROXY}"
    # and in X-Forwarded-For mode a client's own Forwarded header is ignored.
    assert BEHIND_TWO_PROXIES.client_key(scope(PROXY, header)) == f"ip:{PROXY}"


def test_missing_or_odd_peers() -> None:
    resolver = ClientIPResolver()
    assert resolver.client_key(scope(None)) == "ip:unknown"
    assert resolver.client_key({"type": "http"}) == "ip:unknown"
    assert resolver.client_key(scope("testclient")) == "peer:testclient"
    assert resolver.client_ip(scope(None)) is None


async def test_ipv6_rotation_within_a_64_counts_as_one_client() -> None:
    limiter = RateLimiter(limits={"login": RateLimit(max_requests=5, window_seconds=60)})
    network = ipaddress.IPv6Network("2001:db8:aaaa:bbbb::/64")
    answers = [
        (await limiter.is_rate_limited(scope(str(network[i * 7919 + 1])), "login"))[0]
        for i in range(20)
    ]
    assert answers == [False] * 5 + [True] * 15
    # The neighbouring /64 is someone else.
    is_limited, info = await limiter.is_rate_limited(scope("2001:db8:aaaa:bbbc::1"), "login")
    assert not is_limited
    assert info.key == "ip:2001:db8:aaaa:bbbc::/64"


async def test_ipv6_prefix_length_is_configurable() -> None:
    limiter = RateLimiter(
        limits={"login": RateLimit(max_requests=1, window_seconds=60)}, ipv6_prefix_length=128
    )
    assert not (await limiter.is_rate_limited(scope("2001:db8::1"), "login"))[0]
    assert not (await limiter.is_rate_limited(scope("2001:db8::2"), "login"))[0]
    assert (await limiter.is_rate_limited(scope("2001:db8::2"), "login"))[0]


def test_trusted_proxies_as_one_comma_separated_string() -> None:
    resolver = ClientIPResolver("10.0.0.1, 10.0.0.2", trust_x_forwarded_for=True)
    assert [str(n) for n in resolver.trusted_proxies] == ["10.0.0.1/32", "10.0.0.2/32"]


def test_bad_trusted_proxies_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"S3AUTH_TRUSTED_PROXIES.*'10\.0\.0\.300'"):
        ClientIPResolver(["10.0.0.300"])
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUSTED_PROXIES is empty"):
        ClientIPResolver([], trust_x_forwarded_for=True)
    with pytest.raises(ConfigurationError, match="forwarded_header"):
        ClientIPResolver(forwarded_header="x-real-ip")  # type: ignore[arg-type]


def test_the_settings_give_the_header_and_the_prefix_and_arguments_win() -> None:
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_TRUSTED_PROXIES": PROXY,
        "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
        "S3AUTH_FORWARDED_HEADER": "forwarded",
        "S3AUTH_IPV6_PREFIX_LENGTH": "48",
    }
    configured = S3AuthSettings.from_env(env)
    request = scope(PROXY, [(b"forwarded", b'for="[2001:db8:1:2::3]"'), *xff("192.0.2.9")])
    limiter = RateLimiter.from_settings(configured)
    assert limiter.client_resolver.client_key(request) == "ip:2001:db8:1::/48"
    chosen = RateLimiter.from_settings(
        configured, forwarded_header="x-forwarded-for", ipv6_prefix_length=64
    )
    assert chosen.client_resolver.client_key(request) == "ip:192.0.2.9"
    direct = scope("2001:db8:1:2::3")
    assert chosen.client_resolver.client_key(direct) == "ip:2001:db8:1:2::/64"


@pytest.mark.parametrize("prefix", [0, 129, -64, True, 64.0, "64"])
def test_an_ipv6_prefix_that_is_no_prefix_length_is_refused_when_made(prefix: object) -> None:
    """A float or a bool would be taken and fail, or group oddly, at the first IPv6 client."""
    with pytest.raises(ConfigurationError) as info:
        ClientIPResolver(ipv6_prefix_length=prefix)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"ipv6_prefix_length must be a whole number from 1 to 128, not {prefix!r}"
    )


header_values = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.one_of(
            st.ip_addresses().map(str),
            st.sampled_from([PROXY, INNER_PROXY, "unknown", "_x", "[", "]", '"', ";", "for="]),
            st.text(max_size=20),
        ),
        max_size=8,
    ).map(lambda parts: ", ".join(parts).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(header_values, max_size=3),
    name=st.sampled_from([b"x-forwarded-for", b"forwarded"]),
    mode=st.sampled_from(["x-forwarded-for", "forwarded"]),
    peer=st.sampled_from([PROXY, "198.51.100.7", "2001:db8::5"]),
)
async def test_arbitrary_header_bytes_never_raise(
    values: list[bytes], name: bytes, mode: str, peer: str
) -> None:
    limiter = RateLimiter(
        limits={"api": RateLimit(max_requests=3, window_seconds=60)},
        trusted_proxies=[PROXY, INNER_PROXY],
        trust_x_forwarded_for=True,
        forwarded_header=mode,  # type: ignore[arg-type]
    )
    request = scope(peer, [(name, value) for value in values])
    _, info = await limiter.is_rate_limited(request, "api")
    assert info.allowed
    assert info.key.startswith("ip:")
    if peer != PROXY:
        assert info.key == limiter.client_resolver.client_key(scope(peer))
    else:
        # Whatever the header said, the result is a real address.
        address = info.key.removeprefix("ip:")
        ipaddress.ip_network(address, strict=True)


@pytest.mark.parametrize("catch_all", ["0.0.0.0/0", "::/0", "10.0.0.1, 0.0.0.0/0"])
def test_a_catch_all_proxy_is_refused_unless_said_explicitly(
    catch_all: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_ALL_PROXIES"):
        ClientIPResolver(catch_all, trust_x_forwarded_for=True)
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_TRUSTED_PROXIES": catch_all,
        "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
    }
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUSTED_PROXIES"):
        RateLimiter.from_settings(S3AuthSettings.from_env(env))
    meant = S3AuthSettings.from_env({**env, "S3AUTH_TRUST_ALL_PROXIES": "true"})
    resolver = RateLimiter.from_settings(meant).client_resolver
    assert any("S3AUTH_TRUST_ALL_PROXIES=true" in r.getMessage() for r in caplog.records)
    scope = {
        "type": "http",
        "client": ("2001:db8::7" if catch_all == "::/0" else "198.51.100.7", 1),
        "headers": [(b"x-forwarded-for", b"203.0.113.9")],
    }
    assert resolver.client_ip(scope) == "203.0.113.9"  # as meant: every peer is believed


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV4_IN_IPV6 = (ipaddress.ip_network("::ffff:0:0/96"), ipaddress.ip_network("64:ff9b::/96"))


@st.composite
def family_split(draw: st.DrawFn, version: int) -> list[Network]:
    """Disjoint networks whose union is every address of the family: the catch-all split
    again and again, at random places, never listed whole."""
    leaves: list[Network] = [ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")]
    for split in range(draw(st.integers(1, 12))):
        network = leaves.pop(0 if split == 0 else draw(st.integers(0, len(leaves) - 1)))
        if network.prefixlen == network.max_prefixlen:
            leaves.append(network)
        else:
            leaves.extend(network.subnets())
    return draw(st.permutations(leaves))


some_networks = st.lists(
    st.one_of(
        st.tuples(st.ip_addresses(v=4), st.integers(3, 32)),
        st.tuples(st.ip_addresses(v=6), st.integers(3, 128)),
    ).map(lambda pair: ipaddress.ip_network(f"{pair[0]}/{pair[1]}", strict=False)),
    max_size=4,
)
"""At most four networks of at most an eighth of a family: together never a whole one."""


@settings(max_examples=200, deadline=None)
@given(version=st.sampled_from([4, 6]), data=st.data())
def test_networks_that_together_cover_a_family_need_trust_all_proxies(
    version: int, data: st.DataObject
) -> None:
    """Halves, quarters or any split of 0.0.0.0/0 or ::/0 trust every peer as surely as the
    catch-all itself, whatever else is listed beside them."""
    leaves = data.draw(family_split(version))
    listed = [str(n) for n in data.draw(st.permutations(leaves + data.draw(some_networks)))]
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_ALL_PROXIES"):
        ClientIPResolver(listed, trust_x_forwarded_for=True)
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_ALL_PROXIES"):
        S3AuthSettings(secret_key=SECRET, trusted_proxies=listed)
    assert ClientIPResolver(listed, trust_x_forwarded_for=True, trust_all_proxies=True)
    # One piece left out, and nothing else of that family listed: not every peer.
    dropped = data.draw(st.integers(0, len(leaves) - 1))
    partial = [str(n) for i, n in enumerate(leaves) if i != dropped]
    # An IPv6 network over IPv4 embedded in IPv6 (mapped, NAT64) is IPv4 to a peer's match.
    others = [
        str(n)
        for n in data.draw(some_networks)
        if n.version != version and not any(map(n.overlaps, IPV4_IN_IPV6))
    ]
    assert S3AuthSettings(
        secret_key=SECRET, trusted_proxies=partial + others, trust_x_forwarded_for=True
    )
    resolver = ClientIPResolver(partial + others, trust_x_forwarded_for=True)
    outside = leaves[dropped][-1]  # a peer in the piece left out is not believed
    assert resolver.client_ip(scope(str(outside), xff("203.0.113.9"))) == str(outside)


@pytest.mark.parametrize("halves", ["0.0.0.0/1,128.0.0.0/1", "::/1,8000::/1"])
def test_a_catch_all_in_halves_is_named_as_the_catch_all(halves: str) -> None:
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_TRUSTED_PROXIES": halves,
        "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
    }
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(env)
    whole = "0.0.0.0/0" if "." in halves else "::/0"
    assert f"S3AUTH_TRUSTED_PROXIES covers {whole}" in str(info.value), info.value
    assert S3AuthSettings.from_env({**env, "S3AUTH_TRUST_ALL_PROXIES": "true"})


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.ip_addresses(v=4).map(str),
        st.integers(0, 2**32 - 1).map(
            lambda n: ".".join(str(n >> s & 255) for s in (24, 16, 8, 0))
        ),
        st.from_regex(r"[0-9.x ]{1,18}", fullmatch=True),
        st.text(max_size=20),
    ),
    proxies=st.sampled_from([(), ("10.0.0.0/8",), ("203.0.113.7", "fd00::/8"), ("0.0.0.0/1",)]),
)
def test_the_dotted_quad_shortcut_answers_as_the_full_parse(
    text: str, proxies: tuple[str, ...]
) -> None:
    """Plain dotted quads skip `ipaddress`; whatever the text, the answer is the same, so
    which path a text takes can never change who it is counted as."""
    resolver = ClientIPResolver(proxies, trust_x_forwarded_for=bool(proxies))
    quick = resolver._dotted_quad(text)
    full = resolver._classify_uncached(text)
    if quick is not None:
        assert quick == full
    else:  # not a canonical dotted quad: the full parse does not count it as one either
        assert full is None or full.key != f"ip:{text}"


six_to_four = st.builds(
    lambda ipv4, rest: ipaddress.IPv6Address(0x2002 << 112 | int(ipv4) << 80 | rest),
    st.ip_addresses(v=4),
    st.integers(0, 2**80 - 1) | st.sampled_from([0, 1, 2**80 - 1]),
)
"""Addresses of 2002::/16: the IPv4 address in bits 16..47, any subnet and host after it."""

teredo = st.builds(
    lambda server, flags_port, client: ipaddress.IPv6Address(
        0x2001_0000 << 96 | int(server) << 64 | flags_port << 32 | int(client) ^ 0xFFFF_FFFF
    ),
    st.ip_addresses(v=4),
    st.integers(0, 2**32 - 1),
    st.ip_addresses(v=4),
)
"""Addresses of 2001::/32: the server's IPv4, flags and port, then the client's IPv4
inverted."""


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(
        st.ip_addresses(v=6).map(str),
        st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
        st.ip_addresses(v=6).map(lambda a: f"::ffff:{a.exploded[-9:]}"),
        (six_to_four | teredo).map(str),
        (six_to_four | teredo).map(lambda a: a.exploded),
        (six_to_four | teredo).map(lambda a: f"[{a}]:443"),
        st.from_regex(r"[0-9a-fA-F:.%]{1,41}", fullmatch=True),
        st.sampled_from(["::1", "::", "::ffff:1.2.3.4", "::1.2.3.4", "fe80::1%eth0", "1::"]),
    ),
    proxies=st.sampled_from([(), ("fd00::/8",), ("2001:db8::/32", "10.0.0.0/8"), ("::/1",)]),
    prefix=st.sampled_from([1, 48, 56, 64, 72, 80, 96, 127, 128]),
)
def test_the_ipv6_shortcut_answers_as_the_full_parse(
    text: str, proxies: tuple[str, ...], prefix: int
) -> None:
    """Most IPv6 addresses skip `ipaddress` too, with the same answer, whatever the text,
    the trusted networks and the prefix that groups them."""
    resolver = ClientIPResolver(
        proxies,
        trust_x_forwarded_for=bool(proxies),
        trust_all_proxies=True,
        ipv6_prefix_length=prefix,
    )
    quick = resolver._plain_ipv6(text)
    full = resolver._classify_uncached(text)
    written = full and ipaddress.ip_address(full.ip.partition("%")[0])
    if isinstance(written, ipaddress.IPv6Address) and (written.teredo or written.sixtofour):
        # 6to4 and Teredo: counted as the client's IPv4 address, whatever the prefix.
        embedded = written.teredo[1] if written.teredo else written.sixtofour
        assert full is not None and full.key == f"ip:{embedded}"
    if quick is not None:
        assert quick == full
    elif not text.startswith("["):  # left to the full parse: a zone, or 80 bits 0
        address = full and ipaddress.ip_address(full.ip)
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is None:
            assert int(address) >> 48 == 0


def test_where_the_platform_writes_ipv6_otherwise_the_full_parse_answers() -> None:
    resolver = ClientIPResolver()
    text = "2001:db8:1:2::3"
    assert resolver._plain_ipv6(text) == resolver._classify_uncached(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(address_text, "IPV6_WRITTEN_AS_IPADDRESS_DOES", False)
        assert resolver._plain_ipv6(text) is None
        assert resolver.client_key(scope(text)) == "ip:2001:db8:1:2::/64"


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.ip_addresses(v=4).map(str),
        st.from_regex(r"[0-9.]{1,16}", fullmatch=True),
        st.text(max_size=20),
    )
)
def test_where_inet_pton_is_loose_writing_back_keeps_the_canonical_forms(text: str) -> None:
    """The two ways of telling a canonical dotted quad give one answer: a platform whose
    `inet_pton` takes more than canonical forms counts nobody differently."""
    strict = address_text.canonical_quad(text)
    try:
        written_back: bytes | None = address_text._written_back_quad(socket.AF_INET, text)
    except (OSError, ValueError):
        written_back = None
    assert written_back == strict
    if strict is not None:
        assert str(ipaddress.IPv4Address(strict)) == text


@settings(max_examples=200, deadline=None)
@given(
    host=st.one_of(
        st.ip_addresses().map(str),
        st.sampled_from(["10.1.2.3", "198.51.100.7", "::ffff:10.1.2.3", "010.1.2.3"]),
        st.from_regex(r"[0-9.:a-f]{1,20}", fullmatch=True),
        (six_to_four | teredo).map(str),
    ),
    forwarded=st.sampled_from([b"", b"203.0.113.9", b"garbage"]),
    proxies=st.sampled_from([(), ("10.0.0.0/8",), ("198.51.100.0/24", "fd00::/8")]),
)
def test_the_client_key_shortcut_answers_as_resolve(
    host: str, forwarded: bytes, proxies: tuple[str, ...]
) -> None:
    resolver = ClientIPResolver(proxies, trust_x_forwarded_for=bool(proxies))
    request = scope(host, xff(forwarded.decode()) if forwarded else None)
    resolved = resolver.resolve(request)
    expected = "ip:unknown" if resolved is None else resolved.key
    for _ in range(2):  # from the parse, then from the memo
        assert resolver.client_key(request) == expected
        compact, full = resolver.client_keys(request)
        assert full == expected
        assert (compact if ":" in compact else f"ip:{compact}") == expected
        # Compact exactly when the client is counted as one IPv4 address: then it is that
        # address, however the client wrote it (IPv4-mapped, NAT64, 6to4, Teredo).
        if is_ipv4(expected.removeprefix("ip:")):
            assert compact == expected.removeprefix("ip:")
        else:
            assert compact == expected


host_text = st.one_of(
    st.ip_addresses().map(str), st.from_regex(r"[0-9.:a-z]{1,12}", fullmatch=True)
)


@st.composite
def host_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two hosts: unrelated, or one client written twice (IPv6 upper-case and in full, IPv4
    mapped into IPv6 or carried by 6to4 or Teredo), or two IPv6 addresses in one /64, which
    count as one client."""
    first = draw(host_text)
    address = draw(st.ip_addresses())
    if isinstance(address, ipaddress.IPv6Address):
        neighbour = ipaddress.IPv6Address(int(address) ^ draw(st.integers(1, 2**64 - 1)))
        pairs = [(str(address), address.exploded.upper()), (str(address), str(neighbour))]
    else:  # or as the IPv6 address of a 6to4 /48 or a Teredo client that carries it
        six_to_four = 0x2002 << 112 | int(address) << 80 | draw(st.integers(0, 2**80 - 1))
        teredo = 0x2001 << 112 | draw(st.integers(0, 2**64 - 1)) << 32 | int(address) ^ 2**32 - 1
        embedding = [str(ipaddress.IPv6Address(n)) for n in (six_to_four, teredo)]
        pairs = [(str(address), f"::ffff:{address}"), *((str(address), e) for e in embedding)]
    return draw(st.sampled_from([(first, draw(host_text)), *pairs]))


@settings(max_examples=300, deadline=None)
@given(pair=host_pairs())
def test_compact_keys_are_one_to_one_with_client_keys(pair: tuple[str, str]) -> None:
    resolver = ClientIPResolver()
    keys = [resolver.client_key(scope(host)) for host in pair]
    compact = [resolver.client_keys(scope(host))[0] for host in pair]
    assert (keys[0] == keys[1]) == (compact[0] == compact[1])


async def test_a_client_is_counted_once_whether_direct_or_behind_a_trusted_proxy() -> None:
    # In memory the count is keyed by the compact form, which the shortcut for a direct
    # peer and the full parse behind a proxy must both reach.
    limiter = RateLimiter(
        limits={"api": RateLimit(max_requests=2, window_seconds=60)},
        trusted_proxies=[PROXY],
        trust_x_forwarded_for=True,
    )
    client = "203.0.113.9"
    answers = [
        await limiter.is_rate_limited(scope(client), "api"),
        await limiter.is_rate_limited(scope(PROXY, xff(client)), "api"),
        await limiter.is_rate_limited(scope(f"::ffff:{client}"), "api"),
    ]
    assert [refused for refused, _ in answers] == [False, False, True]
    assert {info.key for _, info in answers} == {f"ip:{client}"}


def test_past_the_memo_every_client_is_still_resolved_alike() -> None:
    resolver = ClientIPResolver(["10.0.0.1"], trust_x_forwarded_for=True, cache_size=8)
    addresses = [f"198.51.100.{i}" for i in range(40)] + [f"2001:db8:{i:x}::1" for i in range(40)]
    for _ in range(3):
        for address in addresses:
            expected = ClientIPResolver()._classify_uncached(address)
            assert expected is not None
            assert resolver.client_key(scope(address)) == expected.key
            assert resolver.client_key(scope(PROXY, xff(address))) == expected.key
    assert len(resolver._memo) <= 8


def test_past_the_own_hosts_memo_every_peer_is_still_its_own_key() -> None:
    resolver = ClientIPResolver()
    hosts = [f"198.51.{i >> 8}.{i & 255}" for i in range(2_000)]
    for _ in range(2):
        assert [resolver.client_keys(scope(host))[0] for host in hosts] == hosts
        assert [resolver.client_key(scope(host)) for host in hosts] == [f"ip:{h}" for h in hosts]
    assert resolver._own_hosts is None


def test_the_own_hosts_memo_serves_as_many_peers_and_is_given_up_past_them() -> None:
    resolver = ClientIPResolver()
    hosts = [f"198.51.{i >> 8}.{i & 255}" for i in range(client_ip._OWN_HOSTS_SIZE + 1)]
    for _ in range(2):
        for host in hosts[:-1]:
            assert resolver.client_keys(scope(host)) == (host, f"ip:{host}")
    remembered = resolver.client_keys(scope(hosts[0]))
    assert resolver.client_keys(scope(hosts[0])) is remembered  # not built again
    assert resolver.client_keys(scope(hosts[-1])) == (hosts[-1], f"ip:{hosts[-1]}")
    assert resolver._own_hosts is None
    again = resolver.client_keys(scope(hosts[0]))
    assert again == remembered
    assert again is not remembered
