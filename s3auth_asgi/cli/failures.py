"""What a failed command exits with and says: one place maps each class of failure to an
exit code and one line on stderr saying what failed and what to do. No traceback reaches the
user unless asked for (`s3auth --debug`, or S3AUTH_DEBUG=1).

    0   done
    1   refused: `check` found a problem, `doctor` one it left, or the store refused the
        change (a name taken), or lacks a conditional write the change needs
    2   usage or input: wrong arguments, input the policy refuses, no terminal to ask on,
        an input file that cannot be opened
    3   configuration: an S3AUTH_* setting, the store URL or a missing directory
    4   unavailable: the store (or a file) could not be read or written; retry later. Also
        an object in it that cannot be read: the line names its key and what mends it
    5   not found: no such user
    70  internal error: a bug; `--debug` shows the traceback to report
    130 interrupted (Ctrl-C)
    143 interrupted by SIGTERM (systemd, Kubernetes, `timeout`), as a shell reports it
    141 stdout closed early (`| head -1`), as a shell reports SIGPIPE; nothing is said
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections.abc import Iterator
from typing import TextIO

from ..breached_passwords import BreachCheckUnavailableError
from ..errors import (
    ConfigurationError,
    HashingBusyError,
    NotFoundError,
    S3AuthError,
    S3ValidationError,
    StoreUnavailableError,
    StoreUnsafeError,
)
from ..shown_urls import redact_urls, shown_url
from ..storage import keys
from ..storage.base import CorruptObjectError
from ..storage.unavailable import RedactedStoreError
from .table_text import printable

OK, REFUSED, USAGE, CONFIGURATION, UNAVAILABLE, NOT_FOUND = 0, 1, 2, 3, 4, 5
INTERNAL, INTERRUPTED, TERMINATED = 70, 130, 143
BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a writer whose reader went away."""

DEBUG_HINT = "run with --debug for the traceback"
STORE_HINT = "check S3AUTH_STORE_URL, the store's AWS_*/GOOGLE_*/AZURE_* variables and the network"
LOGGER = "s3auth_asgi"
REMEDIES = (" must ", "use ", "create it", "delete it", "gen-secret", "pip install")
"""Words by which a ConfigurationError's message already says what to do."""
CAUSE_CHARS = 240
DOCTOR_READS = (keys.USERS, *keys.NAME_INDEXES, keys.SESSIONS_NOT_BEFORE)
"""Where `s3auth doctor` reads: an object there that cannot be read, it reports with its
remedy."""


class CommandError(Exception):
    """A failure a command reports in one line, with its exit code (usage by default)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def report(exc: BaseException, err: TextIO, *, debug: bool, store_url: str | None) -> int:
    """Print what `exc` means in one line (after its traceback when `debug`); the exit code."""
    leaf = leading(exc)
    code, message = classify(leaf, store_url)
    if debug:
        traceback.print_exception(exc, file=err)
    elif code == INTERNAL:
        message = f"{message} ({DEBUG_HINT})"
    if message:
        print(f"s3auth: {printable(message)}", file=err, flush=True)
    return code


def leading(exc: BaseException) -> BaseException:
    """The failure an exception group stands for: its first leaf that is not a cancellation
    (task groups wrap what a task raised), an interruption before anything else."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, KeyboardInterrupt):
            return leaf
    for leaf in leaves:
        if not _is_cancellation(leaf):
            return leaf
    return leaves[0] if leaves else exc


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _is_cancellation(exc: BaseException) -> bool:
    import anyio

    return isinstance(exc, anyio.get_cancelled_exc_class())


def classify(exc: BaseException, store_url: str | None) -> tuple[int, str]:
    """The exit code and the one-line message (without the `s3auth: ` prefix) for `exc`."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    if isinstance(exc, ConfigurationError):
        return CONFIGURATION, configuration_message(exc)
    if isinstance(exc, HashingBusyError | BreachCheckUnavailableError):  # the store is fine
        return UNAVAILABLE, titled(exc)
    if isinstance(exc, StoreUnsafeError):  # trying again finds the same store
        return REFUSED, f"{exc.title}: it lacks a conditional write; `s3auth check` says which"
    if isinstance(exc, StoreUnavailableError):
        return UNAVAILABLE, unavailable_message(exc, store_url)
    if isinstance(exc, NotFoundError):
        return NOT_FOUND, exc.detail
    if isinstance(exc, S3ValidationError):
        return USAGE, titled(exc)
    if isinstance(exc, S3AuthError):
        return REFUSED, titled(exc)
    if isinstance(exc, BrokenPipeError):
        return BROKEN_PIPE, ""  # the reader has gone: nothing to say, nobody to say it to
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return UNAVAILABLE, f"{exc.strerror or exc}{where}; check the path and its permissions"
    if isinstance(exc, UnicodeError):
        # Standard input is decoded where it is read (`stdin`); text from elsewhere that is
        # not UTF-8 (or output that cannot hold it) is still the input's fault, not a bug.
        return USAGE, unicode_message(exc)
    return INTERNAL, f"internal error: {type(exc).__name__}: {first_line(str(exc))}"


def unicode_message(exc: UnicodeError) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return (
            f"text the output's encoding ({exc.encoding}) cannot hold: use a UTF-8 locale, "
            "or set PYTHONIOENCODING=utf-8"
        )
    reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
    return f"input that is not UTF-8 text ({reason})"


def configuration_message(exc: ConfigurationError) -> str:
    """The error's message, which names the variable; with what to do when it does not say
    (`'x' is not an IP address`, say)."""
    message = str(exc)
    if any(remedy in message for remedy in REMEDIES):
        return message
    return f"{message}; correct it (`s3auth check` validates the configuration)"


def titled(exc: S3AuthError) -> str:
    """The error's title and its detail, the title once where the detail begins with it."""
    if exc.detail.startswith(exc.title):
        return exc.detail
    return f"{exc.title}: {exc.detail}"


def unavailable_message(exc: StoreUnavailableError, store_url: str | None) -> str:
    """`the store s3://b could not be read (what obstore said); check …, or try again later`:
    the error's own detail is written for any HTTP client, so it names neither the store nor
    the cause, which the operator needs."""
    if isinstance(exc, CorruptObjectError):
        return corrupt_message(exc)
    what = exc.detail.split(";")[0].strip().rstrip(".")
    what = what[:1].lower() + what[1:]
    if store_url and what.startswith("the store "):
        what = f"the store {shown_url(store_url)} {what.removeprefix('the store ')}"
    if isinstance(exc.__cause__, RedactedStoreError) and exc.__cause__.hint is not None:
        return f"{what}: {exc.__cause__.hint}"  # a retry would not mend it
    cause = describe_cause(exc.__cause__)
    said = f" ({cause})" if cause else ""
    return f"{what}{said}; {STORE_HINT}, or try again later"


def corrupt_message(exc: CorruptObjectError) -> str:
    """`the stored object KEY cannot be read (what the decoder said): …`: a damaged object
    reads the same at every try, so the line says which it is and what mends it, not to try
    again. The key holds ids and digests, never a secret (`storage.keys`)."""
    cause = describe_cause(exc.__cause__)
    said = f" ({cause})" if cause else ""
    if exc.key is None:  # a stand-in store's: the log names it
        return f"a stored object cannot be read{said}; {DEBUG_HINT}, which names it"
    if exc.key.startswith(DOCTOR_READS):
        remedy = "`s3auth doctor` reports it, with what mends it"
    else:
        remedy = (
            "restore it from a backup (`s3auth doctor` reads user records, the name index "
            "and the end of every session, not this)"
        )
    said = f"cannot be read{said}: it reads the same at every try"
    return f"the stored object {exc.key} {said}; {remedy}"


def describe_cause(cause: BaseException | None) -> str:
    """What the store library said, in one line: its first line without retry statistics,
    and the operating system's words from the debug dump that follows (`Connection
    refused`), which the first line leaves out; no URL's user info or query string. For a
    failure the stand-in knows what to do about (`RedactedStoreError.hint`), that."""
    if cause is None:
        return ""
    if isinstance(cause, RedactedStoreError) and cause.hint is not None:
        return cause.hint
    text = redact_urls(cause.said if isinstance(cause, RedactedStoreError) else str(cause))
    head = first_line(text)
    head = re.sub(
        r" in [0-9.]+\w*, after (\d+) retries, max_retries: \d+, retry_timeout: \w+",
        r" after \1 retries",
        head,
    )
    head = " ".join(head.split())
    if len(head) > CAUSE_CHARS:
        head = head[: CAUSE_CHARS - 1] + "…"
    os_said = re.findall(r'message: "([^"\n]{1,120})"', text)
    if os_said and os_said[-1].lower() not in head.lower():
        head = f"{head}: {os_said[-1]}"
    return head or type(cause).__name__


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


@contextlib.contextmanager
def library_logging(err: TextIO, *, debug: bool) -> Iterator[None]:
    """While a command runs, the package's log records go to `err` when debugging and
    nowhere otherwise: without a handler, logging prints warnings (a failed store request,
    with its key) on stderr beside the command's own line, which already names the cause."""
    logger = logging.getLogger(LOGGER)
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(err)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    saved_level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
