"""Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226), as pure functions.

HOTP: the code of a counter is an HMAC-SHA-1 of the counter (8 bytes, big-endian) under the
shared seed, cut to 31 bits at an offset its last byte names (the "dynamic truncation"), and
written as its last `digits` decimal digits. TOTP is HOTP whose counter is the time step:
the Unix time divided by the period, rounded down. What every authenticator app uses, and
so the only parameters offered: SHA-1, 6 digits, 30-second steps.

A code is accepted for the step it was made in or one either side of it (`WINDOW`): a
phone's clock a little off, and a code typed as its step ends, still work, while a code is
good for at most three steps (90 s). The step a code matched is what the caller keeps, so
that a code, and any code of an earlier step, is refused once one has been accepted
(`last_step`): each code works once. Every step of the window is computed and compared in
constant time, whichever matches, so the time taken says nothing of which step did.

The seed is 160 random bits (RFC 4226 §4 recommends them), from the operating system's
CSPRNG, shown to the user in base32 without padding, as the otpauth:// URI carries it
(the format the apps' QR codes hold).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import quote

DIGITS = 6
PERIOD_SECONDS = 30
WINDOW = 1
"""Steps accepted either side of the current one."""
SEED_BYTES = 20
"""160 bits, the length of a SHA-1 HMAC key that RFC 4226 recommends."""
_ALGORITHM = "SHA1"


def hotp(seed: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 §5.3: the code of `counter`, `digits` decimal digits with leading zeros."""
    mac = hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def time_step(now: float, period: int = PERIOD_SECONDS) -> int:
    """RFC 6238 §4.2: the step `now` (Unix seconds) falls in, counted from T0 = 0."""
    return int(now // period)


def totp(seed: bytes, now: float, digits: int = DIGITS) -> str:
    """The code of the step `now` falls in."""
    return hotp(seed, time_step(now), digits)


def accepted_step(
    seed: bytes, code: object, now: float, *, last_step: int = -1, digits: int = DIGITS
) -> int | None:
    """The step within `WINDOW` of `now`'s, and later than `last_step` (the last one
    accepted), whose code `code` is; None when none is (or `code` is not `digits` ASCII
    digits). Each step of the window is compared, in constant time, whichever matches."""
    if not isinstance(code, str) or len(code) != digits or not code.isascii():
        return None
    if not code.isdigit():
        return None
    current = time_step(now)
    found: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if step < 0:
            continue
        matches = hmac.compare_digest(hotp(seed, step, digits), code)
        if matches and step > last_step and found is None:
            found = step
    return found


def new_seed() -> bytes:
    """A new random seed (`SEED_BYTES`, from the OS CSPRNG)."""
    return secrets.token_bytes(SEED_BYTES)


def encode_secret(seed: bytes) -> str:
    """The seed as authenticator apps take it typed in: base32, upper case, no padding."""
    return base64.b32encode(seed).decode().rstrip("=")


def decode_secret(text: str) -> bytes:
    """`encode_secret`'s inverse; lower case and missing padding are accepted."""
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def otpauth_uri(seed: bytes, *, issuer: str, account: str) -> str:
    """The Key URI an authenticator app reads from a QR code: `otpauth://totp/` then the
    label `issuer:account`, each part percent-encoded (a colon in either would split the
    label elsewhere), and the parameters of this module."""
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    parameters = (
        f"secret={encode_secret(seed)}&issuer={quote(issuer, safe='')}"
        f"&algorithm={_ALGORITHM}&digits={DIGITS}&period={PERIOD_SECONDS}"
    )
    return f"otpauth://totp/{label}?{parameters}"
