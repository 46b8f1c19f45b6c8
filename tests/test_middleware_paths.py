"""Which requests need a token: patterns, methods, and paths crafted to dodge them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    Clock,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
    ok_app,
)

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.path_forms import normalise
from s3auth_asgi.paths import PathAccess, PathRules
from s3auth_asgi.ratelimit import RateLimitRule

RULES = PathRules(exclude=("/health", "/docs", "/docs/*", "/static/*"))


def decide(
    path: str, *, raw_path: bytes | None = None, root_path: str = "", **kw: Any
) -> PathAccess:
    scope = http_scope(path, raw_path=raw_path, root_path=root_path, **kw)
    return RULES.decide(scope)[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health", PathAccess.SKIP),
        ("/health/", PathAccess.SKIP),  # an exact exclusion takes one trailing slash
        ("/health//", PathAccess.REQUIRED),  # and no more
        ("/healthz", PathAccess.REQUIRED),
        ("/docs", PathAccess.SKIP),
        ("/docs/", PathAccess.SKIP),
        ("/docs/oauth2-redirect", PathAccess.SKIP),
        ("/docsearch", PathAccess.REQUIRED),  # an exclusion ends at a segment
        ("/static/app.js", PathAccess.SKIP),
        ("/static", PathAccess.REQUIRED),  # "/static/*" needs the slash
        ("/api/items", PathAccess.REQUIRED),
        ("/", PathAccess.REQUIRED),
        ("/.well-known/jwks.json", PathAccess.REQUIRED),
    ],
)
def test_patterns(path: str, expected: PathAccess) -> None:
    assert decide(path) == expected


@pytest.mark.parametrize("pattern", ["/auth*", "/docs*", "/schema*", "/api/v1*"])
def test_an_exclusion_that_would_skip_a_longer_name_is_refused(pattern: str) -> None:
    # "/auth*" skipped "/authors" too: a host route left open by an exclusion meant for
    # the auth app. The refusal names the pattern that means what was meant.
    stem = pattern.removesuffix("*")
    with pytest.raises(ConfigurationError, match=re.escape(f"{stem!r}, '{stem}/*'")):
        PathRules(exclude=("/health", pattern))
    with pytest.raises(ConfigurationError, match="exclude"):
        BearerTokenMiddleware(ok_app, make_clocked_service(clock=Clock()), exclude=[pattern])


def test_prefixes_that_end_at_a_segment_and_protected_prefixes_stay_allowed() -> None:
    rules = PathRules(protected={"/*": [], "/admin*": ["admin"]}, exclude=("/auth", "/auth/*"))
    assert rules.decide(http_scope("/auth"))[0] == PathAccess.SKIP
    assert rules.decide(http_scope("/auth/"))[0] == PathAccess.SKIP
    assert rules.decide(http_scope("/auth/login"))[0] == PathAccess.SKIP
    assert rules.decide(http_scope("/authors"))[0] == PathAccess.REQUIRED
    assert rules.decide(http_scope("/auth.json"))[0] == PathAccess.REQUIRED
    # Protecting or limiting more than meant is the safe direction: a bare prefix stays.
    assert rules.decide(http_scope("/administrators")) == (PathAccess.REQUIRED, ("admin",))
    assert RateLimitRule("/api*", "api").matches(http_scope("/apis"))
    assert PathRules(exclude=("/*",)).decide(http_scope("/anything"))[0] == PathAccess.SKIP


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
    assert decide(path) == PathAccess.REQUIRED


def test_a_path_the_app_may_route_either_way_gets_the_stricter_outcome() -> None:
    # Both forms are excluded: fine to skip.
    assert decide("/docs//oauth2-redirect") == PathAccess.SKIP
    assert decide("/docs/./x") == PathAccess.SKIP
    # Either form is protected: protected.
    assert decide("//health") == PathAccess.REQUIRED
    assert decide("/admin/../health") == PathAccess.REQUIRED
    assert decide("/health/.") == PathAccess.REQUIRED


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
    assert decide(decoded.decode(), raw_path=raw_path) == PathAccess.REQUIRED


def test_other_percent_encoding_is_matched_after_decoding() -> None:
    assert decide("/docs/admin", raw_path=b"/docs/admin") == PathAccess.SKIP
    # "/%64ocs" is "/docs": the app routes the decoded path, so does the matcher.
    assert decide("/docs", raw_path=b"/%64ocs") == PathAccess.SKIP
    assert decide("/api/items", raw_path=b"/api/%69tems") == PathAccess.REQUIRED


def test_patterns_are_relative_to_root_path() -> None:
    assert decide("/api/health", root_path="/api") == PathAccess.SKIP
    assert decide("/api", root_path="/api") == PathAccess.REQUIRED
    assert decide("/api/docs/x", root_path="/api") == PathAccess.SKIP
    # Outside the root, Starlette (and so FastAPI) routes the path as it is.
    assert decide("/health", root_path="/api") == PathAccess.SKIP
    assert decide("/apihealth", root_path="/api") == PathAccess.REQUIRED


def test_the_host_header_and_forwarding_headers_are_never_read() -> None:
    crafted = [
        (b"host", b"localhost/health"),
        (b"x-forwarded-prefix", b"/health"),
        (b"x-original-url", b"/health"),
        (b"x-rewrite-url", b"/health"),
        (b"forwarded", b"host=health"),
    ]
    assert decide("/admin", headers=crafted) == PathAccess.REQUIRED


def test_methods_and_optional_paths() -> None:
    rules = PathRules(protected=("/api/*",), methods=("POST",))
    assert rules.decide(http_scope("/api/x", method="POST"))[0] == PathAccess.REQUIRED
    assert rules.decide(http_scope("/api/x", method="GET"))[0] == PathAccess.OPTIONAL
    assert rules.decide(http_scope("/public", method="POST"))[0] == PathAccess.OPTIONAL
    websocket = {"type": "websocket", "path": "/api/ws", "raw_path": b"/api/ws"}
    assert rules.decide(websocket)[0] == PathAccess.REQUIRED  # the path alone decides


def test_scopes_of_every_matching_pattern_are_required() -> None:
    rules = PathRules(protected={"/*": [], "/admin*": ["admin"], "/admin/audit*": ["audit"]})
    assert rules.decide(http_scope("/admin/audit/log")) == (PathAccess.REQUIRED, ("admin", "audit"))
    assert rules.decide(http_scope("/admin/x/../audit")) == (
        PathAccess.REQUIRED,
        ("admin", "audit"),
    )
    assert rules.decide(http_scope("/items")) == (PathAccess.REQUIRED, ())
    suspicious = http_scope("/admin%2Faudit", raw_path=b"/admin%2Faudit")
    # Unreadable: the scopes of every form, as routed and as received (`/admin/audit`).
    assert rules.decide(suspicious) == (PathAccess.REQUIRED, ("admin", "audit"))
    unreadable_as_routed = http_scope("/admin%2Fx", raw_path=b"/admin%2Fx")
    assert rules.decide(unreadable_as_routed) == (PathAccess.REQUIRED, ("admin",))


def test_decisions_are_remembered_but_bounded() -> None:
    rules = PathRules(exclude=("/health",))
    for i in range(5000):
        rules.decide(http_scope(f"/items/{i}"))
    assert len(rules._memo) <= 2048
    assert rules.decide(http_scope("/health"))[0] == PathAccess.SKIP


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
    if RULES.decide(http_scope(path))[0] == PathAccess.SKIP:
        resolved = normalise(path)
        assert resolved in ("/health", "/docs") or resolved.startswith(("/docs/", "/static/"))
        assert path in ("/health", "/docs") or path.startswith(("/docs/", "/static/"))


# Through the middleware --------------------------------------------------------------


@pytest.mark.anyio
async def test_crafted_paths_are_refused_by_the_middleware() -> None:
    service = make_clocked_service(clock=Clock())
    _, pair = await login(service)
    app = BearerTokenMiddleware(ok_app, service, exclude=("/health", "/docs", "/docs/*"))
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
