"""The auth app's part in a lifespan. At startup, the service checks that its store has
both conditional writes (`store_check`: one read of the store's verdict, or the probes
once per store), and a store lacking one fails the start with a ConfigurationError naming
what is missing; then its first snapshot of revocations (and its stored signing keys) is
loaded, so the first request does not wait for it. A check or read that fails then, the
store failing, is logged, naming what it read, not fatal (`load_at_startup`). At
shutdown, the syncs that requests started in the background end, and the mail still
being sent gets a few seconds, and what is lost is logged (`MailDelivery.close`),
instead of vanishing with the process (`S3AuthService.close`).

A host's router answers the lifespan itself and never passes it to what it mounts, so the
auth app served alone runs this in its own lifespan, and `include_auth` (FastAPI),
`S3AuthPlugin` (Litestar) and the demo wrap their host's. A Starlette host passes
`lifespan=auth_lifespan(service)`; any other calls `await service.close()` at
shutdown in its own (BlacklistMiddleware checks the store and loads the snapshot at
startup).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from ..service import S3AuthService
from ..verifier import load_at_startup

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def auth_lifespan(service: S3AuthService, lifespan: Lifespan | None = None) -> Lifespan:
    """`lifespan` (none: one that does nothing) with the part of `service`: its store
    checked and its first revocation snapshot loaded once `lifespan` has started, the
    service closed at shutdown (`S3AuthService.close`) while what `lifespan` set up is
    still there."""

    @asynccontextmanager
    async def lifespan_with_auth(app: Any) -> AsyncIterator[Any]:
        if lifespan is None:
            await load_at_startup(service)
            try:
                yield None
            finally:
                await service.close()
            return
        async with lifespan(app) as state:
            await load_at_startup(service)
            try:
                yield state
            finally:
                await service.close()

    return lifespan_with_auth
