"""Paging through the users while the store changes: a client that follows `next_cursor`
sees every user that was there throughout exactly once, whatever else the `users/` prefix
holds (another tool's copies and notes), and each page costs what the budget says."""

from __future__ import annotations

import anyio
import pytest

from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
on_three = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
PASSWORD = "SecurePass123!"
MAX_PAGES = 50


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_a_page_costs_one_list_however_many_users_follow(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    async with anyio.create_task_group() as tg:
        for i in range(1001):
            tg.start_soon(store.create, f"p/{i:05d}", {})
    store.reset_counts()
    page, more = await store.list_page("p/", None, 3)
    assert [info.key for info in page] == ["p/00000", "p/00001", "p/00002"] and more
    assert dict(store.requests) == {"list": 1}
    store.reset_counts()
    page, more = await store.list_page("p/", "p/00997", 2)
    assert [info.key for info in page] == ["p/00998", "p/00999"] and more
    assert dict(store.requests) == {"list": 1}
