"""A login flood in one process: the app, the flood, the legitimate users, and what each
of them saw (`bench_hash_queue` judges it).

A Starlette app with the auth app at /auth and a route /api/item behind
BearerTokenMiddleware + BlacklistMiddleware, called through httpx's ASGITransport (no
sockets), on a fresh memory:// service. The flood is open-loop: logins of unknown users
arrive at a set rate whatever the answers, as from many addresses that ignore Retry-After.
During it an authenticated client sends GET /api/item back to back (every 5 ms), and once
a second two legitimate users log in to the account: a returning one, showing the device
cookie its browser got at a login before the flood, and a newcomer without one. When
refused each waits Retry-After and tries again, giving up after 10 s.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import anyio
import anyio.abc
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.devices import DEVICE_COOKIE, DEVICE_HEADER
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.settings import new_secret_key

PASSWORD = "Bench-Password-123"
PROBE_INTERVAL = 0.005
LOGIN_INTERVAL = 1.0
GIVE_UP_SECONDS = 10.0
IDLE_SECONDS = 2.0


@dataclass
class Logins:
    """The legitimate logins of one kind (returning on a known device, or new)."""

    admitted: list[float] = field(default_factory=list)
    """Seconds per legitimate login attempt that reached the hash."""
    refused: list[float] = field(default_factory=list)
    """Seconds per legitimate login attempt answered 503."""
    to_token: list[float] = field(default_factory=list)
    """Seconds from a legitimate user's first attempt to its token, retries included."""
    by_user: dict[int, float] = field(default_factory=dict)
    """The same, by the order in which the users started."""
    first_attempt: int = 0
    """Users admitted at their first attempt."""


@dataclass
class Figures:
    probes: list[float] = field(default_factory=list)
    """Seconds per authenticated GET."""
    returning: Logins = field(default_factory=Logins)
    new: Logins = field(default_factory=Logins)
    flood: Counter[int] = field(default_factory=Counter)
    """Answers to the flood's logins by status (those still waiting at the end are cut)."""
    flood_refused: list[float] = field(default_factory=list)
    """Seconds per flood login answered 503."""
    seconds: float = 0.0
    """How long the flood lasted."""

    @property
    def hashes_per_second(self) -> float:
        """What hashing achieved during the flood (each 401 and each token cost a hash)."""
        hashed = self.flood[401] + len(self.returning.admitted) + len(self.new.admitted)
        return hashed / self.seconds if self.seconds else 0.0


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"item": 42})


async def build(hash_queue: int) -> tuple[Starlette, str, str]:
    settings = S3AuthSettings(
        store_url="memory://", secret_key=new_secret_key(), hash_queue=hash_queue
    )
    service = S3AuthService(settings)
    user = await service.create_user("legit", "legit@example.com", PASSWORD)
    token = (await service.create_token_pair(user)).access_token
    app = Starlette(
        routes=[
            Route("/api/item", item),
            Mount("/auth", app=create_auth_app(service, rate_limit=False)),
        ],
        middleware=[
            Middleware(BearerTokenMiddleware, tokens=service, protected=("/api/*",)),
            Middleware(BlacklistMiddleware, blacklist=service),
        ],
    )
    # The returning user's browser logged in before: the cookie it got then.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as browser:
        data = {"username": "legit", "password": PASSWORD}
        assert (await browser.post("/auth/login", data=data)).status_code == 200
        device = browser.cookies[DEVICE_COOKIE]
    return app, token, device


async def probe(client: httpx.AsyncClient, token: str, figures: Figures, stop: anyio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        start = time.perf_counter()
        response = await client.get("/api/item", headers=headers)
        figures.probes.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
        await anyio.sleep(PROBE_INTERVAL)


async def legitimate_login(
    client: httpx.AsyncClient, logins: Logins, user: int, device: str | None
) -> None:
    data = {"username": "legit", "password": PASSWORD}
    headers = {DEVICE_HEADER: device} if device else {}
    first = start = time.perf_counter()
    while start - first < GIVE_UP_SECONDS:
        response = await client.post("/auth/login", data=data, headers=headers)
        took = time.perf_counter() - start
        if response.status_code == 200:
            logins.first_attempt += start == first
            logins.admitted.append(took)
            logins.to_token.append(time.perf_counter() - first)
            logins.by_user[user] = logins.to_token[-1]
            return
        assert response.status_code == 503, response.text
        logins.refused.append(took)
        await anyio.sleep(float(response.headers["retry-after"]))
        start = time.perf_counter()


async def flood_login(client: httpx.AsyncClient, i: int, figures: Figures) -> None:
    data = {"username": f"flood-{i}", "password": "Wrong-password-1"}
    start = time.perf_counter()
    response = await client.post("/auth/login", data=data)
    if response.status_code == 503:
        figures.flood_refused.append(time.perf_counter() - start)
    figures.flood[response.status_code] += 1


async def generate(
    client: httpx.AsyncClient, rate: float, figures: Figures, tg: anyio.abc.TaskGroup
) -> None:
    """Open loop: a login every 1/rate seconds whatever the answers (catching up when the
    loop falls behind), until cancelled."""
    next_at, i = time.perf_counter(), 0
    while True:
        while next_at <= time.perf_counter():
            tg.start_soon(flood_login, client, i, figures)
            i += 1
            next_at += 1 / rate
        await anyio.sleep(max(0.0, next_at - time.perf_counter()))


async def scenario(hash_queue: int, rate: float, logins: int) -> Figures:
    """`logins` pairs of legitimate users (returning, new) log in one pair a second during a
    flood of `rate` logins a second, which lasts until the last of them has a token or has
    given up (rate 0: idle)."""
    app, token, device = await build(hash_queue)
    figures = Figures()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        anyio.create_task_group() as tg,
    ):
        stop = anyio.Event()
        tg.start_soon(probe, client, token, figures, stop)
        if rate == 0:
            await anyio.sleep(IDLE_SECONDS)
        else:
            began = time.perf_counter()
            async with anyio.create_task_group() as flood:
                flood.start_soon(generate, client, rate, figures, flood)
                async with anyio.create_task_group() as users:
                    for user in range(logins):
                        # Half a second in first: the queue has filled by then.
                        await anyio.sleep(LOGIN_INTERVAL / 2)
                        for kind, shown in ((figures.returning, device), (figures.new, None)):
                            users.start_soon(legitimate_login, client, kind, user, shown)
                        await anyio.sleep(LOGIN_INTERVAL / 2)
                # Every legitimate user is in: stop the flood (its waiters leave at once).
                flood.cancel_scope.cancel()
            figures.seconds = time.perf_counter() - began
        stop.set()
    return figures
