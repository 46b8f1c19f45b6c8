"""Addresses as servers write them, told by the platform's own parser instead of `ipaddress`.

Every rate-limit check starts from the peer's address as text. `ipaddress` takes 5-15 µs to
parse and write back an IPv6 address, which past any memo of addresses is most of a check;
`inet_pton` and `inet_ntop` take a tenth of that. They are used only where they give
exactly what `ipaddress` gives, which is checked once at import on this platform:

- an IPv4 address only when written canonically (the text is then its own canonical form);
- an IPv6 address, written any way `inet_pton` takes, except those whose first 80 bits are
  zero (loopback, IPv4-mapped and -compatible forms, which are written with a dotted quad
  by some platforms and are rare as clients): the address and its network are written back
  in RFC 5952's form, which `ipaddress` writes too.

Anything else returns None and goes to `ipaddress` (`entry_address`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_AF_INET: Final = socket.AF_INET
_AF_INET6: Final = socket.AF_INET6
_inet_pton: Final = socket.inet_pton
_LOW_80_BITS_ZERO: Final = bytes(10)


def _inet_pton_is_strict() -> bool:
    """Whether this platform's `inet_pton` takes canonical dotted quads only (glibc's, the
    BSDs' and macOS's refuse leading zeros, short forms and trailing dots)."""
    for loose in ("01.2.3.4", "1.2.3", "1.2.3.4.", "1.2.3.256", " 1.2.3.4"):
        try:
            socket.inet_pton(socket.AF_INET, loose)
        except (OSError, ValueError):
            continue
        return False
    return True


INET_PTON_IS_STRICT: Final = _inet_pton_is_strict()


def _written_back_quad(family: int, text: str) -> bytes:
    """`inet_pton` where it takes more than canonical dotted quads: the result is written
    back and compared, and any other text raises, as the strict one does."""
    packed = _inet_pton(family, text)
    if socket.inet_ntoa(packed) != text:
        raise ValueError("not a dotted quad written canonically")
    return packed


quad_bytes: Final[Callable[[int, str], bytes]] = (
    _inet_pton if INET_PTON_IS_STRICT else _written_back_quad
)
"""`quad_bytes(AF_INET, text)`: the four bytes of an IPv4 address written canonically,
OSError or ValueError for any other text. Where `inet_pton` is strict (checked at import) it
is `inet_pton` itself, at a third of the cost of parsing and writing back, and a caller on
every request calls it with no Python frame between (a twentieth of a whole check at a
million clients)."""


def canonical_quad(text: str) -> bytes | None:
    """The four bytes of an IPv4 address written canonically; None for any other text."""
    try:
        return quad_bytes(_AF_INET, text)
    except (OSError, ValueError):
        return None


def _writes_ipv6_as_ipaddress_does() -> bool:
    """Whether `inet_pton` and `inet_ntop` agree with `ipaddress` here, on the forms where
    platforms are known to differ: which run of zero groups is shortened (the longest,
    the first of equals, never a single one), letter case and leading zeros."""
    samples = (
        "2001:db8::1",
        "2001:db8:0:1:0:0:0:1",
        "2001:0:0:1:0:0:1:1",
        "1:0:2:0:3:0:4:5",
        "FE80:0000:0000:0000:0202:B3FF:FE1E:8329",
        "1:2:3:4:5:6:7::",
        "ffff::",
        "0:0:0:0:1::",
    )
    try:
        return all(
            socket.inet_ntop(_AF_INET6, socket.inet_pton(_AF_INET6, text))
            == str(ipaddress.IPv6Address(text))
            for text in samples
        )
    except (OSError, ValueError):
        return False


IPV6_WRITTEN_AS_IPADDRESS_DOES: Final = _writes_ipv6_as_ipaddress_does()


def plain_ipv6(text: str) -> int | None:
    """An IPv6 address as a number, when `inet_pton` takes the text and its first 80 bits
    are not all zero (see the module docstring); None otherwise, and always where this
    platform writes IPv6 otherwise than `ipaddress`."""
    if not IPV6_WRITTEN_AS_IPADDRESS_DOES:
        return None
    try:
        packed = _inet_pton(_AF_INET6, text)
    except (OSError, ValueError):
        return None
    if packed[:10] == _LOW_80_BITS_ZERO:
        return None
    return int.from_bytes(packed, "big")


_NAT64_PREFIX: Final = 0x0064_FF9B_0000_0000_0000_0000
"""64:ff9b::/96 (RFC 6052), shifted right by the 32 bits of the IPv4 address it embeds."""


def nat64_ipv4(number: int) -> int | None:
    """The IPv4 address that an IPv6 address of the well-known NAT64 prefix embeds: behind
    a NAT64 gateway every IPv4 client arrives in that one /64, and is still one client of
    its own. None for any other address."""
    return number & 0xFFFF_FFFF if number >> 32 == _NAT64_PREFIX else None


_SIX_TO_FOUR_PREFIX: Final = 0x2002
"""2002::/16 (RFC 3056), shifted right by the 112 bits after it."""

_TEREDO_PREFIX: Final = 0x2001_0000
"""2001::/32 (RFC 4380), shifted right by the 96 bits after it."""


def embedded_client_ipv4(number: int) -> int | None:
    """The public IPv4 address of the client that a 6to4 or Teredo IPv6 address carries;
    None for any other address.

    The holder of an IPv4 address owns all of its 6to4 /48 (2002:V4::/48), 65,536 /64s. A
    Teredo address is in its Teredo server's /64, shared by all of that server's clients,
    with the client's own address (inverted) in its last 32 bits. Either is routed back to
    the client through that IPv4 address only, so that address is the client as surely as
    a plain IPv4 peer is."""
    top = number >> 112
    if top == _SIX_TO_FOUR_PREFIX:
        return (number >> 80) & 0xFFFF_FFFF
    if top == _TEREDO_PREFIX >> 16 and number >> 96 == _TEREDO_PREFIX:
        return ~number & 0xFFFF_FFFF
    return None


def entry_address(text: str) -> IPAddress | None:
    """An address as found in a header entry (bare, `v4:port`, `[v6]` or `[v6]:port`) or
    a peer, read by `ipaddress`: IPv4-mapped and NAT64 addresses as the IPv4 address they
    embed. None for anything else."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
        embedded = nat64_ipv4(int(address))
        if embedded is not None:
            return ipaddress.IPv4Address(embedded)
    return address


def ipv4_text(number: int) -> str:
    return socket.inet_ntoa(number.to_bytes(4, "big"))


def ipv6_text(number: int) -> str:
    """An IPv6 address (a number from `plain_ipv6`, or a network of one) as `ipaddress`
    writes it. Such a network is `::` or keeps a nonzero group among its first five, so no
    platform writes it with a dotted quad either."""
    return socket.inet_ntop(_AF_INET6, number.to_bytes(16, "big"))
