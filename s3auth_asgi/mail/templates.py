"""The texts of the mails, as `string.Template`s: `$username`, `$email`, `$link`, `$token`
and `$lifetime` (e.g. "30 minutes") are filled in. Replace any of them:

    templates = MailTemplates(
        password_reset=MailTemplate("Your password", "Hi $username, go to $link"),
    )
    auth = S3AuthService(settings, mail_templates=templates)

The links are `{S3AUTH_PUBLIC_URL}{path}#token={token}`: the token goes in the fragment,
which browsers send to no server, so it stays out of access logs and Referer headers;
the front end at that path reads it and POSTs it to /auth/password/reset or
/auth/email/verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import NamedTuple


class MailTemplate(NamedTuple):
    subject: str
    text: str


RESET = MailTemplate(
    "Reset your password",
    "Hello $username,\n\n"
    "someone (we hope you) asked to reset the password of your account. To choose a new "
    "one, open this link:\n\n$link\n\n"
    "It works once, for $lifetime. If you did not ask for it, ignore this message: your "
    "password stays as it is.\n",
)
VERIFY = MailTemplate(
    "Confirm your email address",
    "Hello $username,\n\n"
    "please confirm that $email is your address by opening this link:\n\n$link\n\n"
    "It works once, for $lifetime. If you did not create an account, ignore this message.\n",
)


@dataclass(frozen=True, slots=True)
class MailTemplates:
    password_reset: MailTemplate = RESET
    email_verification: MailTemplate = VERIFY
    reset_path: str = "/reset-password"
    """Where the front end takes a new password (after S3AUTH_PUBLIC_URL)."""
    verify_path: str = "/verify-email"


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
