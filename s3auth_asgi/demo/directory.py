"""The demo's directory and what it keeps there, the user's alone whatever the umask and
whatever was there before.

The store holds password hashes and sessions, the outbox working reset links, and the
secret signs every token: another user who read them could log in as anyone, and one who
could write in the directory could put a secret or a store of their own there before the
demo reads it. So a directory others can write to, or a part of it another user owns, is
refused; the store and the outbox are made, or narrowed to, 0700 and the secret to 0600. The
directory itself keeps its mode: `--dir` may name one its owner opened on purpose, and what
is in it is closed either way. Its parents are not looked at.

A directory the demo makes is also kept out of version control (a `.gitignore` of `*`, as
venv and pytest keep theirs), and so is its default one, `./.s3auth-demo`, where an earlier
version made it without: that is made in whatever project the demo was run from, and a
`git add .` there would commit the secret, the store and the outbox.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
from pathlib import Path

from ..errors import ConfigurationError

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
GIT_IGNORE = ".gitignore"
GIT_IGNORE_TEXT = "# Made by `s3auth demo`: what it keeps here stays out of any commit.\n*\n"
OTHERS_WRITE = 0o002
GROUP_WRITE = 0o020
ROOT = 0


def no_others_link(path: Path) -> None:
    """`path`, as given, reached through no symbolic link of another user's: one of the
    user's own, of root's (`/tmp` on macOS), or of the owner of the directory it is in (who
    could replace it anyway) is followed, as Linux's rule for links in shared directories
    (`fs.protected_symlinks`) would. Resolving a path reads a link without following it, so
    that rule alone would not stop one."""
    path = path.absolute()
    for part in (*reversed(path.parents), path):
        try:
            found = part.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return  # the rest is for the demo to make, or to refuse
        if not stat.S_ISLNK(found.st_mode) or found.st_uid in {os.geteuid(), ROOT}:
            continue
        if found.st_uid != part.parent.stat().st_uid:
            raise ConfigurationError(
                f"the demo's directory {path} is reached through {part}, a symbolic link "
                f"another user ({_user_name(found.st_uid)}) can point elsewhere at any time. "
                "Give the demo a directory of your own (--dir, --demo-dir)"
            )


def own_directory(path: Path, *, the_demos: bool = False) -> None:
    """`path`, made 0700 when missing; one that exists must be the user's, and writable by
    no one else (the group aside when it is the user's own: `_group_is_users_own`).
    `the_demos`: the demo's default directory, given its `.gitignore` even when it exists
    (an earlier version made it without)."""
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY, parents=True)
    except FileExistsError:  # or not a directory: `_owned` says so
        made = False
    else:
        made = True
    found = _owned(path, directory=True)
    mode = stat.S_IMODE(found.st_mode)
    if mode & OTHERS_WRITE or (mode & GROUP_WRITE and not _group_is_users_own(found.st_gid)):
        raise ConfigurationError(
            f"the demo's directory {path} can be written to by other users (mode {mode:o}): "
            "whoever can could put a secret or a store of their own there. Point --dir (or "
            "--demo-dir) at a directory only you can write to, or at a new one, which the "
            "demo makes"
        )
    # Never into one `--dir` names that was there: it may be a project's own.
    if made or the_demos:
        _ignored_by_git(path)


def _ignored_by_git(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path / GIT_IGNORE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(GIT_IGNORE_TEXT)


def private_directory(path: Path) -> None:
    """`path`, a directory of the user's: made 0700, or narrowed to it."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIRECTORY)
    keep_private(path, PRIVATE_DIRECTORY)


def keep_private(path: Path, mode: int) -> None:
    """`path`, which exists and must be the user's, narrowed to `mode`."""
    found = _owned(path, directory=mode == PRIVATE_DIRECTORY)
    if stat.S_IMODE(found.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(found.st_mode) & mode)


def _owned(path: Path, *, directory: bool) -> os.stat_result:
    found = path.stat()
    if found.st_uid != os.geteuid():
        raise ConfigurationError(
            f"the demo's {path} belongs to another user ({_user_name(found.st_uid)}): they "
            "could read or replace what the demo keeps there. Give the demo a directory of "
            "your own (--dir, --demo-dir)"
        )
    if stat.S_ISDIR(found.st_mode) != directory:
        kind = "a directory" if directory else "a file"
        raise ConfigurationError(f"the demo's {path} is not {kind}: move it out of the way")
    return found


def _group_is_users_own(gid: int) -> bool:
    """Whether group `gid` is the user's own, as where every user has a group of their own
    and umask 002 makes directories group-writable: the user's primary group, named after
    them, with no other member listed."""
    try:
        user = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    return (
        gid == user.pw_gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
