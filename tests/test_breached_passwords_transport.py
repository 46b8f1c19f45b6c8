"""Over which transport the breached-password lookups go: TLS, unless the range API is on
this machine (`localhost`, a loopback address) or the operator opts in to plain http
(S3AUTH_BREACHED_PASSWORDS_ALLOW_PLAIN_HTTP). Whoever is on the path of a plain http lookup
learns the 5-digit prefixes and can answer "not breached" to every one of them. As in
`test_keys_remote_transport`, a TEST-NET-1 address stands for a host off this machine:
a connection to one is recorded and refused on the spot (`connects`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from conftest import SECRET, make_service
from test_breached_passwords import BREACHED, FRESH, base, ranges, sha1
from test_keys_remote import RawHttpServer, jwks_server
from test_keys_remote_transport import connects, redirecting

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.breached_passwords import (
    BreachCheckUnavailableError,
    BreachedPasswordError,
    BreachedPasswords,
)

pytestmark = pytest.mark.anyio
__all__ = ["connects", "jwks_server"]  # fixtures, used here by name

OFF_MACHINE = "http://192.0.2.1:9/pwned"


def plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]


def unchecked_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "could not be checked" in r.getMessage()]


@pytest.mark.parametrize(
    "url",
    [
        OFF_MACHINE,
        "http://passwords.example.com/pwned",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_off_this_machine_is_refused_by_the_settings(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        S3AuthSettings(secret_key=SECRET, breached_passwords_url=url)
    said = str(refused.value)
    assert "S3AUTH_BREACHED_PASSWORDS_URL" in said, said
    assert "https://" in said, said
    assert "S3AUTH_BREACHED_PASSWORDS_ALLOW_PLAIN_HTTP" in said, said
    assert "pwned" not in said, said
    with pytest.raises(ConfigurationError, match="allow_plain_http=True"):
        BreachedPasswords(url)
    S3AuthSettings(
        secret_key=SECRET, breached_passwords_url=url, breached_passwords_allow_plain_http=True
    )
    BreachedPasswords(url, allow_plain_http=True)


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8080", "http://LOCALHOST/pwned", "http://127.0.0.2", "http://[::1]:9",
     "https://192.0.2.1/pwned"],
)  # fmt: skip
def test_tls_and_this_machine_need_no_opt_in(url: str) -> None:
    S3AuthSettings(secret_key=SECRET, breached_passwords_url=url)


async def test_the_opt_in_looks_up_over_plain_http_and_warns_once_naming_the_host(
    connects: list[tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    service = make_service(
        breached_passwords_url=OFF_MACHINE, breached_passwords_allow_plain_http=True
    )
    assert plain_http_warnings(caplog) == []  # at the first lookup, not when made
    await service.create_user("alice", "alice@example.com", FRESH)
    await service.create_user("bob", "bob@example.com", BREACHED)
    assert connects == [("192.0.2.1", 9)] * 2
    assert service.breached_passwords.unchecked == 2
    warned = plain_http_warnings(caplog)
    assert len(warned) == 1, warned
    assert "192.0.2.1" in warned[0], warned
    for secret in ("pwned", sha1(FRESH)[:5], sha1(BREACHED)[:5]):
        assert secret not in warned[0], (secret, warned)


async def test_a_lookup_on_this_machine_warns_of_nothing(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    server = jwks_server(ranges)
    service = make_service(
        breached_passwords_url=base(server), breached_passwords_allow_plain_http=True
    )
    with pytest.raises(BreachedPasswordError):
        await service.create_user("alice", "alice@example.com", BREACHED)
    assert plain_http_warnings(caplog) == []


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_a_redirect_to_plain_http_off_this_machine_is_a_failed_lookup(
    jwks_server: Callable[..., RawHttpServer],
    connects: list[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
    fail_closed: bool,
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    server = jwks_server(redirecting(f"{OFF_MACHINE}/range/{sha1(BREACHED)[:5]}"))
    service = make_service(
        breached_passwords_url=base(server), breached_passwords_fail_closed=fail_closed
    )
    if fail_closed:
        with pytest.raises(BreachCheckUnavailableError):
            await service.create_user("alice", "alice@example.com", BREACHED)
    else:
        await service.create_user("alice", "alice@example.com", BREACHED)
    assert [address for address, _ in connects] == ["127.0.0.1"]
    assert (len(server.requests), service.breached_passwords.unchecked) == (1, 1)
    [failed] = unchecked_warnings(caplog)
    assert ("refused" if fail_closed else "taken unchecked") in failed, failed
    assert sha1(BREACHED)[:5] not in caplog.text


async def test_a_redirect_off_this_machine_is_followed_with_the_opt_in(
    jwks_server: Callable[..., RawHttpServer], connects: list[tuple[str, int]]
) -> None:
    server = jwks_server(redirecting(f"{OFF_MACHINE}/range/{sha1(BREACHED)[:5]}"))
    service = make_service(
        breached_passwords_url=base(server), breached_passwords_allow_plain_http=True
    )
    await service.create_user("alice", "alice@example.com", BREACHED)
    assert [address for address, _ in connects] == ["127.0.0.1", "192.0.2.1"]
    assert service.breached_passwords.unchecked == 1


async def test_a_redirect_to_plain_http_on_this_machine_is_followed(
    jwks_server: Callable[..., RawHttpServer], connects: list[tuple[str, int]]
) -> None:
    answers = jwks_server(ranges)
    to = f"{base(answers).replace('127.0.0.1', 'localhost')}/range/{sha1(BREACHED)[:5]}"
    server = jwks_server(redirecting(to))
    service = make_service(breached_passwords_url=base(server))
    with pytest.raises(BreachedPasswordError):
        await service.create_user("alice", "alice@example.com", BREACHED)
    assert (len(server.requests), len(answers.requests)) == (1, 1)
    assert {address for address, _ in connects} <= {"127.0.0.1", "::1"}
