"""What names, emails, ids and free text may be.

Usernames and emails: validation and the normalised form that makes them unique.
`ALICE`, `alice` and fullwidth `ａｌｉｃｅ` are one name: NFKC, then casefold, then NFKC
again (casefolding can leave a string unnormalised). Zero-width, control and other
invisible characters are refused rather than stripped, so that what a user sees is what
they typed.

A new username must also hold no character that is not drawn (Unicode's
Default_Ignorable_Code_Point, as PRECIS refuses them: the Hangul filler `ㅤ` is a letter
to its category, and a name of three of them a blank one; `confusables`), stack no marks
on a letter (more than four in a row, or one twice, as UTS #39 §5.4 suggests refusing:
they are drawn over the text beside them), hold a letter or a digit (not `---`), not fold
to the shape of an id (`0123…ABCDEF`: a tool that takes an account by id or by name would
read it as another account's id), be in one script as Unicode TR39's Moderately
Restrictive profile allows (not `аdmin`, a Cyrillic а before Latin), follow RFC 5893's
Bidi Rule when it holds a right-to-left letter, as RFC 8265 asks (not `12אב`, which shows
as `אב12` does: `bidi_rule`), and has a skeleton (`username_skeleton`) that is reserved
beside it, so that `rnary` is taken once `mary` is (`confusables` says how). Those rules
apply where a name is registered (`clean_username`), not where one is looked up
(`normalise_username`): an account registered before them keeps signing in.

An email address is checked and normalised by email-validator (syntax only: no DNS), and
stored as it normalises it: the domain in its IDNA-normalised Unicode form, lower case; the
local part NFC, its case kept. Its unique form is that, folded as names are: local parts
are case-insensitive here, as most providers treat them, and a domain only differs from its
casefold where IDNA2008 tells `ß` from `ss` (those then count as one address). Unique is
not the same: `straße@` and `strasse@` are one name here, but may be two mailboxes, so
only the address as stored is the address an account has (`email_changes`).

A new address must also read as itself in a mail header (`mail_addresses`): no `=?`, which
opens an RFC 2047 encoded word that Python's email package decodes even in a local part,
and nothing else a header would read as another address. email-validator already refuses
quotes, white space, comments and the specials `(),:;<>@[\\]` in a local part. Nor may its
local part hold a character that is not drawn, as a username may not (email-validator lets
the letters and marks among them through): `alice` and a combining grapheme joiner, then
`@example.com`, would show as `alice@example.com`.

Ids: user and session ids are exactly 32 lowercase hex digits (`ID_PATTERN`), and every
check of an id (`is_id`, the refresh-token format) is built from that one rule, so no
parser accepts an id that no generator makes. A user id is 128 random bits. A session id
is `1`, 11 hex digits of its creation time in milliseconds, the 8-digit counter of the
user's session generation its login read (`session_generation`), then 48 random bits: so
sessions sort by age, and a session's age and the generation it was opened from can be
read from its id alone, in a listing. Ids made before the counter was in them are 12 digits
of the creation time (the first a 0 until the year 2527) then 80 random bits: the same age
where the `1` stands, and no generation (counted as the oldest).

Free text (full name, device, IP address) is stored without control and format
characters; scopes are short printable strings without spaces, no more than a token
carries (`token_budget`).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import TypeGuard

from .bidi_rule import follows_bidi_rule
from .errors import InvalidEmailError, InvalidUsernameError, S3ValidationError, UserNotFoundError
from .token_budget import check_scopes

USERNAME_MIN = 3
USERNAME_MAX = 64
EMAIL_MAX = 254
# Longer than any username or email: a login with more is refused before any request.
IDENTIFIER_MAX = 320
FULL_NAME_MAX = 200
DEVICE_INFO_MAX = 256
REPORTED_TEXT_READ = 4
"""Of text a client reports about itself (`clean_text` with `truncate`), this many times
its stored length is read: a header can be megabytes long (uvicorn's httptools parser takes
such), and judging a character holds the event loop 60 ns, 60 ms a megabyte."""
IP_ADDRESS_MAX = 64
SCOPE_MAX = 64
ID_HEX_DIGITS = 32
ID_PATTERN = f"[0-9a-f]{{{ID_HEX_DIGITS}}}"
_ID = re.compile(ID_PATTERN)
_SESSION_LAYOUT = "1"
_SESSION_TIME_DIGITS = 11
_SESSION_COUNTER_DIGITS = 8
_USERNAME_PUNCTUATION = frozenset("._-")
# RFC 2047 (section 5) allows no encoded word in an address; a header parser that decodes
# one there reads the address as another (`mail_addresses`).
_ENCODED_WORD = "=?"
# Letters, marks and numbers; everything else (controls, format characters such as
# zero-width joiners, separators, symbols, private use, surrogates) is refused.
_ALLOWED_CATEGORIES = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"))


def fold(value: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def clean_username(raw: object) -> str:
    """A new username as stored (NFKC, trimmed); raises InvalidUsernameError."""
    value = _username_form(raw)
    # Imported here: ICU is a large library that only registrations need, and the
    # middleware imports this module (for `fold`) on every worker.
    from .confusables import has_default_ignorable, moderately_restrictive, stacks_marks

    if has_default_ignorable(value):
        raise InvalidUsernameError(
            "The username must not hold characters that are not drawn (such as fillers, "
            "joiners or variation selectors)"
        )
    if stacks_marks(value):
        raise InvalidUsernameError(
            "The username must not stack marks on a letter: at most four in a row, each "
            "once, or they are drawn over the text beside it"
        )
    if not any(unicodedata.category(char)[0] in "LN" for char in value):
        raise InvalidUsernameError("The username must hold a letter or a digit")
    if is_id(fold(value)):
        # Tools that take an account by id or by name would read it as another's id.
        raise InvalidUsernameError(
            f"The username must not look like an account id ({ID_HEX_DIGITS} hexadecimal digits)"
        )
    if not moderately_restrictive(value):
        raise InvalidUsernameError(
            "The username mixes scripts: it may add to Latin only Chinese, Japanese, Korean "
            "or one other script, not Cyrillic or Greek"
        )
    if not follows_bidi_rule(value):
        raise InvalidUsernameError(
            "A username with right-to-left letters must start with one, end with one or a "
            "digit, hold no left-to-right letter and not mix two kinds of digits (RFC 5893's "
            "Bidi Rule), or it shows in another order than it is written"
        )
    return value


def username_skeleton(username: str) -> str:
    """What a username looks like, as reserved beside it so that no look-alike registers:
    the TR39 skeleton of the name as it is shown, then folded, so that `Ian` (capital i)
    and `lan` are one, and so are `B0B` and `bob`."""
    from .confusables import skeleton  # see clean_username

    return fold(skeleton(username))


def _username_form(raw: object) -> str:
    """The username as stored, by the rules every name has had to follow."""
    if not isinstance(raw, str):
        raise InvalidUsernameError("The username must be a string")
    value = unicodedata.normalize("NFKC", raw.strip())
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX:
        raise InvalidUsernameError(
            f"The username must be {USERNAME_MIN} to {USERNAME_MAX} characters long"
        )
    for char in value:
        if char in _USERNAME_PUNCTUATION:
            continue
        if unicodedata.category(char) not in _ALLOWED_CATEGORIES:
            raise InvalidUsernameError(
                "The username may hold letters, digits, '.', '_' and '-' only"
            )
    return value


def normalise_username(raw: object) -> str:
    """The unique form of a username as typed (raises InvalidUsernameError): by the rules
    of `_username_form` only, so that names registered before the others still sign in."""
    return fold(_username_form(raw))


def clean_email(raw: object) -> str:
    """A new email address as stored: trimmed, then email-validator's normalised form;
    raises InvalidEmailError with email-validator's reason, or for an address a mail
    header would read as another or that holds a character not drawn (see the module)."""
    value, ascii_form = _validated_email(raw)
    if _ENCODED_WORD in value:
        raise InvalidEmailError(
            f"The email address is not valid: it must not hold '{_ENCODED_WORD}', which opens "
            "an encoded word in a mail header"
        )
    # Imported here, as email-validator is.
    from .mail_addresses import reads_as_itself

    if not reads_as_itself(ascii_form):
        raise InvalidEmailError(
            "The email address is not valid: a mail header would read it as another"
        )
    local = value.rpartition("@")[0]
    if not local.isascii():  # IDNA has already dropped such characters from the domain
        from .confusables import has_default_ignorable  # ICU: see clean_username

        if has_default_ignorable(local):
            raise InvalidEmailError(
                "The email address is not valid: it holds a character that is not drawn"
            )
    return value


def _validated_email(raw: object) -> tuple[str, str]:
    """email-validator's normalised form of `raw`, trimmed, and that form with its domain
    in ASCII (the same when the local part is not ASCII, which has no such form)."""
    if not isinstance(raw, str):
        raise InvalidEmailError("The email must be a string")
    value = raw.strip()
    if len(value) > EMAIL_MAX:  # refused below too, but not worth parsing
        raise InvalidEmailError("The email address is too long")
    # Imported here: the middleware imports this module and needs no email parsing.
    from email_validator import EmailNotValidError, validate_email

    try:
        # Syntax only: deliverability would mean a DNS lookup at every registration.
        valid = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"The email address is not valid: {exc}") from None
    return valid.normalized, valid.ascii_email or valid.normalized


def normalise_email(raw: object) -> str:
    """The unique form of an email address as typed (raises InvalidEmailError).

    An address that passed the rules of an earlier version still has the form it gave it,
    so that an account registered with one keeps signing in with it: one email-validator
    takes (and `clean_email` refuses, a header reading it as another), its normalised form;
    one email-validator refuses, the form versions before it gave. Only the index can
    answer for such a form, and nothing new is indexed under one."""
    try:
        return fold(_validated_email(raw)[0])
    except InvalidEmailError:
        if not isinstance(raw, str) or not _earlier_email_rules(raw):
            raise
        return fold(raw.strip())


def _earlier_email_rules(raw: str) -> bool:
    """Whether the checks registrations made before email-validator accept `raw`."""
    value = unicodedata.normalize("NFKC", raw.strip())
    local, at, domain = value.rpartition("@")
    return (
        bool(at and local)
        and "@" not in local
        and "." in domain.strip(".")
        and len(value) <= EMAIL_MAX
        and not any(_invisible(c) or c.isspace() for c in value)
    )


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def looks_like_email(identifier: str) -> bool:
    return "@" in identifier


# Ids -------------------------------------------------------------------------------------


def is_id(value: object) -> TypeGuard[str]:
    """Whether `value` has the shape of a user or session id; nothing else can exist."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def require_user_id(value: object) -> str:
    """`value` as a user id; UserNotFoundError when it cannot be one, since no such user
    can exist and asking the store would only cost a request."""
    if not is_id(value):
        raise UserNotFoundError()
    return value


def new_id() -> str:
    """A user id: 128 random bits."""
    return secrets.token_hex(ID_HEX_DIGITS // 2)


def new_session_id(now_ms: int, generation_counter: int = 0) -> str:
    """A session id (see the module): its creation time and the counter of the session
    generation its login read, then 48 random bits, so that ids sort by age and a listing
    tells which generation each session was opened from."""
    time = min(now_ms, 16**_SESSION_TIME_DIGITS - 1)
    counter = min(max(generation_counter, 0), 16**_SESSION_COUNTER_DIGITS - 1)
    random_digits = ID_HEX_DIGITS - 1 - _SESSION_TIME_DIGITS - _SESSION_COUNTER_DIGITS
    return (
        f"{_SESSION_LAYOUT}{time:0{_SESSION_TIME_DIGITS}x}"
        f"{counter:0{_SESSION_COUNTER_DIGITS}x}{secrets.token_hex(random_digits // 2)}"
    )


def session_created_ms(session_id: str) -> int:
    """When the session was opened, from its id; both layouts keep it at the same place."""
    try:
        return int(session_id[1 : 1 + _SESSION_TIME_DIGITS], 16)
    except ValueError:
        return 0


def session_age(session_id: str) -> tuple[int, str]:
    """What orders sessions by age, the same on every host: the creation time in the id,
    then the id (ids of both layouts, as hosts of two versions write them side by side)."""
    return session_created_ms(session_id), session_id


def session_generation_counter(session_id: str) -> int:
    """The counter of the session generation the session was opened from, from its id; 0
    (the oldest) for an id that does not say it."""
    if not session_id.startswith(_SESSION_LAYOUT):
        return 0
    start = 1 + _SESSION_TIME_DIGITS
    try:
        return int(session_id[start : start + _SESSION_COUNTER_DIGITS], 16)
    except ValueError:
        return 0


# Free text -------------------------------------------------------------------------------


def clean_text(value: object, field: str, max_length: int, *, truncate: bool = False) -> str | None:
    """`value` without control, format and surrogate characters, trimmed; None when empty.
    Too long is an S3ValidationError, or cut to `max_length` with `truncate` (for what a
    client reports about itself, which should not fail a login: then only its first
    `REPORTED_TEXT_READ` × `max_length` characters are read)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise S3ValidationError(f"{field} must be a string")
    if truncate:
        value = value[: REPORTED_TEXT_READ * max_length]
    text = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    text = text.strip()
    if len(text) > max_length:
        if not truncate:
            raise S3ValidationError(f"{field} must be at most {max_length} characters")
        text = text[:max_length]
    return text or None


def clean_scopes(scopes: object) -> list[str]:
    """Scopes as stored: sorted, without duplicates (they are joined with spaces into the
    `scope` claim, hence no spaces in one), no more than a token carries (`token_budget`)."""
    if scopes is None:
        return []
    if not isinstance(scopes, list) or not all(
        isinstance(s, str) and 0 < len(s) <= SCOPE_MAX and s.isprintable() and " " not in s
        for s in scopes
    ):
        raise S3ValidationError("scopes must be a list of short strings without spaces")
    check_scopes(scopes)
    return sorted(set(scopes))
