"""Login cost (authenticate + token pair) against the user count: s3auth_asgi's direct-key
lookup side by side with the scan that s3verless does (LIST every user object, GET each,
compare names), both followed by the same session write.

Both run on the same store and the same password hasher, in the same process; the table
shows object-store requests and median wall time per login, and the ratio.
"""

from __future__ import annotations

import asyncio
import tempfile
import time

from benchmarks.harness import Bench, Stats, at_most, standalone
from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectStore, keys

TITLE = "Login cost against the number of users"
PASSWORD = "SecurePass123!"
SECRET = "benchmark-secret-key-that-is-long-enough-000"


async def scan_login(service: S3AuthService, username: str, password: str) -> User | None:
    """The peer: what s3verless does on every login, 1 + U requests (it reads every user
    object, then checks the password of the one whose name matches)."""
    match = None
    async for info in service.store.list(keys.USERS):
        found = await service.store.get(info.key, User)
        if found is not None and found.value.username == username:
            match = found.value
    if match is None:
        return None
    ok, _ = await service.passwords.verify(password, match.hashed_password)
    return match if ok else None


POPULATE_WIDTH = 8
"""Users written at once: a file:// store's writes run in worker threads, which overlap."""


async def populate(store: ObjectStore, ids: range, hashed: str) -> None:
    """Write user and index objects directly (`user-{i}`, `user-{i}@example.com`): hashing
    thousands of passwords would measure nothing but the hash. Several users at a time,
    which takes less time on every store and changes nothing measured after."""
    pending = iter(ids)

    async def write() -> None:
        for i in pending:
            user = User(
                id=f"{i:032x}",
                username=f"user-{i}",
                email=f"user-{i}@example.com",
                hashed_password=hashed,
            )
            await store.create(keys.user(user.id), user)
            await store.create(keys.username_index(user.username), IndexEntry(user.id))
            await store.create(keys.email_index(user.email), IndexEntry(user.id))

    async with asyncio.TaskGroup() as group:
        for _ in range(POPULATE_WIDTH):
            group.create_task(write())


async def measure(
    store_url: str, users: int, rounds: int
) -> tuple[list[float], list[float], int, int]:
    settings = S3AuthSettings(store_url=store_url, secret_key=SECRET)
    service = S3AuthService(settings, store=ObjectStore.from_url(store_url))
    hashed = await service.passwords.hash(PASSWORD)
    await populate(service.store, range(users), hashed)
    target = f"user-{users - 1}"
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        service.store.reset_counts()
        start = time.perf_counter()
        user = await service.authenticate_user(target, PASSWORD)
        assert user is not None
        await service.create_token_pair(user)
        ours.append(time.perf_counter() - start)
        our_requests = sum(service.store.requests.values())
        service.store.reset_counts()
        start = time.perf_counter()
        user = await scan_login(service, target, PASSWORD)
        assert user is not None
        await service.create_token_pair(user)
        theirs.append(time.perf_counter() - start)
        their_requests = sum(service.store.requests.values())
    return ours, theirs, our_requests, their_requests


def run(bench: Bench) -> None:
    section = bench.section(
        "login",
        "Login cost against the number of users (in process)",
        "authenticate + token pair, object-store requests and wall ms per login, medians "
        "over rounds, ours and the scan alternating; the scan re-creates what s3verless does "
        "on our store (the real s3verless is measured in its own section)",
    )
    counts = (3, 5) if bench.smoke else (10, 100, 1000)
    rounds = bench.rounds(15, smoke=1)
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("memory", "memory://"), ("file", f"file://{tmp}/")):
            if bench.smoke and label == "file":
                continue
            first: tuple[float, int] | None = None
            for users in counts:
                ours, theirs, our_req, their_req = asyncio.run(
                    measure(f"{url}{users}" if label == "file" else url, users, rounds)
                )
                mine = Stats.of(t * 1e3 for t in ours)
                first = first or (mine.median, our_req)
                last = users == counts[-1]
                section.row(
                    f"{label}, {users:,} users: ours, requests",
                    our_req,
                    "req",
                    at_most(first[1]) if last else None,
                )
                section.row(f"{label}, {users:,} users: scan, requests", their_req, "req")
                section.row(f"{label}, {users:,} users: ours", mine, "ms")
                section.row(
                    f"{label}, {users:,} users: scan", Stats.of(t * 1e3 for t in theirs), "ms"
                )
                if last:
                    section.row(
                        f"{label}: ours at {users:,} users / at {counts[0]} users",
                        mine.median / first[0],
                        "x",
                        # Flat, not equal: an argon2 hash is most of a login, and its wall
                        # time on a shared machine varies by half from round to round; the
                        # scan grows tenfold over the same range.
                        at_most(2.0),
                    )


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
