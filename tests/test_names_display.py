"""A new name shows what it is: no character that is not drawn (Unicode's
Default_Ignorable_Code_Point, which PRECIS disallows in usernames) in a username or in an
address's local part, no marks stacked on one character past what UTS #39 (section 5.4)
allows, and a username with right-to-left letters follows the Bidi Rule (RFC 5893, as
RFC 8265 asks), so that no two names show alike on screen."""

from __future__ import annotations

import itertools
import unicodedata

import icu  # type: ignore[import-untyped]
import pytest
from conftest import make_service
from hypothesis import given
from hypothesis import strategies as st
from test_names_confusable import legacy_user, refused_name, register

from s3auth_asgi import InvalidEmailError, InvalidUsernameError, S3ValidationError
from s3auth_asgi.identifiers import clean_username, username_skeleton

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


def shown(text: str, right_to_left: bool) -> str:
    """`text` in the order a screen shows it (the Unicode Bidirectional Algorithm, ICU's), in
    a paragraph of either direction."""
    bidi = icu.Bidi()
    bidi.setPara(icu.UnicodeString(text), 1 if right_to_left else 0)
    return str(bidi.writeReordered(0))


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
    await refused_name(name)


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


# Stacked marks --------------------------------------------------------------------------------

_STACKABLE = "\u0301\u0302\u0303\u0308\u0323\u0330\u20dd\u20de"  # Mn, then Me
_SPOOF_CHECKER = icu.SpoofChecker()
_SPOOF_CHECKER.setChecks(icu.USpoofChecks.INVISIBLE)


def mark_runs(text: str) -> list[str]:
    """The runs of nonspacing and enclosing marks in `text`, each as it stands."""
    runs, run = [], ""
    for char in text:
        if unicodedata.category(char) in ("Mn", "Me"):
            run += char
        elif run:
            runs, run = [*runs, run], ""
    return [*runs, run] if run else runs


@pytest.mark.parametrize(
    "name",
    [
        "z\u0301\u0302\u0303\u0308\u0323algo",  # five marks on one letter
        "za\u0336\u0334\u0335\u0337\u0338\u0321\u0322lgo",  # strokes over the letters beside
        "bo\u0301\u0301b",  # the same mark twice in a row
        "b\u00f3\u0301b",  # ó is one character, with the acute it holds on it again
        "bo\u0301\u0323\u0301b",  # the same mark twice, side by side once decomposed
        "bo\u0301\u0308\u0301b",  # the same mark twice on one letter, another between
        "bob\u20dd\u20de\u20df\u20e0\u20e2",  # five enclosing marks
    ],
)
async def test_a_username_with_stacked_marks_is_refused(name: str) -> None:
    assert "marks" in await refused_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "Nguy\u1ec5n",  # ễ: e, circumflex, tilde
        "ng\u1ec7",  # ệ: e, dot below, circumflex
        "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",  # Hebrew with points
        "\u0e17\u0e35\u0e48\u0e19\u0e35\u0e48",  # Thai, a vowel and a tone mark on a letter
        "\u0939\u093f\u0902\u0926\u0940",  # Devanagari
        "bo\u0301\u0302\u0303\u0308b",  # four marks on one letter, each once
        "bo\u0301b\u0301",  # one mark, on two letters
    ],
)
async def test_names_with_marks_written_in_use_register(name: str) -> None:
    service = make_service()
    user = await register(service, name)
    found = await service.authenticate_user(name, PASSWORD)
    assert found is not None and found.id == user.id


async def test_an_older_account_with_stacked_marks_still_signs_in() -> None:
    service = make_service()
    name = "bo\u0301\u0302\u0303\u0308\u0323b"
    old = await legacy_user(service, name, "bob@example.com")
    found = await service.authenticate_user(name, PASSWORD)
    assert found is not None and found.id == old.id


@given(st.text(alphabet="ao\u00e1\u00f3" + _STACKABLE, min_size=3, max_size=24))
def test_no_new_name_stacks_marks(name: str) -> None:
    """Whatever registers holds at most four marks in a row and never one mark twice in a
    run, stored (NFKC), composed (NFC) or decomposed (NFD): ICU's check of the same mark
    repeated (its INVISIBLE check) finds nothing in it."""
    try:
        stored = clean_username(name)
    except S3ValidationError:
        return
    for form in ("NFKC", "NFC", "NFD"):
        for run in mark_runs(unicodedata.normalize(form, stored)):
            assert len(run) <= 4 and len(set(run)) == len(run)
    assert _SPOOF_CHECKER.check(stored) == 0


@given(st.text(alphabet="ao\u00e1\u00f3\u0301\u0302\u0303\u0308\u0323\u0330", max_size=24))
def test_a_mark_repeated_on_one_letter_is_refused_as_icu_finds_it(name: str) -> None:
    """Where ICU finds one nonspacing mark twice on a letter, the name is refused; and
    where it finds none and no letter holds more than four, it is not refused for its marks."""
    decomposed = unicodedata.normalize("NFD", name)
    repeated = _SPOOF_CHECKER.check(name) != 0
    too_many = any(len(run) > 4 for run in mark_runs(decomposed))
    try:
        clean_username(f"ab{name}")
        refused = False
    except InvalidUsernameError as exc:
        refused = "marks" in str(exc)
    assert refused == (repeated or too_many)


# Right-to-left names --------------------------------------------------------------------------


def test_the_names_refused_show_as_names_that_are_taken() -> None:
    # Digits before Hebrew letters show, in a left-to-right paragraph, as the letters
    # before the digits; and Latin beside Hebrew swaps sides with the paragraph.
    assert shown("12\u05d0\u05d1", right_to_left=False) == shown("\u05d0\u05d112", False)
    assert shown("ab\u05d0\u05d1", right_to_left=True) == shown("\u05d0\u05d1ab", False)


@pytest.mark.parametrize(
    "name",
    [
        "12\u05d0\u05d1",  # starts with a digit
        "ab\u05d0\u05d1",  # Latin, then Hebrew
        "\u05d0\u05d1ab",  # Hebrew, then Latin
        "\u05d0\u05d1_",  # ends with punctuation
        "\u05d0\u05d1-",
        "\u0645\u062d1\u0661",  # European and Arabic-Indic digits together
    ],
)
async def test_a_right_to_left_name_against_the_bidi_rule_is_refused(name: str) -> None:
    assert "right-to-left" in await refused_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "\u05d0\u05d112",  # Hebrew, then digits
        "\u05e9\u05dc\u05d5\u05dd",
        "\u05d0.\u05d1-12",
        "\u0645\u062d\u0645\u062f",  # Arabic
        "\u0645\u062d\u0645\u062f\u0661\u0662",  # with Arabic-Indic digits
        "\u05d0\u05b8\u05d1",  # a vowel mark (NSM) inside
        "ahmed\u0661\u0662\u0663",  # no right-to-left letter: the rule does not apply
        "user_1.",
    ],
)
async def test_names_the_bidi_rule_allows_register(name: str) -> None:
    service = make_service()
    user = await register(service, name)
    found = await service.authenticate_user(name, PASSWORD)
    assert found is not None and found.id == user.id


def test_no_new_name_with_right_to_left_letters_shows_as_another() -> None:
    """Every name of up to four characters over Hebrew and Arabic letters, Latin, digits of
    both kinds and punctuation that registers and holds a right-to-left letter shows, in a
    paragraph of either direction, as no other name that registers does (unless their
    skeletons are one, which reserves them together). Names without one are not held to
    it, as RFC 8265 does not: in a right-to-left paragraph `1.a` shows as `a.1` does."""
    alphabet = "\u05d0\u05d1\u0628a1\u0661.-"
    shows: dict[tuple[bool, str], list[str]] = {}
    for length in (3, 4):
        for chars in itertools.product(alphabet, repeat=length):
            name = "".join(chars)
            try:
                clean_username(name)
            except S3ValidationError:
                continue
            for right_to_left in (False, True):
                shows.setdefault((right_to_left, shown(name, right_to_left)), []).append(name)
    alike = [
        names
        for names in shows.values()
        if len({username_skeleton(name) for name in names}) > 1
        and any(unicodedata.bidirectional(c) in ("R", "AL") for name in names for c in name)
    ]
    assert alike == []
    assert sum(len(names) for names in shows.values()) > 1000  # the rule leaves many
