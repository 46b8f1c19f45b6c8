"""Breached passwords: a new password found in a Pwned Passwords range API is refused
(`S3AUTH_BREACHED_PASSWORDS_URL`; off when empty).

The API is k-anonymous. The password's SHA-1 (of its UTF-8), in upper-case hex, is split
into its first 5 digits and the other 35; `GET {url}/range/{first 5}` answers every known
suffix of that prefix with the times it was seen, `SUFFIX:COUNT` a line, and the password
is breached when its own suffix is there with a count of at least
`S3AUTH_BREACHED_PASSWORDS_THRESHOLD`. Only the 5 digits leave the process: not the
password, not the rest of its hash, and neither they nor the answer are logged. The request
asks for padding (`Add-Padding: true`): the answer is filled up with random suffixes of
count 0, so that its size does not tell whoever watches the encrypted stream which prefix
was asked; those lines are no breach, and are skipped.

What is asked, when: only a password the policy accepted and every limit of the request
let through, just before it is hashed (`new_passwords`), so that a request refused anyway
costs no request to the service. Each lookup is a request to another party that a client
can cause, so at most MAX_LOOKUPS run at once in a process; a lookup waits for a place
within its own deadline, which bounds the whole of it (`S3AUTH_BREACHED_PASSWORDS_TIMEOUT_
SECONDS`, connecting, TLS, status line, headers and body: `http_reads`). The answer is read
up to MAX_RANGE_BYTES.

Over TLS: whoever is on the path of a plain http lookup learns the prefixes asked and can
answer "not breached" to every one. So a plain http URL must name this machine
(`localhost`, a loopback address), as must a redirect to plain http, unless the operator
allows it (`S3AUTH_BREACHED_PASSWORDS_ALLOW_PLAIN_HTTP`, a mirror on a private network): the
host is then warned of at the first lookup. The rule is the JWKS reads' own
(`http_reads.plain_http_off_machine`).

A lookup that fails (no answer within the deadline, a connection refused, a status other
than 200, an answer that is not a range answer or that ends before its Content-Length) is
logged at WARNING, counted (`unchecked`), and then, by default, the password is taken
unchecked: the check adds to the policy, and a service outside this one being slow or down
should not stop registrations, resets and changes of password (OWASP's Authentication Cheat
Sheet and NIST SP 800-63B ask for the check, not for refusing every password while it
cannot be made). With `S3AUTH_BREACHED_PASSWORDS_FAIL_CLOSED` such a password is refused
instead, with 503 `password_check_unavailable` and Retry-After: nothing is written, and the
client tries again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.request
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from .errors import ConfigurationError, StoreUnavailableError, WeakPasswordError
from .http_reads import plain_http_off_machine, read_within
from .settings_ranges import check_argument

if TYPE_CHECKING:
    from .settings import S3AuthSettings

logger = logging.getLogger("s3auth_asgi")

PREFIX_LENGTH = 5
MAX_LOOKUPS = 4
"""Lookups running at once in a process: each a connection to the service and a worker
thread; a flood of new passwords waits for these, within each one's deadline."""
MAX_RANGE_BYTES = 1 << 20
"""A padded answer is 800 to 1,000 lines of some 40 bytes; the largest prefixes' answers
stay well within this."""
_LINE = re.compile(rb"([0-9A-Fa-f]{35}):([0-9]{1,12})")


class BreachedPasswordError(WeakPasswordError):
    """The new password is among the breached passwords the service knows."""

    code = "password_breached"
    title = "The password has appeared in a data breach: choose another"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        errors = tuple(errors) or ((detail,) if detail else (self.title,))
        super().__init__(detail, errors=errors, headers=headers)


class BreachCheckUnavailableError(StoreUnavailableError):
    """S3AUTH_BREACHED_PASSWORDS_FAIL_CLOSED, and the service did not answer the lookup
    of a new password: nothing was done, try again later."""

    code = "password_check_unavailable"
    title = "The new password could not be checked against breached passwords; retry shortly"


def check_service_url(
    url: str,
    name: str,
    *,
    allow_plain_http: bool = False,
    opt_in: str = "pass allow_plain_http=True",
) -> str | None:
    """ConfigurationError naming `name` unless `url` is empty or the base of a range API:
    http(s), a host, perhaps a path; no user info, query or fragment, which would go to the
    service with every lookup (or be dropped from it); https, or plain http to this machine
    unless `allow_plain_http` (`opt_in` says how to allow it). The host of a plain http URL
    off this machine, which the lookups warn of; None otherwise."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or "?" in url
        or "#" in url
    ):
        raise ConfigurationError(
            f"{name} must be the http(s) base URL of a range API, such as "
            "https://passwords.example.com, without user info, query or fragment"
        )
    host = plain_http_off_machine(url)
    if host is not None and not allow_plain_http:
        raise ConfigurationError(
            f"{name} would send the lookups over plain http to {host}, which is not this "
            "machine: anyone on the path would learn the prefixes asked and could answer "
            f"that no password is breached. Use an https:// URL, or {opt_in} where the "
            "path is yours (a mirror on a private network)"
        )
    return host


def range_prefix_and_suffix(password: str) -> tuple[str, str]:
    """(the 5 hex digits asked, the 35 looked for in the answer), in upper case."""
    digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    return digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]


def times_seen(answer: bytes, suffix: str) -> int:
    """How often the answer says `suffix` was seen (0 where it is not listed, or listed as
    padding); ValueError for an answer that is not a range answer."""
    wanted = suffix.encode("ascii").upper()
    seen = 0
    for line in answer.splitlines():
        line = line.strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ValueError("not a range answer")
        if match[1].upper() == wanted:
            seen = max(seen, int(match[2]))
    return seen


class BreachedPasswords:
    """The lookup of new passwords in a range API at `url` (the API's base, without
    `/range/`; empty: no lookup), as the module says. `lookups`: requests made;
    `unchecked`: passwords that no answer was had for (taken or refused as `fail_closed`
    says). A plain http `url` must name this machine, as must a redirect to plain http,
    unless `allow_plain_http`."""

    def __init__(
        self,
        url: str = "",
        *,
        threshold: int = 1,
        timeout_seconds: float = 2.0,
        fail_closed: bool = False,
        allow_plain_http: bool = False,
    ) -> None:
        self._unwarned_host = check_service_url(
            url, "BreachedPasswords url", allow_plain_http=allow_plain_http
        )
        check_argument("breached_passwords_threshold", threshold, "BreachedPasswords threshold")
        check_argument(
            "breached_passwords_timeout_seconds", timeout_seconds, "BreachedPasswords timeout"
        )
        self.url = url.rstrip("/")
        self.threshold = threshold
        self.timeout_seconds = timeout_seconds
        self.fail_closed = fail_closed
        self.allow_plain_http = allow_plain_http
        self.lookups = 0
        self.unchecked = 0
        self._places = anyio.CapacityLimiter(MAX_LOOKUPS)

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> BreachedPasswords:
        return cls(
            settings.breached_passwords_url,
            threshold=settings.breached_passwords_threshold,
            timeout_seconds=settings.breached_passwords_timeout_seconds,
            fail_closed=settings.breached_passwords_fail_closed,
            allow_plain_http=settings.breached_passwords_allow_plain_http,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    async def check(self, password: str) -> None:
        """BreachedPasswordError when `password` is breached; when the service gives no
        answer, BreachCheckUnavailableError if `fail_closed`, else nothing (logged)."""
        if not self.enabled:
            return
        prefix, suffix = range_prefix_and_suffix(password)
        try:
            answer = await self._range(prefix)
            seen = times_seen(answer, suffix)
        except Exception as error:  # whatever failed, the password was not checked
            self.unchecked += 1
            outcome = "refused" if self.fail_closed else "taken unchecked"
            # The error's type only: a message may quote the URL, and so the prefix.
            logger.warning(
                "a new password could not be checked against breached passwords (%s): %s",
                _failure(error),
                outcome,
            )
            if self.fail_closed:
                raise BreachCheckUnavailableError() from None
            return
        if seen >= self.threshold:
            raise BreachedPasswordError()

    async def _range(self, prefix: str) -> bytes:
        with anyio.fail_after(self.timeout_seconds):
            deadline = anyio.current_time() + self.timeout_seconds
            async with self._places:
                seconds = deadline - anyio.current_time()
                if seconds < self.timeout_seconds / 4:
                    # A place freed this late leaves no time to be answered in: no request.
                    raise TimeoutError("no place for a lookup in time")
                self.lookups += 1
                if self._unwarned_host is not None:
                    # The host alone: the URL's path is followed by the prefix.
                    logger.warning(
                        "breached passwords are looked up at %s over plain http "
                        "(S3AUTH_BREACHED_PASSWORDS_ALLOW_PLAIN_HTTP): whoever is on the path "
                        "learns the prefixes asked and can answer that none is breached",
                        self._unwarned_host,
                    )
                    self._unwarned_host = None
                return await read_within(
                    seconds,
                    partial(_read, f"{self.url}/range/{prefix}"),
                    plain_http_anywhere=self.allow_plain_http,
                )


def _read(url: str, opener: urllib.request.OpenerDirector, timeout: float) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - http(s) only: settings and redirects
        url, headers={"Add-Padding": "true", "User-Agent": "s3auth-asgi"}
    )
    with opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise ValueError(f"status {response.status}")
        body: bytes = response.read(MAX_RANGE_BYTES + 1)
        if len(body) > MAX_RANGE_BYTES:
            raise ValueError("the answer is larger than a range answer can be")
        # http.client gives what came of a Content-Length body whose connection closed
        # early without a word: the lines missing from its end are no answer about them.
        if getattr(response, "length", None):
            raise ValueError("the answer ended before its Content-Length")
    return body


def _failure(error: BaseException) -> str:
    """What failed, without the words of the error, which may quote the URL."""
    status = getattr(error, "code", None)
    if isinstance(status, int):
        return f"{type(error).__name__} {status}"
    return type(error).__name__
