"""Request headers as long as a server passes them: uvicorn's h11 parser takes 64 KiB of
headers, its httptools parser megabytes. What the package reads of a header a client wrote,
to store it or to walk it, is a bounded part of it, so that neither the store nor the event
loop pays for the rest (docs/deployment.md, "What else runs on the event loop")."""

from __future__ import annotations

import time

import pytest
from conftest import make_service
from test_app import PASSWORD, client_for, mounted

from s3auth_asgi.identifiers import DEVICE_INFO_MAX, DEVICE_INFO_READ, clean_text

pytestmark = pytest.mark.anyio

H11_HEADERS = 64_000
"""About the most a server on h11 takes, all headers together."""


async def login_with_user_agent(user_agent: bytes) -> list[dict[str, object]]:
    """The sessions listed after a login that sent `user_agent` (raw bytes, as a server
    hands them on)."""
    service = make_service()
    await service.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(service)) as client:
        answer = await client.post(
            "/auth/login",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            headers={"User-Agent": user_agent},  # type: ignore[dict-item]
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        listed = await client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    sessions: list[dict[str, object]] = listed.json()["sessions"]
    return sessions


async def test_a_session_stores_a_bounded_prefix_of_the_user_agent() -> None:
    """Bytes 0x80-0x9F are field content HTTP allows (obs-text) and C1 controls once read
    as Latin-1, which the stored text drops. Scanned to its end, a header of them made the
    session record the product written after 60 KB of them; only the first
    DEVICE_INFO_READ characters are read, so it records none."""
    (session,) = await login_with_user_agent(b"\x85" * (H11_HEADERS - 100) + b"curl/8.5")
    assert session["device_info"] is None


async def test_a_long_user_agent_is_stored_cut_to_its_length() -> None:
    (session,) = await login_with_user_agent(b"Mozilla/5.0 (" + b"a;" * 30_000)
    assert session["device_info"] == ("Mozilla/5.0 (" + "a;" * 200)[:DEVICE_INFO_MAX]


def test_cleaning_reported_text_reads_only_its_prefix() -> None:
    hidden = "\x85" * DEVICE_INFO_READ
    assert clean_text(hidden + "curl/8.5", "device_info", DEVICE_INFO_MAX, truncate=True) is None
    shown = "\x85" * (DEVICE_INFO_READ - 8) + "curl/8.5"
    assert clean_text(shown, "device_info", DEVICE_INFO_MAX, truncate=True) == "curl/8.5"
    # Text a client does not report about itself is still judged whole: too long is refused.
    with pytest.raises(ValueError, match="at most 200"):
        clean_text(hidden + "x" * 201, "full_name", 200)


def test_a_user_agent_of_megabytes_is_cleaned_at_once() -> None:
    """Scanned to its end, 4 MB took 0.25 s of the event loop; the prefix takes
    microseconds. The bound is ten times either."""
    value = "Mozilla/5.0 (" + "a;" * 2_000_000
    started = time.perf_counter()
    clean_text(value, "device_info", DEVICE_INFO_MAX, truncate=True)
    assert time.perf_counter() - started < 0.025
