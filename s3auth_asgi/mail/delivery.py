"""MailDelivery: composes the lifecycle's messages from the templates and sends them in the
background.

Why in the background: an answer that waited for the mail server would take longer for an
account that exists than for one that does not (no mail is sent), and would fail when the
server does. So a request schedules its message and answers; the sending task logs a
failure (which message kind failed and why; never the message, which holds a token, nor
its address) and keeps it in `failures`, for a caller with someone to tell (`s3auth user
set-password`), and that is all. `drain()` waits for what is being sent (tests); `close()`
is for shutdown: it gives what is being sent CLOSE_SECONDS, then cancels the rest and logs
how many messages of each kind are lost. A send cancelled otherwise (the event loop ending
with no lifespan to close it) is logged on its own.

A message whose address a mail header would read as another (an account's stored before
such addresses were refused: `s3auth_asgi.mail_addresses`) fails so, before any mailer sees
it: a mailer of the host's own may well take its recipients from the header it sets.

At most MAX_PENDING messages are being sent or waiting for a mailer's thread: past that a
new one is dropped, with a warning, and the answer is the same as ever. A mail server that
is down would otherwise gather a task for every request that mails until it came back.

In the background is not yet after the answer: a task started during a request runs at the
request's next await that yields, and the server's or a middleware's sending of the answer
may be one. Its first steps (building the mail, a millisecond for SMTPMailer; a mailer's
own work up to its first wait) would then delay the answer for an account that is mailed,
and not for a name that is nobody's. So the auth app's endpoints hold the mail their
request asks for (`held_mail`) and start it once the answer is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import NamedTuple

from ..lifecycle_settings import require_public_url
from ..settings import S3AuthSettings, env_name
from .message import Mailer, MailFailure, Message, MessageKind
from .outbox import FileMailer
from .smtp import SMTPMailer
from .templates import MailTemplates, lifetime_text, render

logger = logging.getLogger("s3auth_asgi.mail")

MAX_PENDING = 100
"""Messages being sent or waiting at most: more than a mail server that answers lets pile
up, little memory (a task and a message each)."""
CLOSE_SECONDS = 5.0
"""How long a shutdown waits for the mail being sent: what a server that answers needs,
well within the grace a process manager gives before it kills."""


class LaterMessage(NamedTuple):
    """A message decided on in the background, once the answer is sent: `make` returns it,
    or None to send nothing (its budget spent, its account gone). Its reads and writes
    then neither delay the answer nor tell anything by it."""

    kind: MessageKind
    make: Callable[[], Awaitable[Message | None]]


class _Held:
    """The messages kept by one `held_mail`, until it is left."""

    def __init__(self) -> None:
        self.messages: list[tuple[MailDelivery, Message | LaterMessage]] = []
        self.open = True


_held: ContextVar[_Held | None] = ContextVar("s3auth_held_mail", default=None)


@contextlib.contextmanager
def held_mail() -> Iterator[None]:
    """Within it, the messages `MailDelivery.send_later` is given are kept; they start when
    it is left, however it is left. Around an ASGI app's call, so that they start once its
    answer is sent: `with held_mail(): await app(scope, receive, send)`."""
    held = _Held()
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)  # before sending: within an outer hold, they wait for it
        # A task started within outlives it with its copy of the context: what it asks
        # for later goes at once.
        held.open = False
        for delivery, message in held.messages:
            delivery.send_later(message)


def mailer_from_settings(settings: S3AuthSettings) -> Mailer | None:
    """SMTP when S3AUTH_SMTP_HOST is set, else the outbox directory when
    S3AUTH_MAIL_OUTBOX is, else None (nothing is sent)."""
    if settings.smtp_host:
        return SMTPMailer.from_settings(settings)
    if settings.mail_outbox:
        return FileMailer(settings.mail_outbox)
    return None


class MailDelivery:
    """Refuses a mailer whose mails reach an inbox without `public_url`, however it was
    chosen: its links would be relative. Only the development outbox does without."""

    def __init__(
        self, mailer: Mailer | None, templates: MailTemplates | None, public_url: str
    ) -> None:
        if mailer is not None and not isinstance(mailer, FileMailer):
            require_public_url(
                public_url,
                setting=f"{env_name('public_url')} (public_url in the settings)",
                when=f"a mailer is given ({type(mailer).__name__})",
            )
        self.mailer = mailer
        self.templates = templates or MailTemplates()
        self.public_url = public_url.rstrip("/")
        self._sending: dict[asyncio.Task[None], MessageKind] = {}
        self.failures: deque[tuple[MessageKind, str]] = deque(maxlen=MAX_PENDING)
        """The kind of each of the latest messages that were not sent, and why, in words
        that quote nothing of it (`ConnectionRefusedError`, `SMTPRecipientsRefused (SMTP
        550)`), as the log says."""

    @property
    def enabled(self) -> bool:
        return self.mailer is not None

    @property
    def pending(self) -> int:
        """Messages being sent or waiting to be."""
        return len(self._sending)

    def link(self, kind: MessageKind, token: str) -> str:
        path = self.templates.reset_path if kind == "password_reset" else self.templates.verify_path
        return f"{self.public_url}{path}#token={token}"

    def compose(
        self,
        kind: MessageKind,
        *,
        to: str,
        username: str,
        token: str = "",
        lifetime_seconds: int = 0,
        new_email: str = "",
        details: Mapping[str, str] | None = None,
    ) -> Message:
        """The message of `kind` to `to`; with `token`, its link (the notice of a change
        of address has none, and names `new_email`; those of logins, the `details`)."""
        values = {**(details or {}), "username": username, "email": to, "new_email": new_email}
        if token:
            values.update(
                link=self.link(kind, token),
                token=token,
                lifetime=lifetime_text(lifetime_seconds),
            )
        subject, text = render(getattr(self.templates, kind), values)
        return Message(to=to, subject=subject, text=text, kind=kind)

    def notify(
        self,
        kind: MessageKind,
        *,
        to: str,
        username: str,
        new_email: str = "",
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Start sending the notice of `kind` (no link) to `to`, when a mailer is
        configured; without one, nothing (a notice is no step of a flow that then fails)."""
        if self.enabled:
            message = self.compose(
                kind, to=to, username=username, new_email=new_email, details=details
            )
            self.send_later(message)

    def send_later(self, message: Message | LaterMessage) -> None:
        """Start sending `message` (once the `held_mail` it is called within is left);
        returns at once."""
        held = _held.get()
        if held is not None and held.open:
            held.messages.append((self, message))
            return
        if self.mailer is None:
            logger.warning("no mailer is configured: a %s message was not sent", message.kind)
            return
        if len(self._sending) >= MAX_PENDING:
            logger.warning(
                "%d messages are waiting to be sent already: a %s message was dropped",
                MAX_PENDING,
                message.kind,
            )
            return
        task = asyncio.get_running_loop().create_task(self._send(self.mailer, message))
        self._sending[task] = message.kind
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)

    async def _send(self, mailer: Mailer, later: Message | LaterMessage) -> None:
        kind = later.kind
        try:
            message = await later.make() if isinstance(later, LaterMessage) else later
            if message is None:
                return
            message.recipient()  # see the module
            await mailer.send(message)
        except asyncio.CancelledError:
            if asyncio.current_task() in self._sending:  # else `close` counted it
                logger.warning("a %s message was not sent: its sending was cancelled", kind)
            raise
        except MailFailure as exc:  # says why in words that quote nothing of the message
            self._failed(kind, str(exc))
        except Exception as exc:  # a mail server's failure must not surface anywhere else
            # The type and the SMTP code only: the text of a refusal may quote the address.
            code = getattr(exc, "smtp_code", None)
            self._failed(kind, type(exc).__name__ + (f" (SMTP {code})" if code else ""))

    def _failed(self, kind: MessageKind, reason: str) -> None:
        logger.error("sending a %s message failed: %s", kind, reason)
        self.failures.append((kind, reason))

    async def drain(self) -> None:
        """Wait until every message started has been sent (or has failed)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def close(self) -> None:
        """At shutdown: wait up to CLOSE_SECONDS for the messages being sent, then cancel
        the rest (each ends its connection) and log how many of each kind are lost."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=CLOSE_SECONDS)
        lost = {task: kind for task, kind in self._sending.items() if not task.done()}
        if not lost:
            return
        counts = Counter(lost.values()).most_common()
        logger.warning(
            "%d messages were still being sent at shutdown and are lost: %s",
            len(lost),
            ", ".join(f"{count} {kind}" for kind, count in counts),
        )
        for task, kind in lost.items():
            del self._sending[task]
            task.cancel()
            self.failures.append((kind, f"still being sent after {CLOSE_SECONDS:g} s"))
        await asyncio.gather(*lost, return_exceptions=True)
