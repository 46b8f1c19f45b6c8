"""Who a client is, as the settings say: the client resolver's options that the `S3AUTH_*`
variables give (`client_options`). Every reader of clients that the settings configure
takes them from here, the limiters `RateLimiter.from_settings` makes and the addresses the
auth app's sessions record without a limiter, so that the parts of one deployment never
disagree about who sent a request: one reading `Forwarded` while another believes the
X-Forwarded-For a client wrote itself, or grouping IPv6 by another prefix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from ..settings import ForwardedHeader, S3AuthSettings


class ClientOptions(TypedDict):
    """`ClientIPResolver`'s (and `RateLimiter`'s) keyword arguments that name the client."""

    trusted_proxies: Iterable[str]
    trust_x_forwarded_for: bool
    trust_all_proxies: bool
    forwarded_header: ForwardedHeader
    ipv6_prefix_length: int


def client_options(settings: S3AuthSettings) -> ClientOptions:
    """S3AUTH_TRUSTED_PROXIES, S3AUTH_TRUST_X_FORWARDED_FOR, S3AUTH_TRUST_ALL_PROXIES,
    S3AUTH_FORWARDED_HEADER and S3AUTH_IPV6_PREFIX_LENGTH, as keyword arguments."""
    return ClientOptions(
        trusted_proxies=settings.trusted_proxies,
        trust_x_forwarded_for=settings.trust_x_forwarded_for,
        trust_all_proxies=settings.trust_all_proxies,
        forwarded_header=settings.forwarded_header,
        ipv6_prefix_length=settings.ipv6_prefix_length,
    )
