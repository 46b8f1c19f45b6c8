"""Whether a host, as a name or an address, is this machine: `localhost` or a loopback
address (`127.0.0.1`, `::1`, bracketed `[::1]` as URLs write it). A name is the same in
any case (RFC 4343): `LOCALHOST` is this machine too, and a demo told to listen there must
guard it as it guards `localhost`.

An IPv4 address is so in every form the resolver takes, as a server told to listen there
or a client told to connect there gets it (`127.1`, `0x7f.1`, `2130706433`: 127.0.0.1).
A name other than `localhost` (`localhost.localdomain`, `ip6-localhost`) is this machine
only by what it resolves to, which takes a lookup: `resolves_to_loopback`, for a server
about to listen, once at its start."""

from __future__ import annotations

import ipaddress
import re
import socket

# What an IPv4 address in the resolver's forms is made of (decimal, octal, hex parts):
# inet_aton itself takes anything after a space too ("127.0.0.1 elsewhere").
_IPV4_FORM = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def is_loopback(host: str) -> bool:
    """Whether `host` is `localhost` or a loopback address, in any form (no lookup)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if not _IPV4_FORM.fullmatch(host):
        return False
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False


def resolves_to_loopback(host: str) -> bool:
    """Whether `host` is loopback (`is_loopback`), or a name every address of which is
    (a getaddrinfo: a DNS request, perhaps): a server listening there listens on all of
    them. False for a name that does not resolve."""
    if is_loopback(host):
        return True
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in found}
    return bool(addresses) and all(is_loopback(address) for address in addresses)
