"""The auth app's part in a lifespan: at shutdown, the mail still being sent gets a few
seconds, and what is lost is logged (`MailDelivery.close`), instead of vanishing with the
process.

A host's router answers the lifespan itself and never passes it to what it mounts, so the
auth app served alone closes the mail in its own lifespan, and `include_auth` (FastAPI),
`S3AuthPlugin` (Litestar) and the demo wrap their host's. A Starlette host passes
`lifespan=closing_mail(service)`; any other calls `await service.mail.close()` in its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from ..service import S3AuthService

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def closing_mail(service: S3AuthService, lifespan: Lifespan | None = None) -> Lifespan:
    """`lifespan` (none: one that does nothing), closing the mail of `service` at shutdown
    while what `lifespan` set up is still there."""

    @asynccontextmanager
    async def lifespan_closing_mail(app: Any) -> AsyncIterator[Any]:
        if lifespan is None:
            try:
                yield None
            finally:
                await service.mail.close()
            return
        async with lifespan(app) as state:
            try:
                yield state
            finally:
                await service.mail.close()

    return lifespan_closing_mail
