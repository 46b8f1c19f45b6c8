"""Configuration that could never do what it says is refused when the middleware is built."""

from __future__ import annotations

import re

import pytest
from support import Clock, RecordingApp, asgi_client, call_http, http_scope, make_clocked_service

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.paths import PathAccess, PathRules
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule

pytestmark = pytest.mark.anyio

SERVICE = make_clocked_service(clock=Clock())


async def test_an_exclusion_ending_in_a_slash_is_refused_and_what_it_says_to_write_works() -> None:
    # A request to "/public/" is judged as "/public" too (Litestar strips the slash), and
    # "/public/" alone excludes no such form: the stricter outcome always won, a 401.
    for exclude in (["/public/"], ["/public/", "/public/*"], ["/a/*", "/public/"]):
        with pytest.raises(ConfigurationError, match=re.escape("('/public', '/public/*')")):
            BearerTokenMiddleware(RecordingApp(), SERVICE, exclude=exclude)
    for exclude in (["/public", "/public/*"], ["/public", "/public/"], ["/pub/*", "/pub/x/"]):
        app = BearerTokenMiddleware(RecordingApp(), SERVICE, exclude=exclude)
        target = "/pub/x/" if "/pub/*" in exclude else "/public/"
        assert (await call_http(app, http_scope(target))).status == 200
    # The root is no slash to strip: it excludes itself.
    assert PathRules(exclude=("/",)).decide(http_scope("/"))[0] is PathAccess.SKIP
    # "/public" alone skips "/public/" too, which the app redirects to or routes as
    # "/public"; a protected pattern naming "/public/" alone keeps it protected.
    app = BearerTokenMiddleware(RecordingApp(), SERVICE, exclude=["/public"])
    assert (await call_http(app, http_scope("/public/"))).status == 200
    app = BearerTokenMiddleware(
        RecordingApp(), SERVICE, protected=["/public/*"], exclude=["/public"]
    )
    assert (await call_http(app, http_scope("/public/"))).status == 401


@pytest.mark.parametrize(
    ("protected", "exclude", "named"),
    [
        (["/health"], ["/health"], "/health"),
        ({"/*": [], "/docs/*": ["admin"]}, ["/docs", "/docs/*"], "/docs/*"),
        (["/api/*", "/admin/"], ["/admin", "/admin/", "/api/*"], "/admin/"),
        (["/*"], ["/*"], "/*"),
        (["/a/b*"], ["/a/*"], "/a/b*"),
    ],
)
def test_a_protected_pattern_every_path_of_which_is_excluded_is_refused(
    protected: list[str] | dict[str, list[str]], exclude: list[str], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"protected: {named!r}")):
        BearerTokenMiddleware(RecordingApp(), SERVICE, protected=protected, exclude=exclude)


def test_a_protected_pattern_excluded_in_part_still_counts() -> None:
    # "/docs/*" protects "/docs" too, which the exclusion leaves out.
    rules = PathRules(protected=("/docs/*",), exclude=("/docs/*",))
    assert rules.decide(http_scope("/docs"))[0] is PathAccess.REQUIRED
    assert rules.decide(http_scope("/docs/x"))[0] is PathAccess.SKIP
    # A longer exclusion covers part of a shorter protected prefix.
    rules = PathRules(protected=("/a/*",), exclude=("/a/b/*",))
    assert rules.decide(http_scope("/a/c"))[0] is PathAccess.REQUIRED
    # Under the default, which nobody wrote, excluding every path stays a plain choice.
    everything = BearerTokenMiddleware(RecordingApp(), SERVICE, exclude=["/*"])
    assert everything.rules.decide(http_scope("/admin"))[0] is PathAccess.SKIP


def test_an_empty_method_list_is_refused() -> None:
    # No HTTP request would need a token anywhere: `None` is what means every method.
    with pytest.raises(ConfigurationError, match="None"):
        BearerTokenMiddleware(RecordingApp(), SERVICE, methods=[])


async def test_a_rule_whose_cost_an_earlier_rule_always_decides_is_refused() -> None:
    limiter = RateLimiter(limits={"api": RateLimit(20, 60), "other": RateLimit(20, 60)})
    shadowed = [
        [RateLimitRule("/api/*", "api"), RateLimitRule("/api/export", "api", cost=10)],
        [RateLimitRule("/api/*", "api"), RateLimitRule("/api/x/*", "api", cost=2)],
        [RateLimitRule("/api/", "api"), RateLimitRule("/api", "api", cost=2)],
        [
            RateLimitRule("/x", "api", methods=["GET", "POST"]),
            RateLimitRule("/x", "api", methods=["HEAD"], cost=2),
        ],
    ]
    for rules in shadowed:
        with pytest.raises(ConfigurationError, match=re.escape(f"{rules[1].path!r}")):
            RateLimitMiddleware(RecordingApp(), limiter, rules)
    kept = [
        # The more specific first: the order the docs show.
        [RateLimitRule("/api/export", "api", cost=10), RateLimitRule("/api/*", "api")],
        # Another limit, another method, a path the first does not always match.
        [RateLimitRule("/api/*", "api"), RateLimitRule("/api/export", "other", cost=10)],
        [RateLimitRule("/x", "api", methods=["POST"]), RateLimitRule("/x", "api", cost=2)],
        [RateLimitRule("/api/x/*", "api"), RateLimitRule("/api/*", "api", cost=2)],
        # The same cost twice: redundant, not misleading.
        [RateLimitRule("/api/*", "api"), RateLimitRule("/api/export", "api")],
    ]
    for rules in kept:
        RateLimitMiddleware(RecordingApp(), limiter, rules)
    app = RateLimitMiddleware(RecordingApp(), limiter, kept[0])
    async with asgi_client(app) as client:
        assert (await client.get("/api/export")).headers["ratelimit"].startswith('"api";r=10;')


async def test_rules_given_once_through_are_all_kept() -> None:
    # A generator was checked rule by rule, then kept empty: nothing was limited.
    limiter = RateLimiter(limits={"api": RateLimit(1, 60)})
    rules = (RateLimitRule(path, "api") for path in ("/api/*",))
    app = RateLimitMiddleware(RecordingApp(), limiter, rules)  # type: ignore[arg-type]
    async with asgi_client(app) as client:
        assert (await client.get("/api/x")).status_code == 200
        assert (await client.get("/api/x")).status_code == 429
    with pytest.raises(ConfigurationError, match="non-empty"):
        RateLimitMiddleware(RecordingApp(), limiter, iter(()))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="list of rules"):
        RateLimitMiddleware(RecordingApp(), limiter, 3)  # type: ignore[arg-type]
