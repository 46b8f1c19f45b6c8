"""obstore hands every answer back from a thread of its own: the process must not shut
down while one is inside the event loop's `call_soon_threadsafe` (on Python 3.11 that
aborts: SIGABRT, exit 134). `storage.handoffs` counts them and waits at exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage.handoffs import HANDOFFS, Handoffs

HOLD_SECONDS = 0.2


def test_settle_waits_for_a_thread_inside_call_soon_threadsafe() -> None:
    loop = asyncio.new_event_loop()
    entered = threading.Event()
    entered_at: list[float] = []

    def slow_call_soon_threadsafe(callback: Any, *args: Any, context: Any = None) -> Any:
        entered_at.append(time.monotonic())
        entered.set()
        time.sleep(HOLD_SECONDS)  # as a thread waiting for the GIL after its wake-up write
        return None

    loop.call_soon_threadsafe = slow_call_soon_threadsafe  # type: ignore[method-assign]
    handoffs = Handoffs()
    handoffs.watch(loop)
    handoffs.watch(loop)  # once per loop: a second watch does not wrap twice
    thread = threading.Thread(target=loop.call_soon_threadsafe, args=(print,))
    thread.start()
    assert entered.wait(5)
    assert handoffs.inside == 1
    handoffs.settle()
    # Timed from the thread's entry: this thread's next turn, which a busy machine can
    # delay by most of the hold, would leave settle little or nothing to wait.
    assert time.monotonic() - entered_at[0] >= HOLD_SECONDS
    assert handoffs.inside == 0
    thread.join()
    loop.close()


def test_a_store_request_watches_its_loop() -> None:
    async def use_store() -> asyncio.AbstractEventLoop:
        store = ObjectStore.from_url("memory://")
        await store.get("nothing.json", dict)
        return asyncio.get_running_loop()

    loop = asyncio.run(use_store())
    assert loop in HANDOFFS._watched


SCRIPT = """
import asyncio
from s3auth_asgi.storage import ObjectStore

async def main():
    store = ObjectStore.from_url("memory://")
    await store.create("a/b.json", {"x": 1})
    [info async for info in store.list("a/")]
    await store.get("a/c.json", dict)

asyncio.run(main())
"""


def test_scripts_that_end_on_a_store_request_exit_cleanly(tmp_path: Path) -> None:
    """Unfixed, about one run in three to forty died of SIGABRT, more under load."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)

    def run(_: int) -> int:
        command = [sys.executable, str(script)]
        return subprocess.run(command, capture_output=True, timeout=60).returncode

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(run, range(12)))
    assert codes == [0] * 12
