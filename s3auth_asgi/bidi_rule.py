"""The Bidi Rule of RFC 5893 (section 2), which RFC 8265 asks of a username that holds
right-to-left letters: so that the order a screen shows it in is the order it is written in.

A screen lays text out by the Unicode Bidirectional Algorithm, which moves digits and
punctuation next to right-to-left letters to one side or the other of them: `12אב` and
`אב12` both show as `12בא` in a left-to-right paragraph, and Latin beside Hebrew swaps
sides with the paragraph's direction. The skeleton that reserves a username's look
(`confusables`) is of its logical order, so it does not see this. The rule: a name with a
right-to-left letter (Bidi_Class R or AL) starts with one, holds no left-to-right letter,
ends with one or a digit (marks after it allowed), and does not mix European and
Arabic-Indic digits. A name without one is left alone, as RFC 8265 leaves it: `ahmed١٢٣`,
whose Arabic-Indic digits keep their place beside Latin, is fine.
"""

from __future__ import annotations

import unicodedata

_RIGHT_TO_LEFT = frozenset(("R", "AL"))
_IN_RIGHT_TO_LEFT = frozenset(("R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"))
"""What RFC 5893's condition 2 allows in a right-to-left label."""
_LAST = frozenset(("R", "AL", "EN", "AN"))
_DIGITS = frozenset(("EN", "AN"))


def follows_bidi_rule(text: str) -> bool:
    """Whether `text` holds no right-to-left letter, or follows the Bidi Rule."""
    classes = [unicodedata.bidirectional(char) for char in text]
    present = frozenset(classes)
    if not present & _RIGHT_TO_LEFT:
        return True
    last = next((kind for kind in reversed(classes) if kind != "NSM"), None)
    return (
        classes[0] in _RIGHT_TO_LEFT
        and present <= _IN_RIGHT_TO_LEFT
        and last in _LAST
        and not present >= _DIGITS
    )
