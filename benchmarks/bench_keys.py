"""Access tokens signed with HS256, ES256, EdDSA and RS256: what verifying one costs us
against bare joserfc, and what the middleware adds per request.

    python -m benchmarks.bench_keys [--smoke]

Each algorithm's key is given as S3AUTH_SIGNING_KEY would give it (HS256: the secret), and
a TokenCodec verifies with the key set that makes. The tokens are the ones the codec issues,
a pool of distinct ones walked round and round in the same order by every contender.

- Verification: `TokenCodec.verify_access_token` (AccessTokenCheck: strict header and
  claims, key by kid, algorithm pinned to the key) against `joserfc.jwt.decode` with the
  key + `JWTClaimsRegistry.validate` of the same claims (sub, jti, sid, exp, iat essential,
  the same leeway) and the same `typ` check.
- Reused token: BearerTokenMiddleware around a bare ASGI app, the same token every request
  (the verified-token cache), per algorithm; the bare app alone is taken off.
- First-seen tokens: a new token every request, through the middleware with a cache that
  holds fewer tokens than the pool (every request misses and evicts), against a plain ASGI
  middleware doing the joserfc decode and validation and setting the user; both raw ASGI
  and inside a Starlette app (one route), whose cost without authentication is taken off.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.bench_middleware import bare_app, http_scope, receive, send
from benchmarks.harness import Bench, Runner, Samples, at_most, interleave, standalone
from s3auth_asgi import S3AuthSettings
from s3auth_asgi.access_check import ACCESS_TOKEN_TYPES
from s3auth_asgi.keys.algorithms import Key, generate_key
from s3auth_asgi.keys.material import public_only
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.tokens import TokenCodec

TITLE = "Signing keys: verifying HS256, ES256, EdDSA and RS256 tokens against bare joserfc"
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"
ALGORITHMS = ("HS256", "ES256", "EdDSA", "RS256")
ISSUED = 1_900_000_000
NOW = ISSUED + 1  # every token stays valid however long the run takes
POOL = 256
CACHE = 64  # fewer than the pool: every first-seen request misses and evicts
TARGET_VERIFY = 1.2
TARGET_FIRST_SEEN = 1.2
TARGET_REUSED_US = 10.0
US = 1e-3


def clock() -> float:
    return NOW


class Algorithm:
    """One algorithm's codec and tokens, and the peer's key and claims registry."""

    def __init__(self, name: str) -> None:
        self.name = name
        signing = "" if name.startswith("HS") else generate_key(name).as_pem(private=True)
        settings = S3AuthSettings(
            secret_key=SECRET, algorithm=name, signing_key=signing.decode() if signing else ""
        )
        self.codec = TokenCodec(settings, clock=clock)
        entry = self.codec.key_set().signing_key(NOW)
        self.key: Key = entry.key if name.startswith("HS") else public_only(entry.key)
        self.tokens = [self.issue(i) for i in range(POOL)]
        self.registry = JWTClaimsRegistry(
            now=lambda: int(clock()),
            leeway=settings.leeway_seconds,
            sub={"essential": True},
            jti={"essential": True},
            sid={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    def issue(self, number: int) -> str:
        return self.codec.issue_access_token(
            user_id=f"{number:032x}", username=f"user{number}", session_id=f"{number:032x}",
            is_admin=False, scopes=["items:read"], now=ISSUED,
        )[0]  # fmt: skip

    def peer_verify(self, token: str | bytes) -> dict[str, Any]:
        """What one writes with joserfc alone: decode with the key, check the type and
        validate the claims."""
        decoded = jwt.decode(token, self.key, algorithms=[self.name])
        typ = decoded.header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise JoseError("not an access token")
        self.registry.validate(decoded.claims)
        return decoded.claims


def verifying(verify: Callable[[str], object], tokens: list[str]) -> Runner:
    """`n` verifications, walking the pool on from where the last batch stopped."""
    endless = itertools.cycle(tokens)

    def run(n: int) -> None:
        for token in itertools.islice(endless, n):
            verify(token)

    return run


# Verification -------------------------------------------------------------------------------


def verification(bench: Bench, algorithms: dict[str, Algorithm]) -> None:
    section = bench.section(
        "keys_verify",
        "Verifying one token: TokenCodec vs joserfc decode + claims registry",
        "CPU µs per token, median [p25–p75] over interleaved rounds, both contenders in one "
        "process; a pool of distinct tokens, the same order for both",
    )
    for name, algorithm in algorithms.items():
        runners = {
            "ours": verifying(algorithm.codec.verify_access_token, algorithm.tokens),
            "joserfc": verifying(algorithm.peer_verify, algorithm.tokens),
        }
        batch = bench.size(4_000 if name.startswith("HS") else 1_000, smoke=20)
        samples = interleave(runners, rounds=bench.rounds(21), batch=batch)
        section.row(f"{name}: ours", samples.stats("ours", US), "µs")
        section.row(f"{name}: joserfc", samples.stats("joserfc", US), "µs")
        section.row(
            f"{name}: ours / joserfc",
            samples.ratio("ours", "joserfc"),
            "x",
            at_most(TARGET_VERIFY),
        )


# ASGI -------------------------------------------------------------------------------------


class JoserfcMiddleware:
    """The peer: a plain ASGI middleware that verifies the bearer token with joserfc and
    sets the user, refusing with 401 otherwise."""

    def __init__(self, app: Any, algorithm: Algorithm) -> None:
        self.app, self.verify = app, algorithm.peer_verify

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            scheme, _, token = header.partition(b" ")
            try:
                if scheme.lower() != b"bearer":
                    raise JoseError("no bearer token")
                claims = self.verify(token)
            except (JoseError, ValueError):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            scope["user"] = claims["sub"]
            scope["auth"] = str(claims.get("scope", "")).split()
        await self.app(scope, receive, send)


def requests(app: Any, scopes: list[dict[str, Any]]) -> Runner:
    """`n` requests to `app`, each with the next scope of the pool (copied, as a server
    makes a new one per request)."""
    walked = itertools.cycle(scopes)

    async def run(n: int) -> None:
        for scope in itertools.islice(walked, n):
            await app(dict(scope), receive, send)

    return run


def reused(bench: Bench, algorithms: dict[str, Algorithm]) -> None:
    section = bench.section(
        "keys_reused",
        "Middleware overhead, the same token every request (verified-token cache)",
        "CPU µs per request over the bare ASGI app, median [p25–p75] over interleaved "
        "rounds; every algorithm and the bare app in one interleaving",
    )
    runners: dict[str, Runner] = {"bare": requests(bare_app, [http_scope("unused")])}
    for name, algorithm in algorithms.items():
        app = BearerTokenMiddleware(bare_app, algorithm.codec)
        runners[name] = requests(app, [http_scope(algorithm.tokens[0])])
    samples = interleave(runners, rounds=bench.rounds(21), batch=bench.size(20_000, smoke=50))
    for name in algorithms:
        section.row(f"{name}: overhead", samples.minus(name, "bare", US), "µs",
                    at_most(TARGET_REUSED_US))  # fmt: skip
    for name in algorithms:
        if name != "HS256":
            section.row(f"{name} / HS256 overhead", samples.ratio(name, "HS256", "bare"), "x")


def starlette_app(middleware: list[Middleware]) -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("42")

    return Starlette(routes=[Route("/api/items/42", item)], middleware=middleware)


def first_seen(bench: Bench, algorithms: dict[str, Algorithm]) -> dict[str, Samples]:
    results: dict[str, Samples] = {}
    for where in ("asgi", "starlette"):
        section = bench.section(
            f"keys_first_seen_{where}",
            f"First-seen tokens, a new one every request ({where})",
            "CPU µs per request added to the "
            + ("bare ASGI app" if where == "asgi" else "same Starlette app without auth")
            + f"; ours with a {CACHE}-token cache over a pool of {POOL} (every request "
            "misses and evicts), the peer a plain ASGI middleware verifying with joserfc",
        )
        for name, algorithm in algorithms.items():
            scopes = [http_scope(token) for token in algorithm.tokens]
            if where == "asgi":
                bare: Any = bare_app
                ours: Any = BearerTokenMiddleware(bare_app, algorithm.codec, cache_size=CACHE)
                peer: Any = JoserfcMiddleware(bare_app, algorithm)
            else:
                bare = starlette_app([])
                ours = starlette_app(
                    [Middleware(BearerTokenMiddleware, tokens=algorithm.codec, cache_size=CACHE)]
                )
                peer = starlette_app([Middleware(JoserfcMiddleware, algorithm=algorithm)])
            runners = {"bare": requests(bare, scopes), "ours": requests(ours, scopes),
                       "joserfc": requests(peer, scopes)}  # fmt: skip
            batch = bench.size(2_000 if name.startswith("HS") else 600, smoke=20)
            samples = interleave(runners, rounds=bench.rounds(21), batch=batch)
            results[f"{where}/{name}"] = samples
            section.row(f"{name}: ours", samples.minus("ours", "bare", US), "µs")
            section.row(f"{name}: joserfc", samples.minus("joserfc", "bare", US), "µs")
            section.row(
                f"{name}: ours / joserfc (added cost)",
                samples.ratio("ours", "joserfc", "bare"),
                "x",
                at_most(TARGET_FIRST_SEEN),
            )
    return results


def check_the_contenders_agree(algorithms: dict[str, Algorithm]) -> None:
    """Both sides accept every token and read the same claims, and both refuse a token
    signed by another key: a benchmark of a verifier that verifies nothing proves nothing."""
    for algorithm in algorithms.values():
        for token in algorithm.tokens[:4]:
            assert algorithm.codec.verify_access_token(token) == algorithm.peer_verify(token)
        head, _, signature = algorithm.tokens[0].split(".")
        forged = f"{head}.{algorithm.tokens[1].split('.')[1]}.{signature}"
        for verify in (algorithm.codec.verify_access_token, algorithm.peer_verify):
            try:
                verify(forged)
            except Exception:  # noqa: S112 - the refusal is the point
                continue
            raise AssertionError(f"{algorithm.name}: a forged token was accepted")


def run(bench: Bench) -> None:
    algorithms = {name: Algorithm(name) for name in ALGORITHMS}
    check_the_contenders_agree(algorithms)
    verification(bench, algorithms)
    reused(bench, algorithms)
    first_seen(bench, algorithms)


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
