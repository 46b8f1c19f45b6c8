"""The checks of the mail and account-lifecycle settings (S3AUTH_PUBLIC_URL, S3AUTH_MAIL_*,
S3AUTH_SMTP_*), kept apart from `settings` so that module stays one screenful of fields.
Each failure names the variable to fix; the numbers' ranges are in `settings_ranges`. What
is taken but may not be meant is a warning (`unverifiable_accounts`, `short_lived_links`,
`plain_http_links`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .hosts import is_loopback
from .settings_env import env_name as variable

if TYPE_CHECKING:
    from .ratelimit import RateLimit

MAIL_BUDGETS = ("recovery_account", "recovery_inbox")
"""The auth app's limits on the mails asked for by name, past which the answer is the same
202 and nothing is mailed (`app.limits.AuthRateLimits.mail_admitted`)."""


def check_lifecycle_settings(settings: Any, env_name: Callable[[str], str]) -> None:
    """ConfigurationError for the first setting that cannot work."""
    if settings.public_url:
        check_public_url(settings.public_url, env_name("public_url"))
    if settings.smtp_host:
        check_smtp_host(settings.smtp_host, env_name)
        require_public_url(
            settings.public_url, setting=env_name("public_url"), when=f"{env_name('smtp_host')} is"
        )
    sends = settings.smtp_host or settings.mail_outbox
    if sends and "@" not in settings.mail_from:
        raise ConfigurationError(
            f"{env_name('mail_from')} must be the sender's address (no-reply@example.com) "
            "when mail is sent"
        )
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        raise ConfigurationError(
            f"{env_name('smtp_username')} and {env_name('smtp_password')} go together"
        )
    check_smtp_credentials(
        settings.smtp_security, settings.smtp_username, settings.smtp_password, env_name
    )


def check_public_url(url: str, variable: str) -> None:
    """ConfigurationError naming `variable` unless every link `{url}/reset-password#token=…`
    reaches the front end whole. Never shows the URL, which may hold a password."""
    # urlsplit drops tabs and newlines wherever they are, and a mail reader ends a link at
    # the first space: the link the user clicks is not the one mailed.
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigurationError(f"{variable} must have no whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{variable} must be an http(s) URL such as https://app.example.com (the links "
            "in mails start with it)"
        )
    # Tested by its characters, not by urlsplit's parts, which are as empty for `…/?` and
    # `…#` as for no query or fragment: after either, the link's path and token would be
    # part of the query or fragment, which the front end does not read them from.
    if "?" in url or "#" in url:
        raise ConfigurationError(f"{variable} must have no query or fragment")
    if "@" in parts.netloc:
        # Every user would be mailed them.
        raise ConfigurationError(f"{variable} must have no user name or password")


def require_public_url(public_url: str, *, setting: str, when: str) -> None:
    """ConfigurationError when mails that reach an inbox would carry relative links
    (`/reset-password#token=…`), which no mail reader can open. `setting` names the public
    URL, `when` says what sends such mails. Only the development outbox does without: the
    page that shows it opens relative links."""
    if not public_url:
        raise ConfigurationError(
            f"{setting} must be set when {when}: the links in the mails start with it "
            "(https://app.example.com)"
        )


_WITH_PORT = re.compile(r"\[([^][]+)\](?::([0-9]+))?|([^][:]+):([0-9]+)")
"""`[host]`, `[host]:port` (as URLs write an IPv6 address, as Postfix's relayhost writes
any server) or `host:port`."""
_NO_HOST = frozenset("[]:/@")


def check_smtp_host(host: str, name: Callable[[str], str]) -> None:
    """ConfigurationError for an SMTP host no send can reach: the name or address is looked
    up as it is written, which neither brackets nor a port are part of, nor a URL's scheme
    or user, nor whitespace. Refused when the mailer is made, rather than every send
    failing. `name` says what to call the `smtp_*` fields, as `check_smtp_credentials`."""
    try:
        ipaddress.ip_address(host)  # `::1`, `fe80::1%eth0`: colons, no port
        return
    except ValueError:
        pass
    written = _WITH_PORT.fullmatch(host)
    if written is not None:
        alone = written[1] or written[3]
        port = written[2] or written[4]
        if _is_host(alone):
            instead = f"{name('smtp_host')}={alone}"
            if port:
                instead += f" and {name('smtp_port')}={port}"
            raise ConfigurationError(
                f"{name('smtp_host')} must be the server's name or address alone, without "
                f"brackets or a port: write {instead}"
            )
    if not _is_host(host):
        # Not shown: it may be a URL with a password in it.
        raise ConfigurationError(
            f"{name('smtp_host')} must be the server's host name or IP address alone "
            "(mail.example.com, 192.0.2.25 or ::1): no URL, user name, port or whitespace"
        )


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return not any(c.isspace() or not c.isprintable() or c in _NO_HOST for c in host)


def check_smtp_credentials(
    security: str, username: str, password: str, name: Callable[[str], str]
) -> None:
    """ConfigurationError for credentials that would travel in clear text. `name` says what
    to call the `smtp_*` fields: the variables in the settings, the arguments of
    SMTPMailer."""
    if (username or password) and security == "none":
        raise ConfigurationError(
            f"the credentials ({name('smtp_username')}, {name('smtp_password')}) would travel "
            f"in clear text over {name('smtp_security')}=none: use starttls or tls"
        )


def unverifiable_accounts(settings: Any, *, mailer_given: bool = False) -> list[str]:
    """A warning when S3AUTH_REQUIRE_VERIFIED_EMAIL is on and no mail is sent: neither the
    settings choose a mailer nor is one given in code (`mailer_given`). Taken, since an
    administrator may mean to approve each account by marking it verified; but a
    self-registered account can then never verify its address, and never log in until one
    does. `s3auth check` shows it, and the auth app logs it when it is made."""
    sends_mail = mailer_given or bool(settings.smtp_host or settings.mail_outbox)
    if not settings.require_verified_email or sends_mail:
        return []
    return [
        f"{variable('require_verified_email')} is true but no mailer is configured "
        f"({variable('smtp_host')}, {variable('mail_outbox')}, or a mailer given to "
        "S3AuthService in code): a self-registered account can never verify its address, "
        "and cannot log in until an administrator marks it verified"
    ]


def short_lived_links(settings: Any, limits: Mapping[str, RateLimit]) -> list[str]:
    """A warning for each kind of link mailed by name (a reset, a verification) that can
    expire before the mail budgets among `limits` let another go to its inbox. A budget
    refuses quietly only within its emission interval of its last admission, so whenever
    one refuses, a link went to the inbox less than the two intervals before (one, when the
    caller's own ask spent the first); a link that outlives that leaves whoever keeps an
    account's budgets spent sending its owner working links. Shorter, they can keep the
    owner from having one. Taken, as the operator may prefer fewer mails or shorter links;
    `s3auth check` shows it, and the auth app logs it when it is made."""
    counted = [name for name in MAIL_BUDGETS if name in limits]
    if not counted:
        return []
    refusing = sum(limits[name].emission_interval for name in counted)
    intervals = "the emission intervals of" if len(counted) > 1 else "the emission interval of"
    warnings = []
    for field, seconds, kind in (
        ("password_reset_minutes", 60, "reset"),
        ("email_verification_hours", 3600, "verification"),
    ):
        setting = getattr(settings, field)
        if setting * seconds < refusing:
            warnings.append(
                f"{variable(field)}={setting}: a {kind} link can expire before the limits on "
                "the mails asked for by name let another go to its inbox (up to "
                f"{refusing:.0f} s, {intervals} {' and '.join(counted)}): whoever keeps asking "
                f"for an account's {kind} can leave its owner without a working link; make "
                "the links live longer or the limits admit mails more often"
            )
    return warnings


def plain_http_links(settings: Any) -> list[str]:
    """A warning when S3AUTH_PUBLIC_URL is plain http:// to a host other than this machine:
    each mailed link then opens a page that whoever is on the network path can rewrite, to
    read the token in its fragment and take the account over. Taken, since a network of
    one's own may be trusted; loopback, as in development, crosses no one else's path.
    `s3auth check` shows it, and the auth app logs it when it is made."""
    parts = urlsplit(settings.public_url)
    host = parts.hostname or ""
    if parts.scheme.lower() != "http" or is_loopback(host):
        return []
    return [
        f"{variable('public_url')} is plain http:// to {host}: every mailed reset or "
        "verification link opens a page that whoever is on the network path can rewrite to "
        "read the link's token and take the account over; use https://"
    ]
