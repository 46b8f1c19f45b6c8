"""Overhead of BearerTokenMiddleware + BlacklistMiddleware, side by side in one run.

    python -m benchmarks.bench_middleware [--smoke]

Every variant is an ASGI app called directly with a pre-built scope and no-op
receive/send, interleaved round by round so that drift (CPU frequency, other load) hits all
of them alike (benchmarks.harness); the figures are CPU time per call, medians over rounds.

- bare: the app alone — the baseline subtracted from the others;
- s3auth (token reused): our two middlewares, the same token every request;
- starlette+joserfc: Starlette's AuthenticationMiddleware with an HS256 backend that
  decodes with joserfc and validates the claims with JWTClaimsRegistry (what one writes
  without a cache);
- first-seen tokens: our stack with a new token each request (cache misses, evictions)
  vs. the bare joserfc `jwt.decode` + `JWTClaimsRegistry.validate` of the same tokens.

Targets: reused-token overhead <= 10 µs, >= 5x less than starlette+joserfc; with the cache
off, no more than starlette+joserfc doing the same work (<= 1.0x); first-seen within 1.3x
of bare joserfc.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection

from benchmarks.harness import Bench, Runner, at_least, at_most, interleave, standalone
from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware

TITLE = "Bearer + blacklist middlewares against Starlette AuthenticationMiddleware + joserfc"
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"
HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"bench/1.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
]

Call = Callable[[], Awaitable[None]]


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    return None


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


def http_scope(token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/api/items/42",
        "raw_path": b"/api/items/42",
        "root_path": "",
        "query_string": b"",
        "headers": [*HEADERS, (b"authorization", f"Bearer {token}".encode())],
        "client": ("10.0.0.1", 51234),
        "server": ("10.0.0.2", 443),
    }


class JoserfcBackend(AuthenticationBackend):
    """A typical hand-written backend: decode and validate on every request."""

    def __init__(self, secret: str) -> None:
        self.key = OctKey.import_key(secret.encode())
        self.registry = JWTClaimsRegistry(
            sub={"essential": True}, exp={"essential": True}, jti={"essential": True}
        )

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            decoded = jwt.decode(token, self.key, algorithms=["HS256"])
            self.registry.validate(decoded.claims)
        except Exception as exc:
            raise AuthenticationError("invalid token") from exc
        scopes = str(decoded.claims.get("scope", "")).split()
        return AuthCredentials(["authenticated", *scopes]), SimpleUser(decoded.claims["sub"])


async def build_service() -> tuple[S3AuthService, list[str]]:
    settings = S3AuthSettings(secret_key=SECRET, store_url="memory://")
    service = S3AuthService(settings)
    user = await service.create_user(
        "bench", "bench@example.com", "Bench-Password-123", scopes=["items:read"]
    )
    pair = await service.create_token_pair(user)
    return service, [pair.access_token]


def issue_tokens(service: S3AuthService, count: int) -> list[str]:
    return [
        service.tokens.issue_access_token(
            user_id=f"{i:032x}",
            username=f"user{i}",
            session_id=f"{int(time.time() * 1000):012x}{i:020x}",
            is_admin=False,
            scopes=["items:read"],
        )[0]
        for i in range(count)
    ]


def looped(call: Call) -> Runner:
    async def run(n: int) -> None:
        for _ in range(n):
            await call()

    return run


def caller(app: Any, scope: dict[str, Any]) -> Call:
    async def call() -> None:
        await app(scope, receive, send)

    return call


def run(bench: Bench) -> None:
    service, (token,) = asyncio.run(build_service())
    exclude = ("/health", "/docs", "/docs/*", "/openapi.json")  # a typical configuration
    ours = BearerTokenMiddleware(BlacklistMiddleware(bare_app, service), service, exclude=exclude)
    uncached = BearerTokenMiddleware(
        BlacklistMiddleware(bare_app, service), service, exclude=exclude, cache_size=0
    )
    starlette = AuthenticationMiddleware(bare_app, backend=JoserfcBackend(SECRET))
    reused_calls = {
        "bare": caller(bare_app, http_scope(token)),
        "s3auth": caller(ours, http_scope(token)),
        "s3auth_no_cache": caller(uncached, http_scope(token)),
        "starlette_joserfc": caller(starlette, http_scope(token)),
    }
    # The first request of each loads the revocation snapshot, on the loop it then runs on.
    samples = interleave(
        {name: looped(call) for name, call in reused_calls.items()},
        rounds=bench.rounds(21),
        batch=bench.size(2_000, smoke=50),
        prepare=reused_calls,
    )
    us = 1e-3
    section = bench.section(
        "middleware",
        "Token middlewares: the same token every request",
        "CPU µs per request over the bare ASGI app (taken off round by round), interleaved "
        "rounds; starlette+joserfc is AuthenticationMiddleware with a backend that decodes "
        "with joserfc and validates the claims (sub, exp, jti essential) every request",
    )
    section.row(
        "s3auth overhead, token reused", samples.minus("s3auth", "bare", us), "µs", at_most(10)
    )
    section.row("starlette+joserfc overhead", samples.minus("starlette_joserfc", "bare", us), "µs")
    section.row(
        "starlette+joserfc / s3auth overhead",
        samples.ratio("starlette_joserfc", "s3auth", "bare"),
        "x",
        at_least(5),
    )
    section.row("s3auth overhead, cache off", samples.minus("s3auth_no_cache", "bare", us), "µs")
    section.row(
        "s3auth cache off / starlette+joserfc overhead",
        samples.ratio("s3auth_no_cache", "starlette_joserfc", "bare"),
        "x",
        at_most(1.0),
    )
    first_seen_rows(bench, service, token, ours, exclude)


def first_seen_rows(
    bench: Bench, service: S3AuthService, token: str, ours: Any, exclude: tuple[str, ...]
) -> None:
    """A new token each request. "Cache full": more tokens than the LRU holds, so every call
    misses and evicts (the worst case); "cache with room": every call misses, none evicts.
    A server builds each scope anew, so one scope is reused and only its Authorization
    header changes: both sides touch one new token per call."""
    rounds, batch = bench.rounds(21), bench.size(400, smoke=20)
    calls = (rounds + 1) * batch
    if bench.smoke:  # a small cache, so that few tokens fill it
        ours = BearerTokenMiddleware(
            BlacklistMiddleware(bare_app, service), service, exclude=exclude, cache_size=16
        )
    fresh_tokens = issue_tokens(service, max(2 * ours.cache.max_size, calls) + 1)
    authorizations = [(b"authorization", f"Bearer {t}".encode()) for t in fresh_tokens]
    roomy = BearerTokenMiddleware(
        BlacklistMiddleware(bare_app, service), service, exclude=exclude, cache_size=calls + 1
    )
    key = OctKey.import_key(SECRET.encode())
    registry = JWTClaimsRegistry(
        sub={"essential": True},
        jti={"essential": True},
        sid={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )

    def first_seen(app: Any) -> Runner:
        scope = http_scope(token)
        headers = scope["headers"]
        position = 0

        async def run(n: int) -> None:
            nonlocal position
            for _ in range(n):
                position = (position + 1) % len(authorizations)
                headers[-1] = authorizations[position]
                await app(scope, receive, send)

        return run

    position = 0

    def joserfc_first_seen(n: int) -> None:
        nonlocal position
        for _ in range(n):
            position = (position + 1) % len(fresh_tokens)
            registry.validate(jwt.decode(fresh_tokens[position], key, algorithms=["HS256"]).claims)

    samples = interleave(
        {
            "cache_full": first_seen(ours),
            "cache_with_room": first_seen(roomy),
            "joserfc": joserfc_first_seen,
        },
        rounds=rounds,
        batch=batch,
        prepare={
            "cache_full": caller(ours, http_scope(token)),
            "cache_with_room": caller(roomy, http_scope(token)),
        },
    )
    section = bench.section(
        "first_seen",
        "Token middlewares: a new token every request",
        "CPU µs per request, interleaved rounds: our two middlewares with a token never seen "
        "before, against the bare joserfc decode + claims validation of the same tokens",
    )
    section.row("s3auth, cache full", samples.stats("cache_full", 1e-3), "µs")
    section.row("s3auth, cache with room", samples.stats("cache_with_room", 1e-3), "µs")
    section.row("bare joserfc decode + validate", samples.stats("joserfc", 1e-3), "µs")
    section.row(
        "cache full / bare joserfc", samples.ratio("cache_full", "joserfc"), "x", at_most(1.3)
    )
    section.row("cache with room / bare joserfc", samples.ratio("cache_with_room", "joserfc"), "x")


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
