"""A `file://` store shared by several processes: creates, deletes and the directories
they make and remove, in the interleavings another process can bring."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio


async def test_a_create_lands_however_many_deletes_of_keys_already_gone_run_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance deletes sessions of `u` that are gone already (a second sweep of
    the same expired sessions, a logout of an ended one) while this one creates the first
    session of `u`: each delete comes between the create's making of `sessions/u/` and its
    link there. A delete that removed nothing has left no directory empty: it must not
    take away the one the create just made, however many such deletes run."""
    root = tmp_path / "store"
    url = f"file://{root}"
    store, other = ObjectStore.from_url(url), ObjectStore.from_url(url)
    await store.create("sessions/kept.json", {})
    store.reset_counts()
    link = os.link
    deletes = 0

    def deleted_meanwhile(source: str | Path, target: str | Path) -> None:
        nonlocal deletes
        if Path(target).parent == root / "sessions" / "u" and deletes < 20:
            deletes += 1
            anyio.from_thread.run(other.delete, f"sessions/u/gone-{deletes}.json")
        link(source, target)

    monkeypatch.setattr(os, "link", deleted_meanwhile)
    await store.create("sessions/u/new.json", {"v": 1})
    monkeypatch.undo()
    assert deletes == 1  # linked at the first attempt: the directory was left alone
    found = await store.get("sessions/u/new.json", dict)
    assert found is not None and found.value == {"v": 1}
    assert store.requests == {"put": 1, "get": 1}
    assert other.requests == {"delete": 1}


async def test_a_create_lands_when_a_delete_removes_a_directory_above_the_one_it_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create into `index/username/` finds `index/` there and `index/username/` missing;
    before it makes the latter, another instance's delete of the last object under
    `index/` removes `index/` as empty. The create makes both again and lands."""
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    await store.create("index/email/last.json", {})
    mkdir = Path.mkdir
    removed: list[Path] = []

    def parent_removed_first(path: Path, *args: Any, **kwargs: Any) -> None:
        if path == root / "index" / "username" and not removed:
            (root / "index" / "email" / "last.json").unlink()  # the other instance's delete
            for emptied in (root / "index" / "email", root / "index"):
                emptied.rmdir()
                removed.append(emptied)
        mkdir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", parent_removed_first)
    await store.create("index/username/new.json", {"v": 1})
    monkeypatch.undo()
    assert removed  # the race happened
    found = await store.get("index/username/new.json", dict)
    assert found is not None and found.value == {"v": 1}
