"""FileMailer: writes each message to a directory instead of sending it, for development
(S3AUTH_MAIL_OUTBOX) and the demo, whose page shows them. The messages hold working
tokens: the directory is created private (0700), each file 0600. Never for production.

A message is `{time_ns}-{random}.json` (the `Message` as JSON, with `sent_at`), so the
newest sort last; `messages()` reads the newest first.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import ClassVar

import msgspec

from ..hidden_fields import HidesSecrets
from .message import Message
from .threads import MailThreads


class StoredMessage(HidesSecrets, msgspec.Struct, frozen=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = Message.secret_fields

    to: str
    subject: str
    text: str
    kind: str
    sent_at: float


class FileMailer:
    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 200) -> None:
        self.directory = Path(directory)
        self.keep = keep
        """At most this many messages are kept: the oldest go first."""
        self.threads = MailThreads()

    def __repr__(self) -> str:
        return f"FileMailer({str(self.directory)!r})"

    async def send(self, message: Message) -> None:
        await self.threads.run(lambda: self._write(message))

    def _write(self, message: Message) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stored = StoredMessage(
            to=message.to,
            subject=message.subject,
            text=message.text,
            kind=message.kind,
            sent_at=time.time(),
        )
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.json"
        descriptor = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(msgspec.json.encode(stored))
        for old in self._files()[: -self.keep]:
            old.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"))

    def messages(self, limit: int = 20) -> list[StoredMessage]:
        """The newest `limit` messages, newest first; unreadable files are skipped."""
        found: list[StoredMessage] = []
        for path in reversed(self._files()):
            if len(found) >= limit:
                break
            try:
                found.append(msgspec.json.decode(path.read_bytes(), type=StoredMessage))
            except (OSError, msgspec.DecodeError):
                continue
        return found
