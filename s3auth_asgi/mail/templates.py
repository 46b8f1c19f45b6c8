"""The texts of the mails, as `string.Template`s: `$username`, `$email` (the address the
mail goes to), `$link`, `$token` and `$lifetime` (e.g. "30 minutes") are filled in, and
`$new_email` in the notices of a change of address; `$time` (UTC), `$client` (the client
address) and, of a login from a new device, `$device` (its User-Agent) in the notices of
logins; `$time`, `$codes_left` and `$few_left` (a sentence asking for new codes where few
are left, else empty) in that of a recovery code used. The notices (`*_notice`) hold no
link and no token: they tell the account's address what changed or who signed in, so that
its owner hears of what was not theirs. The defaults use no `$username`: see RESET.
Replace any of them:

    templates = MailTemplates(
        password_reset=MailTemplate("Your password", "Open $link within $lifetime."),
    )
    auth = S3AuthService(settings, mail_templates=templates)

The links are `{S3AUTH_PUBLIC_URL}{path}#token={token}`: the token goes in the fragment,
which browsers send to no server, so it stays out of access logs and Referer headers;
the front end at that path reads it and POSTs it to /auth/password/reset or
/auth/email/verify (which takes the link that confirms a new address too).
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import NamedTuple

from ..errors import ConfigurationError


class MailTemplate(NamedTuple):
    subject: str
    text: str


# The defaults name no username: a username is what a registrant typed, and the address it
# goes to need not be theirs (registration verifies nothing), so a stranger's inbox would
# get their words from this sender. Templates of one's own may still use `$username`.
RESET = MailTemplate(
    "Reset your password",
    "Hello,\n\n"
    "someone (we hope you) asked to reset the password of your account. To choose a new "
    "one, open this link:\n\n$link\n\n"
    "It works once, for $lifetime. If you did not ask for it, ignore this message: your "
    "password stays as it is.\n",
)
VERIFY = MailTemplate(
    "Confirm your email address",
    "Hello,\n\n"
    "please confirm that $email is your address by opening this link:\n\n$link\n\n"
    "It works once, for $lifetime. If you did not create an account, ignore this message.\n",
)

CHANGE = MailTemplate(
    "Confirm your new email address",
    "Hello,\n\n"
    "please confirm that $email is to be the address of your account by opening this "
    "link:\n\n$link\n\n"
    "It works once, for $lifetime. Until it is opened, your account keeps its current "
    "address. If you did not ask for this, ignore this message.\n",
)
CHANGE_NOTICE = MailTemplate(
    "A new email address was asked for",
    "Hello,\n\n"
    "someone signed in to your account, with its password, asked to change its email "
    "address to $new_email. The change happens only once a link mailed to that address "
    "is opened; until then your account keeps this address.\n\n"
    "If it was not you, change your password now (or reset it from this address): a new "
    "password cancels the change, and whoever asked for it knows your password.\n",
)
# Whoever asked knew the password and reads the new address: the first notice's advice, a
# reset from this address, no longer reaches the account, and no link could undo the move
# without being one that an attacker who reads this inbox's mail could use too. So the
# owner is sent to the operators, as by an administrator's change.
CHANGE_CONFIRMED = MailTemplate(
    "Your email address was changed",
    "Hello,\n\n"
    "the email address of your account is now $new_email: the link mailed there, after a "
    "change to it was asked for with the account's password, was opened. From now on the "
    "account's mail, password resets included, goes there, and this address no longer "
    "signs in.\n\n"
    "If it was not you, whoever did it knows your password and reads that address, and a "
    "reset from this address no longer reaches your account: ask the administrators of "
    "the site about it at once.\n",
)
PASSWORD_CHANGED = MailTemplate(
    "Your password was changed",
    "Hello,\n\n"
    "the password of your account was changed, and every session of the account was "
    "ended.\n\n"
    "If you did not expect this, reset your password now: the link to do so comes to this "
    "address.\n",
)
# It names nobody as the author: `update_user` is an administrator's change at the admin
# endpoint, but also a host's own code, which may act for the user.
EMAIL_CHANGED = MailTemplate(
    "Your email address was changed",
    "Hello,\n\n"
    "the email address of your account was changed to $new_email. From now on the "
    "account's mail, password resets included, goes there, and this address no longer "
    "signs in.\n\n"
    "If you did not make or expect this change, ask the administrators of the site about "
    "it at once.\n",
)

# Whoever signed in knows the password: the owner is told to change it and end the sessions
# it opened. No link: a notice that asks to click would teach the owner to follow links in
# mail that looks like it.
NEW_DEVICE = MailTemplate(
    "A new sign-in to your account",
    "Hello,\n\n"
    "your account was signed in to from a device or browser it had not been seen on "
    "lately:\n\n"
    "  time: $time\n  device: $device\n  address: $client\n\n"
    "If it was you, there is nothing to do. If it was not, someone knows your password: "
    "change it now (or reset it from this address), which ends every session of the "
    "account, or log out everywhere from your account's settings at once.\n",
)
# Anybody can type wrong passwords for a name, with a User-Agent of their choosing: this
# notice quotes none of it, so that nobody chooses words for the owner's inbox.
FAILED_LOGINS = MailTemplate(
    "Repeated failed sign-ins to your account",
    "Hello,\n\n"
    "someone typed wrong passwords for your account as often as it is allowed to, and "
    "further attempts are refused for a while. The last one:\n\n"
    "  time: $time\n  address: $client\n\n"
    "If it was you, wait a while, or reset your password from this address. If it was "
    "not, your password held; if you use it elsewhere or it is easy to guess, reset it now "
    "and log out everywhere from your account's settings.\n",
)

TOTP_ENABLED = MailTemplate(
    "A second factor was turned on",
    "Hello,\n\n"
    "signing in to your account now takes a code of an authenticator app besides the "
    "password.\n\n"
    "If you did not do this, someone knows your password: reset it now from this address, "
    "and ask the administrators of the site to turn the second factor off.\n",
)
TOTP_DISABLED = MailTemplate(
    "Your second factor was turned off",
    "Hello,\n\n"
    "signing in to your account no longer takes a code of an authenticator app: the "
    "password alone opens it again.\n\n"
    "If you did not expect this, reset your password now from this address, and turn the "
    "second factor on again.\n",
)

# Whoever used it knows the password and holds the codes: the password changed ends their
# sessions, and new codes end the ones they hold. No link, as in every notice.
RECOVERY_CODE_USED = MailTemplate(
    "A recovery code of your account was used",
    "Hello,\n\n"
    "one of your account's recovery codes was given in place of a code of the "
    "authenticator app, to sign in or to confirm a sign-in, at $time. Each code works "
    "once. Recovery codes left: $codes_left.$few_left\n\n"
    "If it was you, there is nothing else to do. If it was not, someone knows your "
    "password and has your recovery codes: change your password now (or reset it from "
    "this address), which ends every session of the account, then make new recovery "
    "codes in your account's settings, which stops the others working (or turn the "
    "second factor off and on again).\n",
)


@dataclass(frozen=True, slots=True)
class MailTemplates:
    password_reset: MailTemplate = RESET
    email_verification: MailTemplate = VERIFY
    email_change: MailTemplate = CHANGE
    """To a new address the user asked for: its link confirms it (`verify_path`)."""
    email_change_notice: MailTemplate = CHANGE_NOTICE
    """To the address the account has, when a new one is asked for: no link."""
    email_change_confirmed_notice: MailTemplate = CHANGE_CONFIRMED
    """To the address the account had, once the link mailed to the new address the user
    asked for moved the account there: no link."""
    password_changed_notice: MailTemplate = PASSWORD_CHANGED
    """To the account's address, once its password was changed, reset or set by an
    administrator: no link."""
    email_changed_notice: MailTemplate = EMAIL_CHANGED
    """To the address the account had, once `update_user` moved the account to another
    (an administrator, or the host's own code): no link."""
    new_device_notice: MailTemplate = NEW_DEVICE
    """To the account's address, after a login from a device it has not been seen on (no
    valid device cookie of the account): no link."""
    failed_logins_notice: MailTemplate = FAILED_LOGINS
    """To the account's address, once wrong passwords spent its failure budget: no link."""
    totp_enabled_notice: MailTemplate = TOTP_ENABLED
    """To the account's address, once its second factor was turned on: no link."""
    totp_disabled_notice: MailTemplate = TOTP_DISABLED
    """To the account's address, once its second factor was turned off (by its owner, an
    administrator or `s3auth user totp-off`): no link."""
    recovery_code_used_notice: MailTemplate = RECOVERY_CODE_USED
    """To the account's address, once one of its recovery codes was accepted in place of
    a code of the app (`code_uses`): no link."""
    reset_path: str = "/reset-password"
    """Where the front end takes a new password (after S3AUTH_PUBLIC_URL)."""
    verify_path: str = "/verify-email"

    def __post_init__(self) -> None:
        for field in ("reset_path", "verify_path"):
            _check_link_path(field, getattr(self, field))


def _check_link_path(field: str, path: object) -> None:
    """ConfigurationError unless `path` is a path on the front end's host. The link is the
    public URL and the path, joined as text: `.evil.example/r` or `@evil.example/r` would
    move the token to another host, `//host` does so where the public URL is empty (the
    outbox), and a browser reads `/\\host` as `//host`. A `#` would put the token in
    another fragment than the page reads, and whitespace breaks a link in a plain-text
    mail."""
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path[1:2] in ("/", "\\")
        or "#" in path
        or any(char.isspace() or not char.isprintable() for char in path)
    ):
        raise ConfigurationError(
            f"MailTemplates.{field} must be a path on the front end (after "
            f"S3AUTH_PUBLIC_URL): one '/' first, then no '#', space or control character; "
            f"got {path!r}"
        )


def render(template: MailTemplate, values: dict[str, str]) -> MailTemplate:
    """The template filled in; unknown `$names` are left as written."""
    return MailTemplate(
        Template(template.subject).safe_substitute(values),
        Template(template.text).safe_substitute(values),
    )


def lifetime_text(seconds: int) -> str:
    """`30 minutes`, `2 hours`, `2 days`."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
