"""Which client sent a request: the socket peer, or what a trusted proxy says it saw.

X-Forwarded-For (or RFC 7239 Forwarded) is written by whoever sent the request, so only the
entries appended by proxies we trust mean anything. Walking the list from the right, each
trusted proxy vouches for the entry to its left; the first address that is not a trusted
proxy is the client. Everything further left is client-controlled and ignored.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from itertools import islice
from socket import AF_INET
from typing import Final, NamedTuple, get_args

from ..settings import ForwardedHeader
from ..settings_ranges import check_argument
from ..settings_text import choice_refused
from ..types import Scope
from .address_text import (
    canonical_quad,
    embedded_client_ipv4,
    entry_address,
    ipv4_text,
    ipv6_text,
    nat64_ipv4,
    plain_ipv6,
    quad_bytes,
)
from .forwarded import elements_from_right, forwarded_for
from .trusted_proxies import (
    TRUST_ALL_PROXIES_VARIABLE,
    TRUSTED_PROXIES_VARIABLE,
    UNIX_PROXY,
    catch_all_networks,
    check_proxy_settings,
)

logger = logging.getLogger("s3auth_asgi")

UNKNOWN_CLIENT_KEY = "ip:unknown"

_MEMO_TEXT_LIMIT = 64
"""Longer entries are not remembered: no address with a port and brackets is this long,
and a forwarding header is written by whoever sent the request."""


class ClientAddress(NamedTuple):
    ip: str
    """The address as written canonically (IPv4-mapped IPv6 as IPv4)."""
    key: str
    """What requests from it are counted under: IPv6 grouped by its network prefix, since one
    subscriber usually holds a whole /64 and can rotate through it at will; 6to4 and Teredo
    as the IPv4 address they carry, whose holder they belong to."""
    trusted: bool
    """Whether it is one of the trusted proxies."""


FORWARDED_ENTRIES_READ = 64
"""The right-most entries of a forwarding header that are walked, far more than any chain
of proxies writes. A client that a trusted proxy vouches for, one in a trusted network or
any with every peer trusted, may write thousands of trusted addresses to the left of its
own: walked to the end, 64 KiB of them held the event loop 22 ms. Past these the walk
stops, as at an entry it cannot read, at the last trusted hop."""

_new_address = tuple.__new__


_OWN_HOSTS_SIZE = 512
"""Peers remembered as counting as themselves: few enough that the memo stays in the CPU's
caches, where a lookup is a quarter of the strict parse; a larger one is a memory access per
lookup (16,384 made a check at a million clients 0.18 µs dearer than none). Past this many
peers nearly every lookup misses, which costs more than the hits save (5% of a check at
10,000 to 1,000,000 clients, measured), so the first peer past them ends the memo."""

ClientKeys = tuple[str, str]
"""(compact key, client key): see `ClientIPResolver.client_keys`."""

_NOT_AN_ADDRESS: Final = ClientAddress("", "", False)
"""What the memo holds for a text that is no address, since None means "not seen"."""


class ClientIPResolver:
    """Resolves the client address of an ASGI scope. Nothing is trusted unless configured."""

    def __init__(
        self,
        trusted_proxies: Iterable[str] = (),
        *,
        trust_x_forwarded_for: bool = False,
        forwarded_header: ForwardedHeader = "x-forwarded-for",
        ipv6_prefix_length: int = 64,
        cache_size: int = 16384,
        trust_all_proxies: bool = False,
    ) -> None:
        if forwarded_header not in get_args(ForwardedHeader):
            raise choice_refused("forwarded_header", get_args(ForwardedHeader), forwarded_header)
        # The setting's own range and kind: a float or a bool would be taken here and break,
        # or group every IPv6 client as one, at the first IPv6 request.
        check_argument("ipv6_prefix_length", ipv6_prefix_length, "ipv6_prefix_length")
        trusted = check_proxy_settings(
            trusted_proxies,
            trust_x_forwarded_for=trust_x_forwarded_for,
            trust_all_proxies=trust_all_proxies,
            forwarded_header=forwarded_header,
        )
        self.trusted_proxies = trusted.networks
        self._trust_no_peer = trusted.unix
        self._warned_no_peer = False
        catch_all = catch_all_networks(self.trusted_proxies)
        if catch_all:
            logger.warning(
                "%s=true: every peer's forwarding header is believed (%s)",
                TRUST_ALL_PROXIES_VARIABLE,
                ", ".join(catch_all),
            )
        # Only one header is ever read: a proxy that writes X-Forwarded-For usually passes a
        # client's own Forwarded header through untouched, and the reverse.
        self._header_name = forwarded_header.encode()
        self._read_header = trust_x_forwarded_for
        self._ipv6_shift = 128 - ipv6_prefix_length
        self._ipv6_prefix_length = ipv6_prefix_length
        # The same few addresses come back on almost every request, and a dict lookup is a
        # tenth of even the fast parse (`address_text`: dotted quads and most IPv6). What
        # the fast parse gives is remembered only while there is room: past that, inserting
        # into a large table costs more than parsing again. What the full parse gives
        # (ports, brackets, names, IPv4-mapped forms) costs ten times more to redo, so a
        # full memo is emptied to make room for it: a clear costs nothing per request,
        # where keeping LRU order costs on every miss.
        self._memo: dict[str, ClientAddress] = {}
        self._own_hosts: dict[str, ClientKeys] | None = {}
        """Peers written as plain dotted quads that count as themselves; None once full."""
        self._memo_size = cache_size
        self._trusted_ipv4 = tuple(
            (int(network.network_address), int(network.netmask))
            for network in self.trusted_proxies
            if network.version == 4
        )
        self._trusted_ipv6 = tuple(
            (int(network.network_address), int(network.netmask))
            for network in self.trusted_proxies
            if network.version == 6
        )
        # The networks whose peers' forwarding header is read, in the form the hottest
        # check wants: empty when no header is read at all.
        self._proxies_read_behind = self._trusted_ipv4 if self._read_header else ()

    def _classify(self, text: str) -> ClientAddress | None:
        memo = self._memo
        found = memo.get(text)
        if found is None:
            found = self._plain_ipv6(text) if ":" in text else self._dotted_quad(text)
            if found is not None:
                if len(memo) < self._memo_size:
                    memo[text] = found
                return found
            found = self._classify_uncached(text) or _NOT_AN_ADDRESS
            if self._memo_size > 0 and len(text) <= _MEMO_TEXT_LIMIT:
                if len(memo) >= self._memo_size:
                    memo.clear()
                memo[text] = found
        return None if found is _NOT_AN_ADDRESS else found

    def _dotted_quad(self, text: str) -> ClientAddress | None:
        """The full parse's answer for an IPv4 address written canonically, which is what a
        server reports for almost every IPv4 peer, without building an IPv4Address; None
        for anything else."""
        packed = canonical_quad(text)
        if packed is None:
            return None
        return self._ipv4(text, int.from_bytes(packed, "big"))

    def _ipv4(self, text: str, number: int) -> ClientAddress:
        """The answer for the IPv4 address `number`, written canonically as `text`."""
        trusted = bool(self._trusted_ipv4) and _within(number, self._trusted_ipv4)
        # tuple.__new__ directly: a NamedTuple's own constructor is a Python-level call
        # that would cost a third of this whole parse.
        return _new_address(ClientAddress, (text, "ip:" + text, trusted))

    def _plain_ipv6(self, text: str) -> ClientAddress | None:
        """The full parse's answer for an IPv6 address that `plain_ipv6` takes, written
        back without `ipaddress`; None for anything else."""
        number = plain_ipv6(text)
        if number is None:
            return None
        embedded = nat64_ipv4(number)
        if embedded is not None:
            return self._ipv4(ipv4_text(embedded), embedded)
        # Matched as the IPv6 address it is, counted as the IPv4 client it carries (6to4,
        # Teredo): a proxy listed by its IPv4 address is not its 6to4 /48 too.
        trusted = _within(number, self._trusted_ipv6)
        key = self._ipv6_key(number, ipv6_text)
        return _new_address(ClientAddress, (ipv6_text(number), key, trusted))

    def _ipv6_key(self, number: int, write: Callable[[int], str]) -> str:
        """What the IPv6 client `number` is counted under (`ClientAddress.key`), a network
        written by `write`: `ipv6_text` where it writes what `ipaddress` does."""
        client_ipv4 = embedded_client_ipv4(number)
        if client_ipv4 is not None:
            return "ip:" + ipv4_text(client_ipv4)
        network = number >> self._ipv6_shift << self._ipv6_shift
        return f"ip:{write(network)}/{self._ipv6_prefix_length}"

    def _classify_uncached(self, text: str) -> ClientAddress | None:
        address = entry_address(text)
        if address is None:
            return None
        trusted = any(address in network for network in self.trusted_proxies)
        if isinstance(address, ipaddress.IPv4Address):
            key = f"ip:{address}"
        else:
            key = self._ipv6_key(int(address), lambda n: str(ipaddress.IPv6Address(n)))
        return ClientAddress(str(address), key, trusted)

    def resolve(self, scope: Scope) -> ClientAddress | None:
        """The client of this request, or None when no one said who it is."""
        client = scope.get("client")
        host = client[0] if client else None
        if type(host) is not str:
            return self._without_peer(scope)
        peer = self._classify(host)
        if peer is None:
            if client and len(client) == 2 and client[1] is None:
                # A unix socket's path with no port, as ASGI 2.2 lets a server write such
                # a peer (NGINX Unit does) instead of None: a peer with no address all the same.
                return self._without_peer(scope)
            # Not an IP (a test client's name): still one peer.
            return ClientAddress(host, f"peer:{host[:200]}", False)
        if peer.trusted and self._read_header:
            return self._from_forwarded_chain(scope, peer)
        return peer

    def _without_peer(self, scope: Scope) -> ClientAddress | None:
        """The client of a request that came with no peer address (a unix socket: `client`
        None, or a path and no port)."""
        if not self._read_header:
            return None
        if self._trust_no_peer:
            return self._from_forwarded_chain(scope, None)
        if not self._warned_no_peer:
            self._warned_no_peer = True
            logger.warning(
                "a request came with no peer address (a proxy on a unix socket?): its "
                "forwarding header is not read, and all such requests count as one client; "
                "add %r to %s if that proxy is yours",
                UNIX_PROXY,
                TRUSTED_PROXIES_VARIABLE,
            )
        return None

    def client_key(self, scope: Scope) -> str:
        """What requests of this scope's client are counted under: `ip:` and the address
        (`ip:` and the network for IPv6), `peer:` and the name for a peer that is no IP."""
        return self.client_keys(scope)[1]

    def client_keys(self, scope: Scope) -> ClientKeys:
        """The compact key and the `client_key` of this scope's client.

        The compact key is `client_key` without its `ip:` when the client is one IPv4
        address, for tables that key by it on every request (the in-memory rate limits). A
        peer written as a plain dotted quad with no proxy to look behind, what a server
        reports for almost every IPv4 request, is then the very string the server gave: a
        check by it builds and hashes no other, and a table of a million clients costs no
        second lookup to map it. One to one with `client_key`: every other key is written
        `kind:value`."""
        client = scope.get("client")
        host = client[0] if client else None
        if type(host) is str:
            own_hosts = self._own_hosts
            known = own_hosts.get(host) if own_hosts is not None else None
            if known is not None:
                return known
            try:
                packed: bytes | None = quad_bytes(AF_INET, host)
            except (OSError, ValueError):
                packed = None
            proxies = self._proxies_read_behind
            if packed is not None and not (
                proxies and _within(int.from_bytes(packed, "big"), proxies)
            ):
                keys = (host, "ip:" + host)
                if own_hosts is not None:
                    if len(own_hosts) < _OWN_HOSTS_SIZE:
                        own_hosts[host] = keys
                    else:
                        self._own_hosts = None
                return keys
        address = self.resolve(scope)
        if address is None:
            return UNKNOWN_CLIENT_KEY, UNKNOWN_CLIENT_KEY
        key = address.key
        if key == "ip:" + address.ip:
            return address.ip, key
        if "/" not in key and key.startswith("ip:"):
            # An IPv4 client by an IPv6 address it owns (6to4, Teredo): its own compact key,
            # or one client would be two counts in memory.
            return key[3:], key
        return key, key

    def client_ip(self, scope: Scope) -> str | None:
        address = self.resolve(scope)
        return None if address is None else address.ip

    def _from_forwarded_chain(
        self, scope: Scope, peer: ClientAddress | None
    ) -> ClientAddress | None:
        """The client `peer` (None: a trusted proxy with no address) vouches for."""
        values = [
            value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name == self._header_name and isinstance(value, bytes | bytearray)
        ]
        if not values:
            return peer
        joined = ",".join(values)
        rfc7239 = self._header_name == b"forwarded"
        if rfc7239 and '"' in joined:
            # A quoted value may hold commas (`forwarded`): found from the right.
            entries: Iterable[str] = islice(elements_from_right(joined), FORWARDED_ENTRIES_READ)
        else:
            entries = reversed(joined.rsplit(",", FORWARDED_ENTRIES_READ)[-FORWARDED_ENTRIES_READ:])
        vouched_for = peer
        for entry in entries:
            text = forwarded_for(entry) if rfc7239 else entry
            address = self._classify(text) if text is not None else None
            if address is None:
                # A hop we trust wrote something that is not an address (or nothing):
                # nothing left of it can be vouched for, so stop at the last trusted hop.
                return vouched_for
            if not address.trusted:
                return address
            vouched_for = address
        return vouched_for


def _within(number: int, networks: tuple[tuple[int, int], ...]) -> bool:
    """Whether an address (as a number) is in one of `networks` ((address, mask) pairs of
    one IP version: an IPv4 address is never inside an IPv6 network, as `ipaddress` has it)."""
    if not networks:
        return False
    return any(number & mask == net for net, mask in networks)
