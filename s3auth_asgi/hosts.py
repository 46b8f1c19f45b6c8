"""Whether a host, as a name or an address, is this machine: `localhost` or a loopback
address (`127.0.0.1`, `::1`, bracketed `[::1]` as URLs write it)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
