"""Look-alike text, after Unicode Technical Standard #39 (Unicode Security Mechanisms), with
ICU's data: what `identifiers` builds its username rules on.

Four mechanisms, all pure functions of the text:

- Characters that are not drawn (`has_default_ignorable`): Unicode's
  Default_Ignorable_Code_Point, which a renderer shows as nothing (UAX #44 §5.3) and
  PRECIS disallows in identifiers (RFC 8264 §9.13). Some are letters or marks to their
  general category, which the username rules go by: the Hangul fillers (`ㅤ`, a
  Hangul letter that is a blank), the combining grapheme joiner, the variation selectors.

- Marks stacked on one character (`stacks_marks`), as §5.4 (Optional Detection) suggests
  refusing: the same nonspacing mark twice, and more than four nonspacing marks (gc=Mn or
  gc=Me) in a row. Piled up ("zalgo" text) they are drawn over the lines and the names
  beside them, and can hide what a name is or paint another on it. Counted on the text's
  NFD, where a character that holds a mark (`ó`) is that mark on its letter, so that `ó`
  and an acute is the acute twice. The same mark twice is refused anywhere in one run, not
  only side by side, as ICU's INVISIBLE check does: `o` with an acute, a diaeresis and an
  acute again draws one acute above the other.

- The restriction level (UTS #39 §5.2), here only the question "Moderately Restrictive or
  better?". Each character has a set of scripts (its Script_Extensions; Common and
  Inherited characters, such as digits, '.', '-' and combining accents, go with any
  script). A text passes when one script covers every character; or when it is covered by
  Latin + Han + Hiragana + Katakana, Latin + Han + Bopomofo or Latin + Han + Hangul (the
  writing systems of Japanese, Chinese and Korean, §5.1's augmented script sets); or by
  Latin and one other Recommended script (UAX #31 Table 4) that is neither Cyrillic nor
  Greek, whose letters are the ones Latin ones are most confused with. So `admin` and
  `админ` pass, `аdmin` (Cyrillic а, Latin dmin) does not, nor does Latin with a Limited
  Use script such as Lisu, whose `ꓐ` is a Latin `B` to the eye.

- The skeleton (§4): NFD, characters that are Default_Ignorable removed, each remaining one
  replaced by its prototype in confusables.txt, NFD again. Two texts that look alike have
  the same skeleton (`rn` and `m`, `0` and `O`, Latin `a` and Cyrillic `а`); a skeleton is
  not meant to be shown, only compared.

ICU (through PyICU, whose `icu` module the `pyicu-wheels` distribution ships with ICU
itself) is the reference implementation of UTS #39 and carries the Unicode data it needs:
the skeleton is ICU's own, and the restriction level is computed here from ICU's
Script_Extensions and script usage data, since ICU's own restriction check does not ask
whether the other script is Recommended. Nothing here is a hand-typed table but the
three writing systems and the two excluded scripts, which are the standard's rule itself.

The Unicode version is ICU's (`UNICODE_VERSION`): confusables.txt grows with it, so a
skeleton computed by another version may differ. Whoever stores one keeps what was
stored rather than recomputing it (the user record names the skeleton it reserved).

Loading ICU maps a large shared library: `identifiers` imports this module only when a
username is registered, never on the middleware's path.
"""

from __future__ import annotations

from functools import lru_cache

# PyICU ships no type information: everything from `icu` is Any, and converted here.
import icu  # type: ignore[import-untyped]

UNICODE_VERSION: str = str(icu.UNICODE_VERSION)

_LATIN = int(icu.UScriptCode.LATIN)
_HAN = int(icu.UScriptCode.HAN)
_HIRAGANA = int(icu.UScriptCode.HIRAGANA)
_KATAKANA = int(icu.UScriptCode.KATAKANA)
_HANGUL = int(icu.UScriptCode.HANGUL)
_BOPOMOFO = int(icu.UScriptCode.BOPOMOFO)
# §5.1's writing systems, as ICU numbers them: Han with Bopomofo, Japanese, Korean.
_HANB = int(icu.UScriptCode.HAN_WITH_BOPOMOFO)
_JPAN = int(icu.UScriptCode.JAPANESE)
_KORE = int(icu.UScriptCode.KOREAN)
_WRITING_SYSTEMS = frozenset((_HANB, _JPAN, _KORE))
_ANY_SCRIPT = frozenset((int(icu.UScriptCode.COMMON), int(icu.UScriptCode.INHERITED)))
# §5.2: "Latin and any one other Recommended script, except Cyrillic, Greek".
_NOT_BESIDE_LATIN = frozenset((int(icu.UScriptCode.CYRILLIC), int(icu.UScriptCode.GREEK)))
_RECOMMENDED = int(icu.UScriptUsage.RECOMMENDED)
_DEFAULT_IGNORABLE = icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT
_MARKS = frozenset((int(icu.UCharCategory.NON_SPACING_MARK), int(icu.UCharCategory.ENCLOSING_MARK)))
# §5.4: "Forbid sequences of more than 4 nonspacing marks (gc=Mn or gc=Me)".
MARKS_IN_A_ROW = 4
_NFD = icu.Normalizer2.getNFDInstance()

# Thread-safe once configured (ICU's uspoof API promises it for skeletons and checks).
_SPOOF_CHECKER = icu.SpoofChecker()


def has_default_ignorable(text: str) -> bool:
    """Whether `text` holds a character that is not drawn (Default_Ignorable_Code_Point)."""
    return any(icu.Char.hasBinaryProperty(char, _DEFAULT_IGNORABLE) for char in text)


def stacks_marks(text: str) -> bool:
    """Whether `text`, decomposed, holds more than `MARKS_IN_A_ROW` nonspacing or enclosing
    marks in a row, or one of them twice in a row of them."""
    run: set[str] = set()
    for char in str(_NFD.normalize(text)):
        if icu.Char.charType(char) not in _MARKS:
            run.clear()
        elif char in run or len(run) == MARKS_IN_A_ROW:
            return True
        else:
            run.add(char)
    return False


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text` (case-sensitive, as §4 defines it)."""
    return str(_SPOOF_CHECKER.getSkeleton(0, text))


def moderately_restrictive(text: str) -> bool:
    """Whether `text` is at UTS #39's Moderately Restrictive level or a stricter one
    (ASCII, Single Script, Highly Restrictive)."""
    if text.isascii():
        return True
    script_sets = [s for s in {_augmented(char) for char in text} if s is not None]
    if not script_sets or frozenset.intersection(*script_sets):
        return True  # one script (or writing system) covers every character
    # §5.2: the characters Latin does not cover (there are some, or Latin would have
    # covered them all above), resolved to the scripts they share.
    others = frozenset.intersection(*[s for s in script_sets if _LATIN not in s])
    if others & _WRITING_SYSTEMS:
        return True  # Highly Restrictive: Latin with Japanese, Chinese or Korean
    return any(
        script not in _NOT_BESIDE_LATIN and _usage(script) == _RECOMMENDED for script in others
    )


@lru_cache(maxsize=4096)
def _augmented(char: str) -> frozenset[int] | None:
    """§5.1's augmented script set of a character; None for "any script" (Common and
    Inherited characters)."""
    scripts = {int(code) for code in icu.Script.getScriptExtensions(char)}
    if scripts & _ANY_SCRIPT:
        return None
    if _HAN in scripts:
        scripts |= _WRITING_SYSTEMS
    if scripts & {_HIRAGANA, _KATAKANA}:
        scripts.add(_JPAN)
    if _HANGUL in scripts:
        scripts.add(_KORE)
    if _BOPOMOFO in scripts:
        scripts.add(_HANB)
    return frozenset(scripts)


@lru_cache(maxsize=256)
def _usage(script: int) -> int:
    """UAX #31's usage of a script (Recommended, Limited Use, Excluded, ...)."""
    return int(icu.Script(script).getUsage())
