"""Whether a host, as a name or an address, is this machine: `localhost` or a loopback
address (`127.0.0.1`, `::1`, bracketed `[::1]` as URLs write it). A name is the same in
any case (RFC 4343): `LOCALHOST` is this machine too, and a demo told to listen there must
guard it as it guards `localhost`."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
