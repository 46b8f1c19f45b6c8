"""A TOTP seed is kept sealed: AES-GCM under a key derived from the secret key for this use
alone, bound to its user, and shown by no rendering of the record."""

from __future__ import annotations

import base64

import msgspec

from s3auth_asgi.models import User
from s3auth_asgi.tokens import derive_key
from s3auth_asgi.totp import new_seed
from s3auth_asgi.totp_seeds import SeedSeal, seed_key

SECRET = "a-secret-key-of-the-service-" * 2


def test_the_key_is_derived_from_the_secret_key_for_this_purpose_alone() -> None:
    expected = derive_key(SECRET, "totp-seed")
    assert seed_key(SECRET) == expected and len(expected) == 32  # AES-256
    assert seed_key(SECRET + "x") != expected
    others = ("refresh-token", "account-token", "device-cookie", "mfa-challenge")
    assert expected not in {derive_key(SECRET, purpose) for purpose in others}
    assert expected != SECRET.encode()  # not the HS* access-token key


def test_a_sealed_seed_opens_for_its_user_under_its_secret_key_only() -> None:
    seal = SeedSeal([SECRET])
    seed = new_seed()
    sealed = seal.seal(seed, "user-a")
    assert sealed.startswith("ts1.")
    assert seal.open(sealed, "user-a") == seed
    assert seal.seal(seed, "user-a") != sealed  # a fresh nonce each time
    assert seal.open(sealed, "user-b") is None  # copied into another's record
    assert SeedSeal([SECRET + "x"]).open(sealed, "user-a") is None  # another secret key
    for broken in ("", "ts1.", "ts1.AAAA", sealed[:-2], "ts2." + sealed[4:], "ts1.!.!"):
        assert seal.open(broken, "user-a") is None
    text = base64.b32encode(seed).decode()
    assert seed.hex() not in sealed and text not in sealed and text.rstrip("=") not in sealed
    assert "<hidden>" in repr(seal)


def test_the_record_shows_neither_seed_and_the_public_user_only_whether_it_is_on() -> None:
    seal = SeedSeal([SECRET])
    sealed = seal.seal(new_seed(), "u1")
    pending = seal.seal(new_seed(), "u1")
    user = User(
        id="u1",
        username="alice",
        email="alice@example.com",
        hashed_password="h",
        totp_secret=sealed,
        pending_totp_secret=pending,
    )
    assert sealed not in repr(user) and pending not in repr(user)
    public = msgspec.json.encode(user.public())
    assert sealed.encode() not in public and pending.encode() not in public
    assert msgspec.json.decode(public)["totp_enabled"] is True
    assert msgspec.json.decode(msgspec.json.encode(user), type=User) == user
