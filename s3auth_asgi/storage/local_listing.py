"""Listing a `file://` store without reading what sorts before the offset.

obstore's local store walks the whole directory tree under a prefix and filters by the
offset afterwards, so a revocation sync that wants the last few seconds read every entry
ever written. Keys that sort in time order under dated directories (see `keys`) can be
listed by descending only into the directories that can hold keys after the offset: one or
two directories per sync, whatever the history.

Same answers as obstore's listing (every object under the prefix whose key sorts after the
offset; staging files of an unfinished write, named `…#n`, and the store's control
directory left out), in key order. Any other name with a "#" is an object like the rest.
Blocking: call it from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import errno
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from .base import ObjectInfo
from .unavailable import DIRECTORY_GONE

CONTROL_DIR = ".s3auth"
"""Lock files and staging area of the conditional writes (`local`); never an object."""


def is_staging_name(name: str) -> bool:
    """Whether a file name is one obstore's local store gives the staging file of a write
    (`name#digits`, the digits after the first "#"): it lists no such file, and refuses
    to read one."""
    _, hash_sign, suffix = name.partition("#")
    return bool(hash_sign) and suffix.isascii() and suffix.isdigit()


def list_local(root: Path, prefix: str, offset: str | None) -> list[ObjectInfo]:
    """Objects under the directory `prefix` ("" or ending in "/", as obstore reads a
    prefix: whole path segments) whose key sorts after `offset`, in key order."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return list(_walk(root / prefix, prefix, offset))


def walk_local(root: Path, prefix: str, offset: str | None) -> Iterator[ObjectInfo]:
    """`list_local`'s objects one at a time, holding the entries of one directory and of
    those above it: each directory is read whole before its first entry is given, so
    deleting what was given does not disturb the walk. A store directory replaced by
    something else is a failure (`list_local` reads any path that is not a directory as
    one holding no objects), and so is one whose control directory is gone (`unavailable`:
    the store was removed, or unmounted from under it)."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "The store directory is not one", str(root))
    if not (root / CONTROL_DIR).is_dir():  # removed, or unmounted from under the store
        raise FileNotFoundError(errno.ENOENT, DIRECTORY_GONE, str(root))
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return _walk(root / prefix, prefix, offset)


def next_page(walk: Iterator[ObjectInfo], size: int) -> list[ObjectInfo]:
    """The next `size` objects of `walk` (fewer at its end)."""
    return list(itertools.islice(walk, size))


def _walk(path: Path, base: str, offset: str | None) -> Iterator[ObjectInfo]:
    try:
        # A directory's keys continue with "/", so that is where it sorts among names.
        entries = sorted(os.scandir(path), key=_sort_name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        key = base + entry.name
        if entry.is_dir(follow_symlinks=False):
            if key == CONTROL_DIR or all_before(key + "/", offset):
                continue
            yield from _walk(Path(entry.path), key + "/", offset)
        elif is_staging_name(entry.name):
            continue
        elif offset is None or key > offset:
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                # Deleted since the directory was read: as a listing a moment later says.
                continue
            modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
            yield ObjectInfo(key, modified, stat.st_size)


def _sort_name(entry: os.DirEntry[str]) -> str:
    return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name


def all_before(directory: str, offset: str | None) -> bool:
    """Whether every key under `directory` (ending in "/") sorts at or before `offset`."""
    return offset is not None and directory < offset and not offset.startswith(directory)
