"""The service's check of its own store: the two conditional writes that every uniqueness
and rotation guarantee rests on (`storage.probes`), proven before the service writes.

A store that accepts `If-None-Match` and `If-Match` and ignores them answers every request
as a good one would, until two registrations of one name race and both win. So the service
does not take the store on trust: it reads the store's verdict (`storage.verdicts`, 1 GET),
and where there is none it runs the probes once and records the verdict for the processes
after it. Where a write is missing, it refuses:

- at startup (`S3AuthService.check_store`, run by every lifespan the package offers and by
  BlacklistMiddleware's startup), with a ConfigurationError that fails the start and names
  what is missing;
- in a host that runs no lifespan, at the first conditional write: the service's store is
  a `CheckedStore`, whose creates and replaces wait for the check, and on such a store are
  refused before they are sent (503 `store_unsafe`), so no account, session or limit is
  ever written without the guarantee it needs. Reads, and so token verification, go on.

A check the store failed during (`Probe.store_failed`) is no finding: it is logged, nothing
is recorded, and the next write checks again. memory:// and file:// are not checked: their
conditional writes are this package's own. S3AUTH_STORE_PROBE=false turns it all off.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

import anyio

from .errors import ConfigurationError, StoreUnavailableError, StoreUnsafeError
from .settings import S3AuthSettings, env_name
from .shown_urls import shown_url
from .storage.base import ObjectInfo, Store, Versioned
from .storage.probes import Probe, probe_store
from .storage.verdicts import all_passed, lacking, needs_verdict, read_verdict, record_verdict
from .types import Clock

T = TypeVar("T")

logger = logging.getLogger("s3auth_asgi")


class StoreCheck:
    """Whether this process may write to `store`: unknown until checked, then passed (for
    good) or refused (for good: a store does not gain a write while a process runs)."""

    def __init__(self, store: Store, url: str, probe: bool, clock: Clock) -> None:
        self.store = store
        self.url = url
        self.clock = clock
        self.passed = not (probe and needs_verdict(url))
        self.lacking: list[Probe] = []
        self._lock = anyio.Lock()

    @classmethod
    def of_service(cls, store: Store, settings: S3AuthSettings, clock: Clock) -> StoreCheck:
        # A store opened from a URL knows it; one given to the service as an object stands
        # for the store its settings name.
        url = str(getattr(store, "url", "") or settings.store_url)
        return cls(store, url, settings.store_probe, clock)

    def guarded(self) -> Store:
        """The store the service writes through: `store` itself when there is nothing to
        check, else one whose conditional writes wait for the check."""
        return self.store if self.passed else CheckedStore(self.store, self)

    async def ensure(self) -> None:
        """Return once the store is known to have both conditional writes. StoreUnsafeError
        when it lacks one; StoreUnavailableError when it failed while being checked."""
        if self.passed:
            return
        async with self._lock:  # one check at a time: the others take its finding
            if self.lacking:
                raise StoreUnsafeError()
            if not self.passed:
                await self._check()

    async def at_startup(self) -> None:
        """`ensure`, where a store lacking a write is a ConfigurationError that fails the
        start; a store that failed propagates as the StoreUnavailableError it is."""
        try:
            await self.ensure()
        except StoreUnsafeError:
            raise ConfigurationError(self.refusal()) from None

    def refusal(self) -> str:
        found = "; ".join(f"{probe.name}: {probe.message}" for probe in self.lacking)
        return (
            f"{env_name('store_url')}: the store {shown_url(self.url)} cannot hold s3auth's "
            f"state safely: {found}. `s3auth check` probes it the same way; use a store that "
            "has both conditional writes (docs/deployment.md)"
        )

    async def _check(self) -> None:
        found = await read_verdict(self.store)
        if found.holds:
            self.passed = True
            return
        probes = await probe_store(self.store)
        self.lacking = lacking(probes)
        if self.lacking:
            logger.error("%s", self.refusal())
            raise StoreUnsafeError()
        if not all_passed(probes):
            failed = next(probe for probe in probes if not probe.passed)
            logger.warning("the store's conditional writes were not checked: %s", failed.message)
            raise StoreUnavailableError(
                "The store failed while its conditional writes were checked; try again later"
            )
        outcome = await record_verdict(self.store, "service", self.clock(), found.unusable)
        logger.info("the store has both conditional writes; its verdict: %s", outcome)
        self.passed = True


def checked_writes(store: Store, probe: bool, clock: Clock) -> Store:
    """`store` for a part that writes to it on its own (a `TokenBlacklist` made without the
    service): the store itself when it is already checked (the service's, whose check it
    shares), else gated by a check of its own, run at the first conditional write and never
    again. A store that names no URL (a wrapper made in code) is taken as it is given."""
    if isinstance(store, CheckedStore):
        return store
    url = str(getattr(store, "url", ""))
    return StoreCheck(store, url, probe and bool(url), clock).guarded()


class CheckedStore:
    """`inner`, whose creates and replaces first wait for `check` (`StoreCheck.ensure`);
    everything else, and the request counts, are `inner`'s."""

    def __init__(self, inner: Store, check: StoreCheck) -> None:
        self.inner = inner
        self.check = check
        self.requests = inner.requests

    @property
    def url(self) -> str:
        return self.check.url

    def reset_counts(self) -> None:
        self.inner.reset_counts()

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        return await self.inner.get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        await self.check.ensure()
        return await self.inner.create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        await self.check.ensure()
        return await self.inner.replace(key, value, etag)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def delete_many(self, keys: Iterable[str]) -> int:
        return await self.inner.delete_many(keys)

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        return await self.inner.list_page(prefix, after, limit)

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        return self.inner.list(prefix, offset)
