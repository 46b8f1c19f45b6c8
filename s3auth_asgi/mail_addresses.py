"""How an address reads where mail takes it.

`ascii_domain`: the address with its domain in its ASCII (IDNA) form, which every mail
server takes (`bücher.de` is `xn--bcher-kva.de`).

`header_addresses`: the addresses a To header holding a value names, as the standard
library's email package reads them, the parser `smtplib.send_message` takes its recipients
from unless it is told them, as do many mailers built on it. That parser decodes an RFC
2047 encoded word (`=?utf-8?q?…?=`) wherever it finds one, in the local part of an address
too, where RFC 2047 forbids them: `=?utf-8?q?a=40evil.example=3E?=x@victim.example`, an
address at victim.example, reads as `a@evil.example`. So an address must read as itself
(`reads_as_itself`): where one is taken (`identifiers.clean_email`), and again before any
message is handed to a mailer or sent (`mail.Message.recipient`), for the addresses stored
before that rule.
"""

from __future__ import annotations


def ascii_domain(address: str) -> str:
    """`address` with its domain in its ASCII (IDNA) form; as it is when its local part is
    not ASCII, or it is no address email-validator takes."""
    # Imported here, as where addresses are checked: loading it takes a fifth of a second.
    from email_validator import EmailNotValidError, validate_email

    try:
        ascii_form = validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError:
        return address
    return ascii_form or address


def header_addresses(value: str) -> tuple[str, ...]:
    """The addresses (`local@domain`) a To header of `value` names; none when the header
    cannot be read (or set: a line break in it)."""
    from email.message import EmailMessage

    mail = EmailMessage()
    try:
        mail["To"] = value
        return tuple(address.addr_spec for address in mail["To"].addresses)
    except Exception:  # the parser raises any of a dozen types on what it cannot read
        return ()


def reads_as_itself(address: str) -> bool:
    """Whether a To header of `address` names that address and no other."""
    return header_addresses(address) == (address,)
