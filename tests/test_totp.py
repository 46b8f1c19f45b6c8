"""TOTP (RFC 6238) over HOTP (RFC 4226): the RFCs' own test vectors, the window of one step
either side, a code's step against the last one accepted, and the otpauth:// URI."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.totp import (
    DIGITS,
    PERIOD_SECONDS,
    SEED_BYTES,
    accepted_step,
    decode_secret,
    encode_secret,
    hotp,
    new_seed,
    otpauth_uri,
    time_step,
    totp,
)

RFC_SEED = b"12345678901234567890"


@pytest.mark.parametrize(
    ("counter", "code"),
    list(
        enumerate(
            [
                "755224",
                "287082",
                "359152",
                "969429",
                "338314",
                "254676",
                "287922",
                "162583",
                "399871",
                "520489",
            ]
        )
    ),
)
def test_hotp_gives_the_codes_of_rfc_4226_appendix_d(counter: int, code: str) -> None:
    assert hotp(RFC_SEED, counter) == code


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_totp_gives_the_sha1_codes_of_rfc_6238_appendix_b(now: int, code: str) -> None:
    assert totp(RFC_SEED, now, digits=8) == code


def test_what_authenticator_apps_use() -> None:
    assert (DIGITS, PERIOD_SECONDS, SEED_BYTES) == (6, 30, 20)
    assert totp(RFC_SEED, 59) == "287082"  # the 8-digit code's last six
    assert time_step(59.999) == 1 and time_step(60) == 2


def test_a_code_is_accepted_one_step_either_side_and_no_further() -> None:
    now = 1_000_000_020.0  # step 33333334, 20 s into it
    step = time_step(now)
    for offset in (-1, 0, 1):
        code = hotp(RFC_SEED, step + offset)
        assert accepted_step(RFC_SEED, code, now) == step + offset
    for offset in (-2, 2):
        assert accepted_step(RFC_SEED, hotp(RFC_SEED, step + offset), now) is None


def test_a_step_at_or_before_the_last_accepted_one_is_refused() -> None:
    now = 1_000_000_020.0
    step = time_step(now)
    code = hotp(RFC_SEED, step)
    assert accepted_step(RFC_SEED, code, now, last_step=step - 1) == step
    assert accepted_step(RFC_SEED, code, now, last_step=step) is None
    # The next step's code still works after this one's, within the window.
    assert accepted_step(RFC_SEED, hotp(RFC_SEED, step + 1), now, last_step=step) == step + 1


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12345a", "１２３４５６", " 123456", None, 123456]
)
def test_what_is_not_six_ascii_digits_is_refused(code: object) -> None:
    assert accepted_step(RFC_SEED, code, 59.0) is None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.binary(min_size=SEED_BYTES, max_size=SEED_BYTES),
    now=st.integers(min_value=0, max_value=2**34),
    offset=st.integers(min_value=-3, max_value=3),
)
def test_a_code_is_accepted_exactly_within_the_window(seed: bytes, now: int, offset: int) -> None:
    step = time_step(now)
    if step + offset < 0:
        return
    code = hotp(seed, step + offset)
    found = accepted_step(seed, code, now)
    if abs(offset) <= 1:
        # Another step of the window may give the same six digits (one in a million).
        assert found is not None and abs(found - step) <= 1
        assert hotp(seed, found) == code
    else:
        assert found is None or hotp(seed, found) == code  # only by such a collision


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=1, max_size=64), counter=st.integers(min_value=0, max_value=2**40))
def test_hotp_is_the_rfc_4226_truncation(seed: bytes, counter: int) -> None:
    mac = hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    assert hotp(seed, counter) == f"{number % 10**6:06d}"


def test_a_new_seed_is_160_random_bits_and_round_trips_through_base32() -> None:
    seeds = {new_seed() for _ in range(8)}
    assert len(seeds) == 8 and all(len(seed) == 20 for seed in seeds)
    seed = seeds.pop()
    text = encode_secret(seed)
    assert len(text) == 32 and "=" not in text and text == text.upper()
    assert decode_secret(text) == seed
    assert decode_secret(text.lower()) == seed
    assert base64.b32decode(text) == seed


def test_the_uri_is_what_authenticator_apps_read_its_names_escaped() -> None:
    seed = RFC_SEED
    uri = otpauth_uri(seed, issuer="Ex ample:Co", account="al ice@example.com&x=1")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Ex ample:Co:al ice@example.com&x=1"
    assert parts.path == "/Ex%20ample%3ACo:al%20ice%40example.com%26x%3D1"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [encode_secret(seed)],
        "issuer": ["Ex ample:Co"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
