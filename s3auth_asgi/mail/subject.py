"""A mail's Subject header that reads as the subject it was given (`set_subject_header`).

Python's email package takes a header value it is handed as if it had been read off the
wire: it decodes any RFC 2047 encoded word in it (`=?utf-8?q?…?=`), and writes out what it
decoded. The line breaks an encoded word can hold then end the Subject there, and what
follows is a header of the sender's choosing, or after a blank line the body the reader
sees. The subjects are the templates filled in, and some values come from clients: the
User-Agent of a login, in a host's template that names `$device` in its subject. So a
subject that its header would not read as itself is written wholly as encoded words,
which a mail reader decodes to exactly the text given, and nothing else. `SMTPMailer` writes
its subjects so; a host's own mailer that builds an `EmailMessage` calls it as well
(`s3auth_asgi.mail.set_subject_header`).
"""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage
from email.policy import Policy

NAME = "Subject"


def set_subject_header(mail: EmailMessage, subject: str) -> None:
    """`mail`'s Subject: `subject` as it is, or encoded where it would not read as itself.
    ValueError for a subject with a line break of its own (a template's)."""
    mail[NAME] = subject
    if str(mail[NAME]) != subject:
        del mail[NAME]
        mail[NAME] = _EncodedSubject(subject)


class _EncodedSubject(str):
    """A header value the email package stores and writes as it is (it has a `name`, as
    its own header objects do): `fold` writes it as UTF-8 encoded words."""

    name = NAME
    defects = ()

    def fold(self, *, policy: Policy) -> str:
        encoded = Header(str(self), "utf-8", header_name=NAME).encode(linesep=policy.linesep)
        return f"{NAME}: {encoded}{policy.linesep}"
