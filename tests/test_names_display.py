"""A new name shows what it is: no character that is not drawn (Unicode's
Default_Ignorable_Code_Point, which PRECIS disallows in usernames) in a username or in an
address's local part."""

from __future__ import annotations

import icu  # type: ignore[import-untyped]
import pytest
from conftest import make_service
from test_names_confusable import legacy_user, register

from s3auth_asgi import InvalidEmailError, InvalidUsernameError, S3ValidationError
from s3auth_asgi.identifiers import clean_username

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
_IGNORABLE = icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT


def default_ignorables() -> list[str]:
    """Every code point ICU's data calls Default_Ignorable."""
    return [
        chr(code)
        for code in range(0x110000)
        if not 0xD800 <= code <= 0xDFFF and icu.Char.hasBinaryProperty(chr(code), _IGNORABLE)
    ]


# Characters that are not drawn --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "\u3164\u3164\u3164",  # Hangul fillers (letters, to Unicode): a blank name
        "\uffa0\uffa0\uffa0",  # their half-width form
        "alice\u3164",
        "alice\u034f",  # combining grapheme joiner
        "alice\ufe0f",  # variation selector
        "x\U000e0100yz",  # a supplementary variation selector
        "bob\u115f",  # a Hangul choseong filler
        "ab\u17b4c",  # a Khmer inherent vowel, which is not written
    ],
)
async def test_a_username_with_a_character_that_is_not_drawn_is_refused(name: str) -> None:
    service = make_service()
    with pytest.raises(InvalidUsernameError) as info:
        await register(service, name)
    assert info.value.code == "invalid_username"
    assert sum(service.store.requests.values()) == 0


def test_every_default_ignorable_character_is_refused_in_a_new_username() -> None:
    ignorables = default_ignorables()
    assert len(ignorables) > 4000  # the data is there, and ICU reads it
    accepted = []
    for char in ignorables:
        try:
            clean_username(f"ab{char}cd")
        except S3ValidationError:
            continue
        accepted.append(f"U+{ord(char):04X}")
    assert accepted == []


async def test_an_older_account_with_such_a_name_still_signs_in() -> None:
    service = make_service()
    old = await legacy_user(service, "bob\u3164", "bob@example.com")
    found = await service.authenticate_user("bob\u3164", PASSWORD)
    assert found is not None and found.id == old.id


@pytest.mark.parametrize("hidden", ["\u034f", "\ufe0f", "\u3164", "\u115f", "\U000e0100"])
async def test_an_address_that_shows_as_a_taken_one_is_refused(hidden: str) -> None:
    service = make_service()
    await register(service, "alice", "alice@example.com")
    service.store.reset_counts()
    with pytest.raises(InvalidEmailError) as info:
        await register(service, "mallory", f"alice{hidden}@example.com")
    assert info.value.code == "invalid_email"
    assert sum(service.store.requests.values()) == 0


async def test_an_older_account_with_such_an_address_still_signs_in() -> None:
    service = make_service()
    old = await legacy_user(service, "alice", "alice\u034f@example.com")
    found = await service.authenticate_user("alice\u034f@example.com", PASSWORD)
    assert found is not None and found.id == old.id
