"""RateLimitMiddleware as pure ASGI: rules, 429 problem documents and headers, WebSockets,
lifespan and body pass-through, and a store that is down."""

from __future__ import annotations

import datetime as dt
import json
import os

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import RecordingApp, StoreWrapper, asgi_client

from s3auth_asgi.errors import ConfigurationError, StoreUnavailableError
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitRule,
)
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.types import Message, Scope

pytestmark = pytest.mark.anyio


def make_limiter(**kwargs: object) -> RateLimiter:
    return RateLimiter(
        limits={"login": RateLimit(2, 60), "api": RateLimit(4, 60)},
        **kwargs,  # type: ignore[arg-type]
    )


RULES = [
    RateLimitRule("/auth/login", "login", methods=["POST"]),
    RateLimitRule("/api/*", "api"),
    RateLimitRule("/auth/login", "api"),
]


async def test_refuses_with_problem_json_and_headers() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)
    async with asgi_client(app) as client:
        first = await client.post("/auth/login")
        second = await client.post("/auth/login")
        third = await client.post("/auth/login")
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert len(inner.scopes) == 2
    # Admitted responses keep the app's headers and gain the rate-limit fields.
    assert first.headers["x-app"] == "yes"
    assert first.headers["ratelimit-policy"] == '"login";q=2;w=60, "api";q=4;w=60'
    assert first.headers["ratelimit"] == '"login";r=1;t=30, "api";r=3;t=15'
    assert third.headers["content-type"] == "application/problem+json"
    assert third.headers.get_list("x-content-type-options") == ["nosniff"]
    assert third.headers["retry-after"] == "30"
    assert third.headers["ratelimit"] == '"login";r=0;t=30, "api";r=1;t=15'
    problem = third.json()
    assert problem["status"] == 429
    assert problem["code"] == "rate_limited"
    assert "'login'" in problem["detail"]


async def test_rules_match_paths_and_methods() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)
    async with asgi_client(app) as client:
        # GET /auth/login is not under "login" (POST only), but the last rule puts it under "api".
        statuses = [(await client.get("/auth/login")).status_code for _ in range(5)]
        assert statuses == [200] * 4 + [429]
        # Paths no rule names are neither counted nor given headers.
        other = await client.get("/health")
        assert other.status_code == 200 and "ratelimit" not in other.headers
        # The "api" limit is per client: another address still passes.
    async with asgi_client(app, ip="198.51.100.9") as client:
        assert (await client.get("/api/users/1")).status_code == 200


async def test_odd_spellings_of_a_path_do_not_escape_its_limit() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)
    odd = ("/auth//login", "/auth/./login", "/api/../auth/login", "//auth/login")
    async with asgi_client(app) as client:
        statuses = []
        for path in ("/auth/login", "/auth/login", *odd):
            request = client.build_request("POST", "http://test/")
            request.url = request.url.copy_with(raw_path=path.encode())
            statuses.append((path, (await client.send(request)).status_code))
    assert statuses == [("/auth/login", 200)] * 2 + [(path, 429) for path in odd]
    assert [scope["path"] for scope in inner.scopes] == ["/auth/login"] * 2


async def test_patterns_are_relative_to_root_path() -> None:
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    mounted: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/prefix/auth/login",
        "root_path": "/prefix",
        "headers": [],
        "client": ("203.0.113.5", 1),
    }
    statuses = []
    for _ in range(3):
        sent = await drive(app, dict(mounted), [{"type": "http.request", "body": b""}])
        statuses.append(sent[0]["status"])
    assert statuses == [200, 200, 429]
    outside = {**mounted, "path": "/elsewhere/auth/login"}
    assert (await drive(app, outside, [{"type": "http.request"}]))[0]["status"] == 200


@pytest.mark.parametrize(
    ("root_path", "raw_path"),
    [
        ("", b"/api/reports/daily"),
        ("/app", b"/app/api/reports/daily"),  # uvicorn: `raw_path` holds `root_path`
        ("/app", b"/api/reports/daily"),  # hypercorn: it does not
        ("", b"/api/reports/caf%C3%A9"),  # percent-encoded, decoded as the server does
    ],
)
async def test_a_path_rewritten_by_routing_is_matched_as_received(
    root_path: str, raw_path: bytes
) -> None:
    # A framework that routed into a mount at /api/reports before the middleware ran,
    # rewriting `path` to what lies below the mount and recording the mount nowhere else.
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    routed: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/daily/",
        "root_path": root_path,
        "raw_path": raw_path,
        "headers": [],
        "client": ("203.0.113.5", 1),
    }
    statuses = []
    for _ in range(5):
        sent = await drive(app, dict(routed), [{"type": "http.request", "body": b""}])
        statuses.append(sent[0]["status"])
    assert statuses == [200] * 4 + [429]  # under `/api/*`


async def test_spoofed_forwarded_for_does_not_escape_the_limit() -> None:
    limiter = make_limiter(trusted_proxies=["10.0.0.1"], trust_x_forwarded_for=True)
    app = RateLimitMiddleware(RecordingApp(), limiter, rules=RULES)
    async with asgi_client(app, ip="198.51.100.7") as client:
        statuses = [
            (
                await client.post("/auth/login", headers={"x-forwarded-for": f"192.0.2.{i}"})
            ).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 429, 429]
    # Behind the trusted proxy, the forwarded address is the client; garbage is no 500.
    async with asgi_client(app, ip="10.0.0.1") as client:
        ok = await client.post("/auth/login", headers={"x-forwarded-for": "192.0.2.1"})
        junk = await client.post("/auth/login", headers={"x-forwarded-for": "\x00;;,[::"})
    assert ok.status_code == 200
    assert junk.status_code == 200


async def test_bodies_stream_through_untouched() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)

    async def chunks():  # type: ignore[no-untyped-def]
        for part in (b"a" * 10, b"b" * 10, b"c"):
            yield part

    async with asgi_client(app) as client:
        response = await client.post("/api/upload", content=chunks())
    assert response.status_code == 200
    assert inner.bodies == [b"a" * 10 + b"b" * 10 + b"c"]


async def drive(app: object, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Run a raw ASGI app with scripted incoming messages; return what it sent."""
    sent: list[Message] = []
    queue = list(incoming)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[operator]
    return sent


def websocket_scope(**extra: object) -> Scope:
    scope: Scope = {
        "type": "websocket",
        "path": "/api/stream",
        "headers": [],
        "client": ("203.0.113.5", 1),
        "subprotocols": [],
    }
    scope.update(extra)
    return scope


async def test_websocket_handshakes_are_limited_and_closed_before_accept() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)
    connect = [{"type": "websocket.connect"}]
    for _ in range(4):
        sent = await drive(app, websocket_scope(), connect)
        assert sent == [{"type": "websocket.accept"}]
    sent = await drive(app, websocket_scope(), connect)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "rate_limited"}]
    assert len(inner.scopes) == 4


async def test_websocket_denial_response_where_the_server_supports_it() -> None:
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    scope = websocket_scope(extensions={"websocket.http.response": {}})
    for _ in range(4):
        await drive(app, dict(scope), [{"type": "websocket.connect"}])
    sent = await drive(app, dict(scope), [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 429
    headers = dict(sent[0]["headers"])
    assert headers[b"retry-after"] == b"15"
    assert headers[b"ratelimit"] == b'"api";r=0;t=15'
    assert json.loads(sent[1]["body"])["code"] == "rate_limited"


async def test_lifespan_and_unknown_scopes_pass_straight_through() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer a lifespan scope")

    for kind in ("lifespan", "webtransport"):
        scope: Scope = {"type": kind}
        await app(scope, receive, send)
        assert inner.scopes[-1] is scope
        assert inner.receives[-1] is receive


async def test_the_app_gets_the_original_receive() -> None:
    inner = RecordingApp()
    app = RateLimitMiddleware(inner, make_limiter(), rules=RULES)
    messages = [{"type": "http.request", "body": b"x", "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/api/x", "headers": []}
    await app(scope, receive, send)
    assert inner.receives == [receive]  # not wrapped, so nothing is read ahead or buffered
    assert sent[0]["status"] == 200


async def test_a_store_that_is_down_is_a_503_not_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    unreachable = ObjectStore.from_url(
        "s3://bucket/auth",
        endpoint="http://127.0.0.1:9",
        retry_config={
            "max_retries": 0,
            "backoff": {
                "init_backoff": dt.timedelta(milliseconds=1),
                "max_backoff": dt.timedelta(milliseconds=1),
                "base": 2,
            },
            "retry_timeout": dt.timedelta(milliseconds=50),
        },
    )
    limiter = make_limiter(stores={"login": ObjectStoreRateLimitStore(unreachable)})
    app = RateLimitMiddleware(RecordingApp(), limiter, rules=RULES)
    async with asgi_client(app) as client:
        response = await client.post("/auth/login")
    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"


class _DownFor(StoreWrapper):
    """Fails (counted) every request for one limit's state, while `down`."""

    def __init__(self, inner: ObjectStore, limit_name: str) -> None:
        super().__init__(inner)
        self.prefix, self.down = f"ratelimit/{limit_name}/", True
        self.keys: list[str] = []

    async def get(self, key: str, type_: type) -> object:  # type: ignore[override]
        self.keys.append(key)
        if self.down and key.startswith(self.prefix):
            self.requests["get"] += 1
            raise StoreUnavailableError("GET failed")
        return await super().get(key, type_)


async def test_a_store_failing_on_a_later_limit_leaves_the_earlier_ones_counted() -> None:
    """Limits are checked in the order of the rules, each counted as it admits: a store that
    fails at the second answers 503 with the first already counted and the third not
    asked. The safe direction: a request answered 503 may spend allowance, never pass
    uncounted."""
    inner = ObjectStore.from_url("memory://")
    store = _DownFor(inner, "second")
    shared = ObjectStoreRateLimitStore(store)
    names = ("first", "second", "third")
    limiter = RateLimiter(
        limits=dict.fromkeys(names, RateLimit(3, 60)), stores=dict.fromkeys(names, shared)
    )
    app = RateLimitMiddleware(RecordingApp(), limiter, [RateLimitRule("/x", n) for n in names])
    async with asgi_client(app) as client:
        refused = await client.get("/x")
        assert refused.status_code == 503
        assert refused.json()["code"] == "store_unavailable"
        assert [key.split("/")[1] for key in store.keys] == ["first", "second"]
        assert dict(inner.requests) == {"get": 2, "put": 1}  # the first's state written
        store.down = False
        admitted = await client.get("/x")
    assert admitted.status_code == 200
    assert admitted.headers["ratelimit"] == '"first";r=1;t=20, "second";r=2;t=20, "third";r=2;t=20'


def test_configuration_is_checked_up_front() -> None:
    limiter = make_limiter()
    with pytest.raises(ConfigurationError, match="'nope'"):
        RateLimitMiddleware(RecordingApp(), limiter, rules=[RateLimitRule("/x", "nope")])
    with pytest.raises(ConfigurationError, match="non-empty"):
        RateLimitMiddleware(RecordingApp(), limiter, rules=[])
    with pytest.raises(ConfigurationError, match="more than"):
        RateLimitMiddleware(RecordingApp(), limiter, rules=[RateLimitRule("/x", "login", cost=3)])
    with pytest.raises(ConfigurationError, match="RateLimiter"):
        RateLimitMiddleware(RecordingApp(), object(), rules=RULES)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="starting with '/'"):
        RateLimitRule("auth/login", "login")
    with pytest.raises(ConfigurationError, match="only at the end"):
        RateLimitRule("/api/*/items", "api")
    with pytest.raises(ConfigurationError, match="normalised"):
        RateLimitRule("/api/../auth", "api")
    with pytest.raises(ConfigurationError, match="methods"):
        RateLimitRule("/x", "login", methods="POST")
    with pytest.raises(ConfigurationError, match="methods"):
        RateLimitRule("/x", "login", methods=["P OST"])


async def test_rule_cost_and_headers_can_be_turned_off() -> None:
    app = RateLimitMiddleware(
        RecordingApp(),
        make_limiter(),
        rules=[RateLimitRule("/api/export", "api", cost=3), RateLimitRule("/api/*", "api")],
        send_headers=False,
    )
    async with asgi_client(app) as client:
        first = await client.get("/api/export")
        second = await client.get("/api/export")
        cheap = await client.get("/api/list")
    assert [first.status_code, second.status_code, cheap.status_code] == [200, 429, 200]
    assert "ratelimit" not in first.headers
    assert second.headers["ratelimit"] == '"api";r=1;t=15'


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["http", "websocket"]),
            st.sampled_from(["GET", "POST", "DELETE"]),
            st.sampled_from(["/auth/login", "/api/x", "/api//x", "/app/api/x", "/", "/auth"]),
            st.sampled_from(["", "/app"]),
            st.sampled_from([None, b"/auth/login", b"/app/api/x", b"/x/"]),
        ),
        max_size=30,
    )
)
def test_remembered_matches_are_the_rules_own(
    requests: list[tuple[str, str, str, str, bytes | None]],
) -> None:
    """Each kind, method and path (as routed and as received) is matched once and
    remembered; the answer is the one the rules give the request itself, whatever came
    before it."""
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    for kind, method, path, root_path, raw_path in requests:
        request: Scope = {"type": kind, "method": method, "path": path, "root_path": root_path}
        if raw_path is not None:
            request["raw_path"] = raw_path
        expected: dict[str, int] = {}
        for rule in RULES:
            if rule.limit not in expected and rule.matches(request):
                expected[rule.limit] = rule.cost
        assert app._counted_against(request)[0] == tuple(expected.items())


def test_the_memo_of_matches_is_bounded() -> None:
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    for i in range(10_000):
        counted, _ = app._counted_against({"type": "http", "method": "GET", "path": f"/api/{i}"})
        assert counted == (("api", 1),)
        assert len(app._counted) <= 4096


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def answer(
    app: RateLimitMiddleware, method: str, path: str, ip: str
) -> tuple[int, dict[str, str]]:
    """Status and rate-limit headers of one raw ASGI request."""
    started: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)

    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "client": (ip, 5000),
    }
    await app(scope, receive, send)
    headers = {
        name.decode(): value.decode()
        for name, value in started[0]["headers"]
        if name.startswith((b"ratelimit", b"retry-after", b"x-ratelimit"))
    }
    return started[0]["status"], headers


@pytest.mark.parametrize("legacy_headers", [False, True])
@settings(max_examples=60, deadline=None)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST"]),
            st.sampled_from(["/auth/login", "/api/x", "/api/export", "/health"]),
            st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
            st.sampled_from([0.0, 0.0, 0.5, 7.0, 31.0]),
        ),
        max_size=40,
    )
)
def test_limits_kept_in_memory_answer_as_any_store_does(
    legacy_headers: bool, requests: list[tuple[str, str, str, float]]
) -> None:
    """Limits kept in process memory are checked without a coroutine or a RateLimitInfo per
    request, and their headers are remembered; every status and header is still the one
    the limiter's own checks and header fields give, here over an object store on the
    same clock."""
    rules = [RateLimitRule("/api/export", "api", cost=3), *RULES]
    clock = ManualClock()
    local = RateLimitMiddleware(
        RecordingApp(),
        make_limiter(store=MemoryRateLimitStore(clock=clock), legacy_headers=legacy_headers),
        rules=rules,
    )
    shared = ObjectStoreRateLimitStore(ObjectStore.from_url("memory://"), clock=clock)
    reference = make_limiter(store=shared, legacy_headers=legacy_headers)

    async def expected(method: str, path: str, ip: str) -> tuple[int, dict[str, str]]:
        scope: Scope = {"type": "http", "method": method, "path": path, "client": (ip, 5000)}
        costs: dict[str, int] = {}
        for rule in rules:
            if rule.limit not in costs and rule.matches(scope):
                costs[rule.limit] = rule.cost
        infos = [
            (await reference.is_rate_limited(scope, name, cost=cost))[1]
            for name, cost in costs.items()
        ]
        headers = {name.lower(): value for name, value in reference.header_items(infos)}
        return (200 if all(info.allowed for info in infos) else 429), headers

    async def run() -> None:
        for method, path, ip, wait in requests:
            clock.now += wait
            assert await answer(local, method, path, ip) == await expected(method, path, ip)
        assert all(found[1] is not None for found in local._counted.values())

    anyio.run(run)


async def test_remembered_headers_are_bounded() -> None:
    app = RateLimitMiddleware(
        RecordingApp(),
        RateLimiter(
            limits={"api": RateLimit(100_000, 60)},
            store=MemoryRateLimitStore(clock=ManualClock()),
        ),
        rules=[RateLimitRule("/*", "api")],
    )
    for i in range(5_000):
        status, headers = await answer(app, "GET", "/", "192.0.2.1")
        assert status == 200
        assert headers["ratelimit"].startswith(f'"api";r={100_000 - 1 - i};')
    assert len(app._answers) <= 4096


async def test_a_path_no_rule_names_is_not_told_apart_by_client() -> None:
    app = RateLimitMiddleware(RecordingApp(), make_limiter(), rules=RULES)
    resolved: list[Scope] = []
    client_keys = app._client_keys

    def counting(scope: Scope) -> tuple[str, str]:
        resolved.append(scope)
        return client_keys(scope)

    app._client_keys = counting
    assert (await answer(app, "GET", "/health", "192.0.2.1"))[0] == 200
    assert resolved == []
    assert (await answer(app, "GET", "/api/x", "192.0.2.1"))[0] == 200
    assert len(resolved) == 1


async def test_the_middleware_and_a_direct_check_count_one_client_alike() -> None:
    # Both key an in-memory limit by the client's compact key: a route that also checks
    # the limit itself spends the same allowance as the middleware, from any path of the
    # resolver (a plain peer, and the same address written as IPv4-mapped IPv6).
    limiter = make_limiter()
    app = RateLimitMiddleware(RecordingApp(), limiter, rules=RULES)
    client = "192.0.2.7"
    assert (await answer(app, "GET", "/api/a", client))[0] == 200
    refused, info = await limiter.is_rate_limited({"client": (client, 1)}, "api")
    assert (refused, info.remaining, info.key) == (False, 2, f"ip:{client}")
    assert (await answer(app, "GET", "/api/b", f"::ffff:{client}"))[0] == 200
    refused, info = await limiter.is_rate_limited({"client": (f"::ffff:{client}", 1)}, "api")
    assert (refused, info.remaining) == (False, 0)
    status, headers = await answer(app, "GET", "/api/c", client)
    assert status == 429
    assert headers["ratelimit"].startswith('"api";r=0;')


async def test_an_admission_that_finds_the_allowance_full_takes_headers_written_once() -> None:
    """Its answer is the same every time at a rule's cost: its headers are written when the
    rule is matched, and only other admissions go through the remembered headers."""
    clock = ManualClock()
    limiter = RateLimiter(limits={"api": RateLimit(4, 60)}, store=MemoryRateLimitStore(clock=clock))
    rules = [RateLimitRule("/export", "api", cost=3), RateLimitRule("/*", "api")]
    app = RateLimitMiddleware(RecordingApp(), limiter, rules=rules)
    for path in ("/x", "/export"):  # the rules matched, each full answer written
        assert (await answer(app, "GET", path, "192.0.2.1"))[0] == 200
    written: list[tuple[object, ...]] = []
    remembered = app._admitted_headers

    def counting(*args: object) -> object:
        written.append(args)
        return remembered(*args)  # type: ignore[arg-type]

    app._admitted_headers = counting  # type: ignore[method-assign,assignment]

    async def ratelimit_field(path: str, ip: str) -> str:
        status, headers = await answer(app, "GET", path, ip)
        assert status == 200
        return headers["ratelimit"]

    assert await ratelimit_field("/x", "192.0.2.2") == '"api";r=3;t=15'
    assert await ratelimit_field("/export", "192.0.2.3") == '"api";r=1;t=15'
    assert written == []
    # In debt: the remembered headers, then full again once the window has passed.
    assert await ratelimit_field("/x", "192.0.2.2") == '"api";r=2;t=15'
    assert len(written) == 1
    clock.now += 60
    assert await ratelimit_field("/x", "192.0.2.2") == '"api";r=3;t=15'
    assert await ratelimit_field("/export", "192.0.2.3") == '"api";r=1;t=15'
    assert len(written) == 1


@pytest.mark.parametrize("send_headers", [True, False])
async def test_every_answer_resolves_the_client_once(send_headers: bool) -> None:
    app = RateLimitMiddleware(
        RecordingApp(),
        make_limiter(),
        rules=[RateLimitRule("/*", "login")],
        send_headers=send_headers,
    )
    resolved: list[Scope] = []
    client_keys = app._client_keys

    def counting(scope: Scope) -> tuple[str, str]:
        resolved.append(scope)
        return client_keys(scope)

    app._client_keys = counting
    statuses = [(await answer(app, "GET", "/x", "192.0.2.1"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(resolved) == 3
