"""The service's own check of its store's conditional writes: at startup, through each way a
host runs the service's lifespan, on moto's S3, on SeaweedFS, and on a store that accepts and
ignores the conditions (moto behind `UnconditionalStore`); and, for a host without a
lifespan, at the first write. Exact request counts: a store with the verdict costs 1 GET
more at startup, one without it the probes and 1 PUT of the verdict, memory:// and
file:// nothing."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_bucket, make_service, unchecked_url
from fastapi import FastAPI
from litestar import Litestar
from starlette.applications import Starlette
from support import R, StoreWrapper, run_lifespan
from test_app import client_for
from test_storage_probes import EVERY_REQUEST, UnconditionalStore, unavailable

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    ConfigurationError,
    S3AuthService,
    S3AuthSettings,
    cli,
)
from s3auth_asgi.app import auth_lifespan, create_auth_app
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.storage.probes import CONDITIONAL_UPDATE, CREATE_IF_ABSENT

pytestmark = pytest.mark.anyio

STARTED = ["lifespan.startup.complete", "lifespan.shutdown.complete"]
SNAPSHOT = {"list": 1, "get": 1}  # the revocations, the end of every session
"""What a startup reads besides the check: the revocation snapshot (HS256: no stored keys)."""
PROBED = {kind: count + {"get": 1, "put": 1}.get(kind, 0) for kind, count in EVERY_REQUEST.items()}
"""The check of a store without a verdict: 1 GET of it, the probes, 1 PUT of the verdict."""


@pytest.fixture(params=["s3", "seaweedfs"])
def fresh_url(request: pytest.FixtureRequest) -> str:
    """A new bucket on moto or SeaweedFS that nothing has checked: no verdict in it."""
    return unchecked_url(request, request.param)


def plus(*counts: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for kind, n in count.items():
            total[kind] = total.get(kind, 0) + n
    return total


async def lifespan(app: Any) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Start and stop `app` as a server does; what it sent, and what it raised."""
    sent: list[dict[str, Any]] = []
    try:
        await run_lifespan(app, sent=sent)
    except Exception as exc:
        return sent, exc
    return sent, None


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)
    return app


def litestar_host(service: S3AuthService) -> Any:
    return Litestar([], plugins=[S3AuthPlugin(service, rate_limit=False)], logging_config=None)


def starlette_host(service: S3AuthService) -> Any:
    return Starlette(lifespan=auth_lifespan(service))


def middleware_host(service: S3AuthService) -> Any:
    """Only the middlewares: BlacklistMiddleware's startup is the host's one hook."""
    return BearerTokenMiddleware(BlacklistMiddleware(Starlette(), service), service)


HOSTS: dict[str, Callable[[S3AuthService], Any]] = {
    "the auth app alone": lambda service: create_auth_app(service, rate_limit=False),
    "include_auth": fastapi_host,
    "S3AuthPlugin": litestar_host,
    "auth_lifespan": starlette_host,
    "BlacklistMiddleware": middleware_host,
}


async def verdict(store: Store) -> dict[str, Any] | None:
    found = await store.get(keys.STORE_VERDICT, dict)
    return None if found is None else found.value


async def test_a_fresh_store_is_probed_once_and_its_verdict_read_after(fresh_url: str) -> None:
    first = make_service(fresh_url)
    app = create_auth_app(first, rate_limit=False)
    sent, raised = await lifespan(app)
    assert raised is None and [m["type"] for m in sent] == STARTED, sent
    assert dict(first.store.requests) == plus(PROBED, SNAPSHOT)
    recorded = await verdict(first.store)
    assert recorded is not None and recorded["by"] == "service"
    assert set(recorded["passed"]) == {CREATE_IF_ABSENT, CONDITIONAL_UPDATE}
    assert [info async for info in first.store.list(keys.PROBES)] == []
    # Another process on the same store: one read of the verdict, no probe.
    second = make_service(fresh_url)
    sent, raised = await lifespan(create_auth_app(second, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED, sent
    assert dict(second.store.requests) == plus({"get": 1}, SNAPSHOT)
    # Nothing is left to check at the first write.
    second.store.reset_counts()
    await second.create_user("alice", "alice@example.com", "Secret123!")
    assert dict(second.store.requests) == {"put": 4}


@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_a_store_that_ignores_conditional_writes_is_refused_at_startup(
    host: str, moto_endpoint: str
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    store = UnconditionalStore.from_url(url)
    service = make_service(url, store=store)
    sent, raised = await lifespan(HOSTS[host](service))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"], sent
    message = sent[0]["message"]
    assert "create-if-absent (If-None-Match: *)" in message, message
    assert "conditional update (If-Match)" in message, message
    assert "`s3auth check`" in message, message
    # The verdict's read and the probes of such a store (the first stale ETag accepted,
    # the second never tried), and nothing of the snapshot: it did not start.
    assert dict(store.requests) == {"list": 1, "get": 3, "put": 4, "delete": 1}
    assert await verdict(store) is None
    if raised is not None:  # Litestar raises its task group's
        leaves = raised.exceptions if isinstance(raised, BaseExceptionGroup) else [raised]
        assert [type(leaf) for leaf in leaves] == [ConfigurationError], raised


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_memory_and_file_stores_are_not_probed(store_url: str) -> None:
    """Their conditional writes are this package's own (in-process; a lock and a digest)."""
    service = make_service(store_url)
    sent, _ = await lifespan(create_auth_app(service, rate_limit=False))
    assert [m["type"] for m in sent] == STARTED
    assert dict(service.store.requests) == SNAPSHOT
    assert await verdict(service.store) is None


async def test_the_check_can_be_turned_off(moto_endpoint: str) -> None:
    settings = S3AuthSettings.from_env({"S3AUTH_STORE_PROBE": "false"}, secret_key=SECRET)
    assert settings.store_probe is False
    assert S3AuthSettings(secret_key=SECRET).store_probe is True
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    store = UnconditionalStore.from_url(url)
    service = make_service(url, store=store, store_probe=False)
    sent, raised = await lifespan(create_auth_app(service, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED
    assert dict(store.requests) == SNAPSHOT


class DownFor(StoreWrapper):
    """Every request fails as a store that is down would, until `up` is set."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.up = False

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if self.up:
            return await run()
        self.requests["put" if name in ("create", "replace") else name] += 1
        raise unavailable(name)


async def test_a_store_down_at_startup_is_checked_at_the_first_write(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = DownFor(ObjectStore.from_url(fresh_url))
    service = make_service(fresh_url, store=store)
    app = create_auth_app(service, rate_limit=False)
    with caplog.at_level(logging.WARNING, "s3auth_asgi"):
        sent, raised = await lifespan(app)
    assert raised is None and [m["type"] for m in sent] == STARTED
    warned = [r.getMessage() for r in caplog.records if "at startup" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("no store check at startup"), warned
    assert dict(store.requests) == {"get": 1}  # the verdict's read; nothing after it
    assert await verdict(store.inner) is None
    store.up = True
    store.reset_counts()
    async with client_for(app) as client:
        body = {"username": "alice", "email": "alice@example.com", "password": "Secret123!"}
        response = await client.post("/register", json=body)
    assert response.status_code == 201, response.text
    # The check, then the registration: its user record, three index entries, and the
    # audit event of the app.
    assert dict(store.requests) == plus(PROBED, {"put": 5})
    assert (await verdict(store.inner) or {}).get("by") == "service"


async def test_without_a_lifespan_the_first_write_is_refused_with_503(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    store = UnconditionalStore.from_url(url)
    service = make_service(url, store=store)
    app = create_auth_app(service, rate_limit=False)
    body = {"username": "alice", "email": "alice@example.com", "password": "Secret123!"}
    async with client_for(app) as client:
        with caplog.at_level(logging.ERROR, "s3auth_asgi"):
            first = await client.post("/register", json=body)
        assert first.status_code == 503, first.text
        assert first.json()["code"] == "store_unsafe"
        assert "If-None-Match" not in first.text  # what is wrong goes to the log only
        assert any("If-None-Match" in r.getMessage() for r in caplog.records)
        probed = dict(store.requests)
        assert probed == {"list": 1, "get": 3, "put": 4, "delete": 1}
        second = await client.post("/register", json=body)
        assert second.status_code == 503 and second.json()["code"] == "store_unsafe"
    assert dict(store.requests) == probed  # refused without asking the store again
    assert [info async for info in store.list(keys.USERS)] == []
    assert [info async for info in store.list("index/")] == []
    assert await verdict(store) is None


def test_s3auth_check_leaves_the_verdict_a_start_reads(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["check"], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
    service = make_service(url)
    sent, raised = anyio.run(lifespan, create_auth_app(service, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED
    assert dict(service.store.requests) == plus({"get": 1}, SNAPSHOT)
    recorded = anyio.run(verdict, service.store)
    assert recorded is not None and recorded["by"] == "s3auth check"


def test_a_command_on_a_store_without_conditional_writes_changes_nothing(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    for name, value in {
        "S3AUTH_STORE_URL": url,
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_ARGON2_MEMORY_KIB": "1024",
        "S3AUTH_ARGON2_TIME_COST": "1",
    }.items():
        monkeypatch.setenv(name, value)
    store = UnconditionalStore.from_url(url)
    out, err = io.StringIO(), io.StringIO()
    argv = ["user", "create", "alice", "--email", "alice@example.com", "--password-stdin"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Secret123!\n")))
    code = cli.main(argv, stdout=out, stderr=err, open_store=lambda _: store)
    assert code == failures.REFUSED, out.getvalue() + err.getvalue()
    assert err.getvalue() == (
        "s3auth: The authentication store cannot hold its state safely: it lacks a "
        "conditional write; `s3auth check` says which\n"
    )
    assert anyio.run(lambda: keys_under(store, "")) == []


async def keys_under(store: Store, prefix: str) -> list[str]:
    return [info.key async for info in store.list(prefix)]
