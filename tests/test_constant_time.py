"""Every check of a secret a client presents runs through `hmac.compare_digest`: the MAC of
a refresh token, the keyed hash of a mailed link's token, a device cookie's MAC and name
tags, and the demo outbox's key. Each test presents a value of the right form with a wrong
secret, sees it refused, and finds the comparison among `compare_digest`'s calls, so a
check rewritten with `==` (whose time tells how many leading characters match) fails."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SECRET, make_service
from starlette.requests import Request
from test_app import PASSWORD

from s3auth_asgi.account_tokens import InvalidAccountTokenError
from s3auth_asgi.app.devices import Device, DeviceCookies
from s3auth_asgi.demo.outbox import KEY_HEADER, _holds_key
from s3auth_asgi.errors import InvalidTokenError
from s3auth_asgi.name_index import account_keys
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio


def as_text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """The arguments of every `hmac.compare_digest` call, as text."""
    calls: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((as_text(a), as_text(b)))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    yield calls


def wrong(text: str) -> str:
    """`text` with its last character changed, in the same alphabet."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


async def test_a_refresh_tokens_mac_is_compared_in_constant_time(
    compared: list[tuple[str, str]],
) -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    forged_mac = wrong(pair.refresh_token.rsplit(".", 1)[1])
    forged = pair.refresh_token.rsplit(".", 1)[0] + "." + forged_mac
    with pytest.raises(InvalidTokenError):
        await service.refresh_access_token(forged)
    assert [pair for pair in compared if forged_mac in pair] != []


async def test_a_mailed_tokens_hash_is_compared_in_constant_time(
    compared: list[tuple[str, str]],
) -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    token = await service.account_tokens.issue("password-reset", user)
    token_id = token.split(".")[1]
    stored = await service.store.get(keys.account_token("password-reset", token_id), Any)
    with pytest.raises(InvalidAccountTokenError):
        await service.reset_password(wrong(token), "Another-horse-42")
    assert [pair for pair in compared if stored.value["digest"] in pair] != []


async def test_a_device_cookies_mac_and_name_tags_are_compared_in_constant_time(
    compared: list[tuple[str, str]],
) -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    devices = DeviceCookies([SECRET])
    value = devices.sign(Device(user.id, "d" * 32), user)
    name = account_keys(user)[0]
    assert devices.verify(value, name) is not None
    compared.clear()
    forged_mac = wrong(value.rsplit(".", 1)[1])
    assert devices.verify(value.rsplit(".", 1)[0] + "." + forged_mac, name) is None
    assert [pair for pair in compared if forged_mac in pair] != []
    # The tags of the account's two names, each compared with the tag of the name typed.
    tags = value.split(".")[4:6]
    assert all(any(tag in pair for pair in compared) for tag in tags)


def test_the_demo_outbox_key_is_compared_in_constant_time(
    compared: list[tuple[str, str]],
) -> None:
    key = "k" * 43
    header = (KEY_HEADER.lower().encode(), wrong(key).encode())
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [header]})
    assert not _holds_key(request, key)
    assert (wrong(key), key) in compared
