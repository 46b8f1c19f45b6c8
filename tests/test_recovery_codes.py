"""Recovery codes of the second factor: ten, random, each naming its slot, read however
they are typed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.recovery_codes import (
    CODE_COUNT,
    SECRET_BITS,
    is_recovery_code,
    new_codes,
    parsed,
)


def test_ten_codes_of_fifty_random_bits_each_naming_its_slot() -> None:
    codes = new_codes()
    assert len(codes) == CODE_COUNT == 10 and SECRET_BITS >= 20
    assert len(set(codes)) == 10
    for slot, code in enumerate(codes):
        found = parsed(code)
        assert found is not None and found[0] == slot
        assert len(found[1]) * 5 == SECRET_BITS == 50
    assert len({parsed(code)[1] for code in codes}) == 10  # type: ignore[index]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("3-abcde-fghij", (3, "abcdefghij")),
        ("3ABCDE FGHIJ", (3, "abcdefghij")),
        (" 3-abcde-fghij ", (3, "abcdefghij")),
        ("123456", None),
        ("3-abcde-fghi", None),
        ("x-abcde-fghij", None),
        ("3-abcde-fghi1", None),
        ("", None),
        (None, None),
    ],
)
def test_a_code_is_read_however_it_is_typed_and_nothing_else_is(
    typed: object, expected: tuple[int, str] | None
) -> None:
    assert parsed(typed) == expected
    assert is_recovery_code(typed) == (expected is not None)


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=20))
def test_nothing_but_a_code_parses_and_nothing_raises(text: str) -> None:
    found = parsed(text)
    assert found is None or (0 <= found[0] < 10 and len(found[1]) == 10)
