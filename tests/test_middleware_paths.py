"""Which requests need a token: patterns, methods, and paths crafted to dodge them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_middleware_support import (
    Clock,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
)

from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.paths import Access, PathRules, normalise

RULES = PathRules(exclude=("/health", "/docs*", "/static/*"))


def decide(path: str, *, raw_path: bytes | None = None, root_path: str = "", **kw: Any) -> Access:
    scope = http_scope(path, raw_path=raw_path, root_path=root_path, **kw)
    return RULES.decide(scope)[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health", Access.SKIP),
        ("/health/", Access.REQUIRED),  # exact patterns are exact
        ("/healthz", Access.REQUIRED),
        ("/docs", Access.SKIP),
        ("/docs/", Access.SKIP),
        ("/docs/oauth2-redirect", Access.SKIP),
        ("/docsearch", Access.SKIP),  # "/docs*" is a plain prefix
        ("/static/app.js", Access.SKIP),
        ("/static", Access.REQUIRED),  # "/static/*" needs the slash
        ("/api/items", Access.REQUIRED),
        ("/", Access.REQUIRED),
        ("/.well-known/jwks.json", Access.REQUIRED),
    ],
)
def test_patterns(path: str, expected: Access) -> None:
    assert decide(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/health/../admin",
        "/health/./../admin",
        "/docs/../admin",
        "/docs/../../admin",
        "/static/../admin",
        "/docs/..",
        "/docs/%2e%2e/admin",  # a literal % after decoding: refused as unreadable
        "/health\\..\\admin",
        "/health\x00",
        "/docs\x00/../admin",
        "/he\u200balth",
        "health",
        "",
    ],
)
def test_dot_segments_and_odd_characters_cannot_reach_an_exclusion(path: str) -> None:
    assert decide(path) == Access.REQUIRED


def test_a_path_the_app_may_route_either_way_gets_the_stricter_outcome() -> None:
    # Both forms are excluded: fine to skip.
    assert decide("/docs//oauth2-redirect") == Access.SKIP
    assert decide("/docs/./x") == Access.SKIP
    # Either form is protected: protected.
    assert decide("//health") == Access.REQUIRED
    assert decide("/admin/../health") == Access.REQUIRED
    assert decide("/health/.") == Access.REQUIRED


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/health%2F..%2Fadmin",
        b"/docs%2f..%2fadmin",
        b"/health%5C..",
        b"/health%00",
        # Decodes to the canonical, excluded "/docs/admin"; an app routing on raw_path
        # sees one segment "docs/admin", which may be a protected "/{name}" route.
        b"/docs%2Fadmin",
        b"/static/x%2fy",
    ],
)
def test_encoded_separators_in_raw_path_are_never_excluded(raw_path: bytes) -> None:
    decoded = raw_path.replace(b"%2F", b"/").replace(b"%2f", b"/").replace(b"%5C", b"\\")
    decoded = decoded.replace(b"%00", b"\x00")
    assert decide(decoded.decode(), raw_path=raw_path) == Access.REQUIRED


def test_other_percent_encoding_is_matched_after_decoding() -> None:
    assert decide("/docs/admin", raw_path=b"/docs/admin") == Access.SKIP
    # "/%64ocs" is "/docs": the app routes the decoded path, so does the matcher.
    assert decide("/docs", raw_path=b"/%64ocs") == Access.SKIP
    assert decide("/api/items", raw_path=b"/api/%69tems") == Access.REQUIRED


def test_patterns_are_relative_to_root_path() -> None:
    assert decide("/api/health", root_path="/api") == Access.SKIP
    assert decide("/api", root_path="/api") == Access.REQUIRED
    assert decide("/api/docs/x", root_path="/api") == Access.SKIP
    assert decide("/health", root_path="/api") == Access.REQUIRED  # outside the root
    assert decide("/apihealth", root_path="/api") == Access.REQUIRED


def test_the_host_header_and_forwarding_headers_are_never_read() -> None:
    crafted = [
        (b"host", b"localhost/health"),
        (b"x-forwarded-prefix", b"/health"),
        (b"x-original-url", b"/health"),
        (b"x-rewrite-url", b"/health"),
        (b"forwarded", b"host=health"),
    ]
    assert decide("/admin", headers=crafted) == Access.REQUIRED


def test_methods_and_optional_paths() -> None:
    rules = PathRules(protected=("/api/*",), methods=("POST",))
    assert rules.decide(http_scope("/api/x", method="POST"))[0] == Access.REQUIRED
    assert rules.decide(http_scope("/api/x", method="GET"))[0] == Access.OPTIONAL
    assert rules.decide(http_scope("/public", method="POST"))[0] == Access.OPTIONAL
    websocket = {"type": "websocket", "path": "/api/ws", "raw_path": b"/api/ws"}
    assert rules.decide(websocket)[0] == Access.REQUIRED  # the path alone decides


def test_scopes_of_every_matching_pattern_are_required() -> None:
    rules = PathRules(protected={"/*": [], "/admin*": ["admin"], "/admin/audit*": ["audit"]})
    assert rules.decide(http_scope("/admin/audit/log")) == (Access.REQUIRED, ("admin", "audit"))
    assert rules.decide(http_scope("/admin/x/../audit")) == (Access.REQUIRED, ("admin", "audit"))
    assert rules.decide(http_scope("/items")) == (Access.REQUIRED, ())
    suspicious = http_scope("/admin%2Faudit", raw_path=b"/admin%2Faudit")
    assert rules.decide(suspicious) == (Access.REQUIRED, ("admin",))


def test_decisions_are_remembered_but_bounded() -> None:
    rules = PathRules(exclude=("/health",))
    for i in range(5000):
        rules.decide(http_scope(f"/items/{i}"))
    assert len(rules._memo) <= 2048
    assert rules.decide(http_scope("/health"))[0] == Access.SKIP


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/../c", "/a/c"),
        ("/a/./b/", "/a/b/"),
        ("//a///b", "/a/b"),
        ("/../../a", "/a"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/", "/"),
    ],
)
def test_normalise(path: str, expected: str) -> None:
    assert normalise(path) == expected


PIECES = ["/", ".", "..", "%2f", "\\", "\x00", "health", "docs", "static", "admin", "x"]


@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_nothing_that_normalises_to_a_protected_path_is_skipped(path: str) -> None:
    """If the app could read the path as one outside the exclusions, it needs a token."""
    if RULES.decide(http_scope(path))[0] == Access.SKIP:
        resolved = normalise(path)
        assert resolved.startswith(("/docs", "/static/")) or resolved == "/health"
        assert path.startswith(("/docs", "/static/")) or path == "/health"


# Through the middleware --------------------------------------------------------------


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.anyio
async def test_crafted_paths_are_refused_by_the_middleware() -> None:
    service = make_clocked_service(clock=Clock())
    _, pair = await login(service)
    app = BearerTokenMiddleware(_ok, service, exclude=("/health", "/docs*"))
    crafted = [
        http_scope("/health/../admin"),
        http_scope("/docs/../admin/users"),
        http_scope("/health/../admin", raw_path=b"/health%2F..%2Fadmin"),
        http_scope("/admin", headers=[(b"host", b"health")]),
        http_scope("//health"),
    ]
    for scope in crafted:
        assert (await call_http(app, scope)).status == 401, scope["path"]
    assert (await call_http(app, http_scope("/health"))).status == 200
    authorised = http_scope("/health/../admin", headers=bearer(pair.access_token))
    assert (await call_http(app, authorised)).status == 200
