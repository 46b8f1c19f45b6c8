"""Conditional replace and delete for `file://` stores.

obstore's LocalStore creates atomically (If-None-Match) but has no If-Match update. This
fills the gap with OS file locks and atomic renames, so a replace is safe across threads and
processes on one host. Deletes take the same lock, or a delete racing a replace could bring
the object back. The functions here are blocking: call them from a worker thread.

A `file://` object's version token is a digest of its bytes (`content_token`), not obstore's
local ETag. That one is the inode, the modification time and the size: a replace renames a
new file over the key and frees the old inode, the next one often gets it back, and on a
file system whose timestamps are coarse (or a kernel whose clock ticks every few
milliseconds) a third version of the same size can carry the first's ETag, so a writer
holding that stale ETag would win. A digest differs whenever the content does; where it
does not, a change decided on that content is decided on what is there.

A write stages its bytes in a file of the control directory (`tmp/`), owner-only from
its first byte and synced to disk, then links or renames it to the key (so a power loss
leaves no torn object: `_written`). A process killed in between leaves
that file behind: opening the store removes those older than `STALE_STAGING_SECONDS`, a
time no write takes, so a writer in flight in another process keeps its own. (Were one
removed all the same, its write would fail, never land half-made.) The control directory is
no key's (`key_rules`), so no listing shows them.

They raise what the file system says (an OSError such as PermissionError when the lock
files cannot be opened, or obstore's error); `ObjectStore` turns every such failure into a
StoreUnavailableError, as it does for its own requests.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import obstore as obs
from obstore.store import LocalStore

from .local_listing import CONTROL_DIR
from .unavailable import DIRECTORY_GONE

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
"""Modes of what a `file://` store creates: the owner's alone (it holds password hashes and
session secrets)."""

_STRIPES = 64
_LINK_ATTEMPTS = 8
_STAGING_BYTES = 12
_STAGING_NAME = re.compile(f"[0-9a-f]{{{2 * _STAGING_BYTES}}}")
STALE_STAGING_SECONDS = 3600
"""When a staging file is taken for one a killed process left: a write holds its own for
milliseconds (one small file written and synced)."""


def content_token(data: bytes) -> str:
    """The version token of a `file://` object holding `data` (see the module)."""
    return hashlib.sha256(data).hexdigest()


class LocalConditionalWrites:
    def __init__(self, store: LocalStore, root: Path) -> None:
        self._store = store
        self._root = root
        self._locks = root / CONTROL_DIR / "locks"
        self._tmp = root / CONTROL_DIR / "tmp"
        self._locks.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        self._tmp.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        self._remove_stale_staging()

    def _remove_stale_staging(self) -> None:
        stale_before = time.time() - STALE_STAGING_SECONDS
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                if not _STAGING_NAME.fullmatch(entry.name):
                    continue  # not a file this module names: not its to remove
                # Gone already (another process swept it), or not this process's to
                # remove: a file left is only space, and no reason to refuse the store.
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < stale_before:
                        os.unlink(entry.path)

    def vanished(self) -> FileNotFoundError | None:
        """The error of a store whose directory is gone, removed or unmounted from under it
        (see `unavailable`); None while its control directory, made at the opening, is
        there. Gone, every file reads as missing: a login as a wrong password, a refresh as
        a session ended."""
        if self._locks.parent.is_dir():
            return None
        return FileNotFoundError(errno.ENOENT, DIRECTORY_GONE, str(self._root))

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") % _STRIPES
        try:
            fd = os.open(self._locks / f"{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError as exc:
            raise self.vanished() or exc from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def create(self, key: str, data: bytes) -> str | None:
        """Write `data` if there is no object at `key`; its token, or None when there is.
        The file is owner-only from its first byte, and so is every directory made for it:
        obstore's own create writes with the process umask and leaves its staging file so
        if killed, readable by anyone until a chmod that may never come."""
        path = self._root / key
        tmp = self._written(data)
        try:
            for _ in range(_LINK_ATTEMPTS):
                try:
                    self._make_directories(path.parent)
                    os.link(tmp, path)  # fails if the name exists: create-if-absent, atomically
                except FileExistsError:
                    return None
                except FileNotFoundError:
                    # A delete removed a directory on the way, empty, meanwhile: the one
                    # linked into or one above a directory being made. Make them again.
                    continue
                return content_token(data)
            raise FileNotFoundError(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def _make_directories(self, directory: Path) -> None:
        missing = []
        while not directory.exists() and directory != self._root:
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made by another writer meanwhile
                path.mkdir(mode=PRIVATE_DIRECTORY)

    def _written(self, data: bytes) -> Path:
        """A new owner-only temporary file holding `data`, synced to disk: linked or renamed
        to its key only then, so that a power loss leaves the object whole or absent, never
        the empty or cut-short file whose bytes had not reached the disk (which would hold
        its name for ever: an index entry nobody can read, a record whose names nobody can
        tell)."""
        tmp = self._tmp / secrets.token_hex(_STAGING_BYTES)
        try:
            descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            with open(descriptor, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # no half-written file left behind
            if isinstance(exc, FileNotFoundError):
                raise self.vanished() or exc from None
            raise
        return tmp

    def replace(self, key: str, data: bytes, token: str) -> str | None:
        """Write `data` if the object's content is still what `token` was made of; its new
        token, or None when it is not."""
        with self._locked(key):
            try:
                current = bytes(obs.get(self._store, key).bytes())
            except FileNotFoundError:
                return None
            if not hmac.compare_digest(content_token(current), token):
                return None
            tmp = self._written(data)  # owner-only from the start: the rename keeps the mode
            try:
                os.replace(tmp, self._root / key)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise
            return content_token(data)

    def delete(self, keys: list[str]) -> None:
        """Delete the objects, and the directories they leave empty: a listing walks every
        directory under its prefix, so one left for every past revocation shard, session
        holder or audit trail would make each sync cost the whole history again."""
        for key in keys:
            with self._locked(key):
                try:
                    obs.delete(self._store, key)
                except FileNotFoundError:
                    # Nothing removed left nothing empty. An empty directory here is one a
                    # create has just made and is about to link into: removing it would
                    # send that create round again, and a run of such deletes (a second
                    # sweep of the same keys) could wear out its attempts.
                    continue
            # Through os.path: pathlib interns every part of a path it parses, and a
            # sweep's keys would each leave one in the interpreter's table.
            self._remove_empty_directories(Path(os.path.dirname(os.path.join(self._root, key))))

    def _remove_empty_directories(self, directory: Path) -> None:
        while directory != self._root and self._root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty (or gone): what is above it is not empty either
                return
            directory = directory.parent
