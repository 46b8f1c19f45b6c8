"""The login's second-step token (`mfa_challenges`) carries the name typed, which may be
any address that registers: the longest must still make a token that the second step
reads, or its owner cannot log in by address once the second factor is on."""

from __future__ import annotations

import msgspec
from support import Clock, user_record

from s3auth_asgi.app.totp_schemas import TotpLoginRequest
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.mfa_challenges import MfaChallenges
from s3auth_asgi.name_index import parse_name
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.totp_seeds import SeedSeal

LONGEST = "\U0001f600" * 64 + "@" + ".".join(["\u7528" * 61] * 3) + ".de"
"""An address that registers (253 characters), each of them outside ASCII."""


def test_the_longest_address_makes_a_token_the_second_step_reads() -> None:
    name = parse_name(LONGEST)
    assert name.normalised is not None  # an address a user may have
    secret_key = new_secret_key()
    user = user_record()
    user.totp_secret = SeedSeal([secret_key]).seal(b"s" * 20, user.id)
    user.totp_recovery = ["$argon2id$" + "x" * 90] * 10
    challenges = MfaChallenges([secret_key], Clock())
    token = challenges.issue(user, device_id=new_id(), name=name.account_key, user_agent="x")
    request = msgspec.convert({"mfa_token": token, "code": "123456"}, TotpLoginRequest)
    assert challenges.read(request.mfa_token, "x").name == name.account_key
