"""Request headers as long as a server passes them: uvicorn's h11 parser takes 64 KiB of
headers, its httptools parser megabytes. What the package reads of a header a client wrote,
to store it or to walk it, is a bounded part of it, so that neither the store nor the event
loop pays for the rest (docs/deployment.md, "What else runs on the event loop")."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from conftest import make_service
from test_app import PASSWORD, client_for, declared_for, mounted

from s3auth_asgi.app.origins import ORIGIN_MAX, OriginCheck, own_origin
from s3auth_asgi.identifiers import DEVICE_INFO_MAX, REPORTED_TEXT_READ, clean_text
from s3auth_asgi.ratelimit import ClientIPResolver
from s3auth_asgi.ratelimit.client_ip import FORWARDED_ENTRIES_READ

pytestmark = pytest.mark.anyio

DEVICE_INFO_READ = REPORTED_TEXT_READ * DEVICE_INFO_MAX

H11_HEADERS = 64_000
"""About the most a server on h11 takes, all headers together."""
PROXY = "10.0.0.1"


def fastest(work: Callable[[], object], tries: int = 5) -> float:
    """The least time `work` took in `tries`. A machine busy with other processes gives a
    time slice of theirs, as long as the bounds asserted here, to one try or another,
    hardly to every one; work that scans the megabytes is slow at every try."""
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


async def login_with_user_agent(user_agent: bytes) -> list[dict[str, object]]:
    """The sessions listed after a login that sent `user_agent` (raw bytes, as a server
    hands them on)."""
    service = make_service()
    await service.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(service), declared=declared_for(service.settings)) as client:
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
    took = fastest(lambda: clean_text(value, "device_info", DEVICE_INFO_MAX, truncate=True))
    assert took < 0.025, took


def forwarded_scope(name: bytes, value: str) -> dict[str, object]:
    return {"type": "http", "client": (PROXY, 40000), "headers": [(name, value.encode())]}


def test_a_forwarding_header_is_walked_for_its_right_most_entries_only() -> None:
    """A client among the trusted networks (or any, with every peer trusted) may send
    thousands of trusted addresses; walked to its end, 64 KB of them held the loop 22 ms
    at every request. Past FORWARDED_ENTRIES_READ trusted hops the walk stops, as at a hop
    it cannot read, at the last trusted one."""
    resolver = ClientIPResolver(["10.0.0.0/8"], trust_x_forwarded_for=True)
    hops = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 5_000)]
    chain = ", ".join(["203.0.113.9", *hops])
    assert len(chain) < H11_HEADERS
    key = resolver.client_key(forwarded_scope(b"x-forwarded-for", chain))
    assert key == f"ip:{hops[-FORWARDED_ENTRIES_READ]}"
    assert len(resolver._memo) <= FORWARDED_ENTRIES_READ + 1  # and the peer
    # Within the bound, the chain is walked to its client as ever.
    within = ", ".join(["203.0.113.9", *hops[-(FORWARDED_ENTRIES_READ - 1) :]])
    assert resolver.client_key(forwarded_scope(b"x-forwarded-for", within)) == "ip:203.0.113.9"


def test_a_forwarded_element_is_read_for_its_first_parameters_only() -> None:
    resolver = ClientIPResolver(
        ["10.0.0.0/8"], trust_x_forwarded_for=True, forwarded_header="forwarded"
    )
    padded = "a=b;" * (H11_HEADERS // 5) + "for=203.0.113.9"
    assert resolver.client_key(forwarded_scope(b"forwarded", padded)) == f"ip:{PROXY}"
    usual = "by=10.0.0.1;proto=https;host=example.com;for=203.0.113.9"
    assert resolver.client_key(forwarded_scope(b"forwarded", usual)) == "ip:203.0.113.9"


def origin_scope(host: str, **headers: str) -> dict[str, object]:
    sent = [(b"host", host.encode())]
    sent += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "scheme": "http", "method": "POST", "headers": sent}


def test_an_origin_longer_than_any_host_name_is_not_parsed() -> None:
    """A host name has 253 characters at most. Parsed whole, an `Origin` (or a `Host`, or
    a `Referer`'s origin) of 64 KB held the loop 2 ms at every refused request, and one of
    the megabytes httptools passes 0.1 s: one longer than ORIGIN_MAX is no origin."""
    check = OriginCheck(make_service(refresh_cookie=True).settings)
    name = "a." * 30_000 + "example"
    assert check.refusal(origin_scope(name, origin=f"http://{name}")) is not None
    assert own_origin(origin_scope(name)) is None
    cookie = "s3auth_refresh=x"
    referer = f"http://{name}/"
    assert check.refusal(origin_scope(name, cookie=cookie, referer=referer)) is not None
    # Where the limit lies: the longest origin is still compared.
    name = "a." * ((ORIGIN_MAX - len("http://x")) // 2) + "x"
    assert len(f"http://{name}") <= ORIGIN_MAX
    assert check.refusal(origin_scope(name, origin=f"http://{name}")) is None


def test_an_origin_of_megabytes_is_refused_at_once() -> None:
    """Parsed whole, 2 MB took 0.16 s; refused by its length, 0.2 ms. The bound is ten
    times either."""
    check = OriginCheck(make_service(refresh_cookie=True).settings)
    scope = origin_scope("example.com", origin="http://" + "a." * 1_000_000 + "!")
    assert check.refusal(scope) is not None
    took = fastest(lambda: check.refusal(scope))
    assert took < 0.015, took
