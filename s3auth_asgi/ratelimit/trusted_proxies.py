"""The trusted proxies setting: the networks whose peers may say who the client is, and
`unix`, a proxy that connects over a unix socket.

Servers report no peer address for a unix-socket connection (the ASGI scope's `client` is
None, or the socket's path and no port), so no network can name such a proxy; `unix` trusts
every connection without one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

from ..errors import ConfigurationError
from ..settings import env_name
from ..settings_text import SPACES

TRUSTED_PROXIES_VARIABLE = env_name("trusted_proxies")
TRUST_ALL_PROXIES_VARIABLE = env_name("trust_all_proxies")
TRUST_FORWARDED_VARIABLE = env_name("trust_x_forwarded_for")
FORWARDED_HEADER_VARIABLE = env_name("forwarded_header")
DEFAULT_FORWARDED_HEADER = "x-forwarded-for"
UNIX_PROXY = "unix"
"""The entry that trusts connections with no peer address."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies(NamedTuple):
    networks: tuple[Network, ...]
    unix: bool
    """Whether a connection with no peer address is a trusted proxy."""


def parse_trusted_proxies(proxies: Iterable[str]) -> TrustedProxies:
    if isinstance(proxies, str):
        proxies = proxies.split(",")
    networks = []
    unix = False
    for proxy in proxies:
        text = proxy.strip(SPACES) if isinstance(proxy, str) else proxy
        if text == "":
            continue
        if text == UNIX_PROXY:
            unix = True
            continue
        try:
            networks.append(_as_peers_are_matched(ipaddress.ip_network(text, strict=False)))
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"{TRUSTED_PROXIES_VARIABLE} (trusted_proxies): {proxy!r} is not an IP address, "
                f"a CIDR network or {UNIX_PROXY!r} (a proxy on a unix socket)"
            ) from None
    return TrustedProxies(tuple(networks), unix)


_IPV4_IN_IPV6 = (
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64's well-known prefix (RFC 6052)
)
"""The IPv6 networks whose addresses a peer is counted as the IPv4 address embedded in."""


def _as_peers_are_matched(network: Network) -> Network:
    """`network` as peers are matched against it: a peer in one of _IPV4_IN_IPV6 is taken as
    the IPv4 address it embeds, so a network within one is that IPv4 network. Listed as a
    dual-stack server reports it (`::ffff:10.0.0.1`), a proxy would otherwise never match."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        for embedding in _IPV4_IN_IPV6:
            if network.subnet_of(embedding):
                low_bits = int(network.network_address) & 0xFFFF_FFFF
                return ipaddress.IPv4Network((low_bits, network.prefixlen - 96))
    return network


def check_proxy_settings(
    proxies: Iterable[str],
    *,
    trust_x_forwarded_for: bool,
    trust_all_proxies: bool,
    forwarded_header: str = DEFAULT_FORWARDED_HEADER,
) -> TrustedProxies:
    """The trusted proxies; ConfigurationError naming the variable when they, with the two
    switches and the forwarding header, would not work: the settings are checked by this
    when they are made, and so is every client resolver's arguments."""
    trusted = parse_trusted_proxies(proxies)
    catch_all = catch_all_networks(trusted.networks)
    if catch_all and not trust_all_proxies:
        # Every peer a proxy: every client picks its own address, and per-address limits
        # and the addresses sessions record mean nothing.
        raise ConfigurationError(
            f"{TRUSTED_PROXIES_VARIABLE} covers {', '.join(catch_all)}, which trusts every "
            f"peer to say who the client is; list your proxies' addresses, or set "
            f"{TRUST_ALL_PROXIES_VARIABLE}=true if every peer really is a proxy you run "
            "(a platform load balancer in front of every request)"
        )
    if forwarded_header != DEFAULT_FORWARDED_HEADER and not trust_x_forwarded_for:
        # Only the default can be meant by saying nothing; another header named but never
        # read leaves every client behind the proxy counted as the proxy, unsaid.
        raise ConfigurationError(
            f"{FORWARDED_HEADER_VARIABLE} is {forwarded_header} but {TRUST_FORWARDED_VARIABLE} "
            "is not set: no forwarding header is read, and every client behind a proxy "
            f"would count as the proxy; set {TRUST_FORWARDED_VARIABLE}=true and name the "
            f"proxies in {TRUSTED_PROXIES_VARIABLE}, or unset {FORWARDED_HEADER_VARIABLE}"
        )
    listed = bool(trusted.networks) or trusted.unix
    if trust_x_forwarded_for and not listed:
        raise ConfigurationError(
            f"{TRUST_FORWARDED_VARIABLE} is set but {TRUSTED_PROXIES_VARIABLE} is empty: "
            "name the proxies whose forwarding headers are to be believed"
        )
    if listed and not trust_x_forwarded_for:
        # Their header unread, every client behind them is the proxy: one budget of each
        # per-address limit for all of them, which one client's failures spend for all.
        raise ConfigurationError(
            f"{TRUSTED_PROXIES_VARIABLE} is set but {TRUST_FORWARDED_VARIABLE} is not: the "
            "proxies' forwarding header would not be read, and every client behind them "
            f"would count as the proxy; set {TRUST_FORWARDED_VARIABLE}=true, or unset "
            f"{TRUSTED_PROXIES_VARIABLE}"
        )
    return trusted


EVERY_IPV4 = ipaddress.IPv4Network("0.0.0.0/0")
EVERY_IPV6 = ipaddress.IPv6Network("::/0")


def catch_all_networks(networks: tuple[Network, ...]) -> list[str]:
    """The whole address families `networks` cover between them (`0.0.0.0/0`, `::/0`):
    halves, or any other split of one, trust every peer as surely as the catch-all itself."""
    ipv4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    ipv6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    return [
        str(whole)
        for whole, covered in ((EVERY_IPV4, ipv4), (EVERY_IPV6, ipv6))
        if whole in covered
    ]
