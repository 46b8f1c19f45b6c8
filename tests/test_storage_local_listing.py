"""The `file://` listing gives obstore's answers while reading only the directories that
can hold keys after the offset."""

from __future__ import annotations

import os
import string
from pathlib import Path

import anyio
import obstore as obs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from s3auth_asgi.storage import keys, local_listing
from s3auth_asgi.storage.local_listing import list_local

# "#": obstore keeps `name#digits` for the staging files of its writes and lists no such
# file; any other name with "#" is an object like the rest.
segment = st.text(alphabet=string.ascii_lowercase[:4] + "0123-.#", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)


def _obstore_keys(root: Path, prefix: str, offset: str | None) -> list[str]:
    async def listing() -> list[str]:
        kwargs = {"prefix": prefix} if prefix else {}
        if offset is not None:
            kwargs["offset"] = offset
        found = []
        async for chunk in obs.list(obs.store.LocalStore(root), **kwargs):
            found.extend(meta["path"] for meta in chunk)
        return sorted(found)

    return anyio.run(listing)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored=st.sets(key_strategy, min_size=1, max_size=12),
    prefix=st.sampled_from(["", "a", "a/", "b/c", "ab/"]),  # "a" means the directory a/
    offset=st.one_of(st.none(), key_strategy),
)
def test_the_same_keys_as_obstore_in_key_order(
    tmp_path_factory: pytest.TempPathFactory, stored: set[str], prefix: str, offset: str | None
) -> None:
    root = tmp_path_factory.mktemp("store")
    written = set()
    for key in sorted(stored):
        path = root / key
        # A key cannot be both an object and a directory: keep the first that fits.
        if any(p.is_file() for p in path.parents if p != root) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        written.add(key)
    # obstore fails where the prefix runs through a file; no key of ours does.
    target = root / prefix
    assume(not any(p.is_file() for p in (target, *target.parents)))
    ours = [info.key for info in list_local(root, prefix, offset)]
    assert ours == sorted(ours)
    assert ours == _obstore_keys(root, prefix, offset)
    assert set(ours) <= written


def test_a_sync_reads_one_shard_of_a_long_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = keys.REVOCATION_SHARD_MS
    for h in range(200):  # 200 hours of history, 5 entries each
        for i in range(5):
            path = tmp_path / keys.revocation(h * hour + i, "session", 10**10, f"s{h}-{i}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"{}")
    (tmp_path / local_listing.CONTROL_DIR).mkdir()
    (
        tmp_path
        / "revocations"
        / keys.revocation(199 * hour + 9, "jti", 1, "x").split("/")[1]
        / "0000000000000.jti.1.x#1"
    ).write_bytes(b"")  # a write in progress
    scanned: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: os.PathLike[str] | str) -> object:
        scanned.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(local_listing.os, "scandir", counting_scandir)
    found = list_local(tmp_path, keys.REVOCATIONS, keys.revocation_offset(199 * hour + 2))
    assert [info.key.rsplit("/", 1)[1].split(".")[0] for info in found] == [
        f"{199 * hour + 2:013d}",
        f"{199 * hour + 3:013d}",
        f"{199 * hour + 4:013d}",
    ]
    assert len(scanned) == 2  # revocations/ and the one shard that can hold newer keys


def test_an_object_deleted_while_its_directory_is_listed_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete landing between reading a directory and looking at one of its files (a
    session ended by another process while this one lists the user's sessions) leaves
    that object out, as a listing a moment later would; the listing does not fail."""
    for name in ("a", "b", "c"):
        (tmp_path / "sessions").mkdir(exist_ok=True)
        (tmp_path / "sessions" / name).write_bytes(b"{}")
    scandir = os.scandir

    def scandir_then_another_process_deletes_b(path: str) -> list[os.DirEntry[str]]:
        with scandir(path) as entries:
            read = list(entries)
        (tmp_path / "sessions" / "b").unlink(missing_ok=True)
        return read

    monkeypatch.setattr(local_listing.os, "scandir", scandir_then_another_process_deletes_b)
    assert [info.key for info in list_local(tmp_path, "sessions/", None)] == [
        "sessions/a",
        "sessions/c",
    ]
