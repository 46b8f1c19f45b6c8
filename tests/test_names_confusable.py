"""Look-alike usernames (Unicode TR39): a new name is in one script as the Moderately
Restrictive profile allows, holds a letter or a digit, and its skeleton is reserved beside
it, so that a name that looks like a taken one is taken."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import icu  # type: ignore[import-untyped]
import pytest
from conftest import make_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import StoreWrapper, held_index_keys

from s3auth_asgi import (
    EmailTakenError,
    InvalidUsernameError,
    S3AuthService,
    StoreUnavailableError,
    User,
    UsernameTakenError,
)
from s3auth_asgi.confusables import moderately_restrictive, skeleton
from s3auth_asgi.identifiers import fold, new_id, username_skeleton
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")
PASSWORD = "SecurePass123!"

# Name pairs that look alike and that each pass the script rule on their own.
LOOK_ALIKES = [
    ("mary", "rnary"),  # rn is m
    ("bob", "b0b"),  # 0 is O
    ("lan", "Ian"),  # capital I is l
    ("adminl", "admin1"),  # 1 is l
    ("pay", "рау"),  # all Cyrillic: р, а, у
    ("coco", "сосо"),  # all Cyrillic: с, о
]


async def register(service: S3AuthService, name: str, email: str | None = None) -> User:
    email = email or f"{new_id()[:12]}@example.com"
    return await service.create_user(name, email, PASSWORD)


async def refused_name(name: str) -> str:
    """Why `name` is refused as a new username, before any store request."""
    service = make_service()
    with pytest.raises(InvalidUsernameError) as info:
        await register(service, name)
    assert info.value.code == "invalid_username"
    assert sum(service.store.requests.values()) == 0
    return str(info.value)


# The rules on their own ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "аdmin",  # Cyrillic а, then Latin
        "pаypal",  # one Cyrillic letter inside
        "ԁave",  # Cyrillic komi de
        "ꓐob",  # Lisu (a Limited Use script) with Latin
        "ελλάδαa",  # Greek with Latin
        "abcᎠᎡ",  # Cherokee with Latin
        "abcひら한",  # Japanese kana with Korean
    ],
)
async def test_mixed_script_names_are_refused(name: str) -> None:
    assert "script" in await refused_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "user-1.x_y",
        "josé",
        "админ",  # Cyrillic alone
        "Ελληνικά",  # Greek alone
        "日本語テキスト",  # Han with Katakana: Japanese
        "taro漢字ひら",  # Latin with Japanese
        "kim한국",  # Latin with Korean
        "abcदेव",  # Latin with a Recommended script other than Cyrillic and Greek
        "ahmed١٢٣",  # Arabic-Indic digits with Latin
    ],
)
async def test_names_in_one_script_or_an_allowed_mix_register(name: str) -> None:
    service = make_service()
    user = await register(service, name)
    found = await service.authenticate_user(name, PASSWORD)
    assert found is not None and found.id == user.id


@pytest.mark.parametrize("name", ["---", "...", "_._", "-_-.", "\u0301\u0301\u0301"])
async def test_names_need_a_letter_or_a_digit(name: str) -> None:
    await refused_name(name)


# The reference: ICU's own restriction-level check -----------------------------------------


def _icu_accepts(text: str, level: Any) -> bool:
    checker = icu.SpoofChecker()
    checker.setRestrictionLevel(level)
    checker.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL)
    return int(checker.check(text)) == 0


# Letters of Latin, Cyrillic, Greek, Han, Hiragana, Katakana, Hangul, Bopomofo, Devanagari,
# Arabic, Lisu, Cherokee and Adlam, with digits and Common punctuation.
_SAMPLE = "abcIl01аосрΑαοβ漢字ひらカナ한국ㄅㄆदेवابꓐꓑᎠᎡ𞤀𞤁-._١"
mixed_texts = st.text(st.sampled_from(_SAMPLE), min_size=1, max_size=8)


@given(mixed_texts)
@settings(max_examples=500)
def test_the_restriction_level_agrees_with_icu(text: str) -> None:
    # ICU's MODERATELY_RESTRICTIVE does not ask whether the other script is Recommended,
    # so it accepts a little more; everything it calls Highly Restrictive passes here.
    ours = moderately_restrictive(text)
    if _icu_accepts(text, icu.URestrictionLevel.HIGHLY_RESTRICTIVE):
        assert ours
    if ours:
        assert _icu_accepts(text, icu.URestrictionLevel.MODERATELY_RESTRICTIVE)


def test_the_skeleton_is_the_tr39_one() -> None:
    assert skeleton("rn") == skeleton("m") == "rn"
    assert skeleton("аdmin") == skeleton("admin")
    assert skeleton("0") == "O" and skeleton("Ian") == "lan"
    # Reserved as folded, so that case makes no difference to a skeleton either.
    assert username_skeleton("B0B") == username_skeleton("bob") == "bob"


# Uniqueness -------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), LOOK_ALIKES)
async def test_a_look_alike_of_a_taken_name_is_taken(first: str, second: str) -> None:
    for taken, look_alike in ((first, second), (second, first)):
        service = make_service()
        await register(service, taken)
        with pytest.raises(UsernameTakenError) as info:
            await register(service, look_alike)
        # Exactly the answer a taken username gets.
        assert (info.value.code, str(info.value)) == ("username_taken", str(UsernameTakenError()))
        assert await service.authenticate_user(look_alike, PASSWORD) is None


ascii_names = st.text("abcdeghijklmnopqrstuvwxyz", min_size=3, max_size=12)
_LOOK_ALIKE_SWAPS = {"o": "0", "l": "1", "m": "rn", "i": "ı"}


@given(ascii_names, st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
async def test_no_name_registers_beside_a_look_alike(name: str, data: st.DataObject) -> None:
    swapped = "".join(
        _LOOK_ALIKE_SWAPS[c] if c in _LOOK_ALIKE_SWAPS and data.draw(st.booleans()) else c
        for c in name
    )
    service = make_service()
    await register(service, name)
    with pytest.raises(UsernameTakenError):
        await register(service, swapped)


async def test_a_taken_look_alike_gets_the_generic_conflict_over_http() -> None:
    from test_app import assert_problem, client_for, mounted

    service = make_service()
    async with client_for(mounted(service)) as client:
        await register(service, "mary", "mary@example.com")
        answers = [
            await client.post(
                "/auth/register",
                json={"username": name, "email": email, "password": PASSWORD},
            )
            for name, email in (("MARY", "x@example.com"), ("rnary", "y@example.com"))
        ]
    assert_problem(answers[0], 409, "account_exists")
    assert answers[0].json() == answers[1].json()


async def test_a_refused_registration_releases_the_skeleton(service: S3AuthService) -> None:
    await register(service, "alice", "taken@example.com")
    with pytest.raises(EmailTakenError):
        await register(service, "rnary", "taken@example.com")
    await register(service, "mary")  # rnary's skeleton was released with its username


async def test_deleting_a_user_frees_its_skeleton(service: S3AuthService) -> None:
    user = await register(service, "mary")
    assert user.username_skeleton == "rnary"
    assert await service.delete_user(user.id)
    assert await held_index_keys(service.store) == []
    await register(service, "rnary")


async def test_registration_costs_one_more_put_and_login_nothing_more() -> None:
    service = make_service()
    await register(service, "budget", "budget@example.com")
    assert dict(service.store.requests) == {"put": 4}  # username, skeleton, email, user
    for name in ("budget", "budget@example.com"):
        service.store.reset_counts()
        assert await service.authenticate_user(name, PASSWORD) is not None
        assert dict(service.store.requests) == {"get": 2}


# Accounts registered before these rules -----------------------------------------------


async def legacy_user(service: S3AuthService, username: str, email: str) -> User:
    """A user as an older version wrote it: no skeleton reserved, none recorded, and names
    the rules now refuse."""
    model = await register(service, "template")
    await service.delete_user(model.id)
    user = User(
        id=new_id(),
        username=username,
        email=email,
        hashed_password=model.hashed_password,
    )
    await service.store.create(keys.username_index(fold(username)), IndexEntry(user.id))
    await service.store.create(keys.email_index(fold(email)), IndexEntry(user.id))
    await service.store.create(keys.user(user.id), user)
    return user


async def test_accounts_from_before_keep_working(service: S3AuthService) -> None:
    old = await legacy_user(service, "---", "dashes@example.com")
    found = await service.authenticate_user("---", PASSWORD)
    assert found is not None and found.id == old.id and found.username_skeleton is None
    with pytest.raises(InvalidUsernameError):
        await register(service, "...")  # the rule holds for new names


async def test_deleting_an_old_account_leaves_a_look_alikes_skeleton(
    service: S3AuthService,
) -> None:
    # Until `s3auth doctor --repair` reserves the skeletons of older accounts, a look-alike
    # of one can register; deleting the older account must not free the newer one's.
    old = await legacy_user(service, "mary", "mary@example.com")
    await register(service, "rnary")
    await service.delete_user(old.id)
    skeleton_key = keys.skeleton_index("rnary")
    assert await service.store.get(skeleton_key, IndexEntry) is not None
    with pytest.raises(UsernameTakenError):
        await register(service, "mary")


# Faults -----------------------------------------------------------------------------------


class _FailingStore(StoreWrapper):
    """The `fail_at`-th call fails after it ran: the write happened, the answer was lost."""

    def __init__(self, inner: Store, fail_at: int) -> None:
        super().__init__(inner)
        self.calls, self.fail_at = 0, fail_at

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        result = await run()
        self.calls += 1
        if self.calls == self.fail_at:
            raise StoreUnavailableError(f"injected fault after {name}")
        return result


@pytest.mark.parametrize("step", [1, 2, 3, 4])
async def test_a_failed_registration_holds_no_name_for_ever(step: int) -> None:
    # Steps: the username's index, its skeleton's, the email's, the user record. What was
    # reserved before the failing step is released; the object whose answer was lost stays
    # until it counts as abandoned (at once here) and is taken over.
    faulty = _FailingStore(ObjectStore.from_url("memory://"), step)
    service = make_service(store=faulty, name_reservation_seconds=0)
    with pytest.raises(StoreUnavailableError):
        await register(service, "mary", "mary@example.com")
    faulty.fail_at = 0
    assert len(await held_index_keys(faulty.inner)) == (1 if step < 4 else 0)
    user = await register(service, "mary", "mary@example.com")
    index = [await faulty.inner.get(i.key, IndexEntry) async for i in faulty.inner.list("index/")]
    assert [e.value.user_id if e else None for e in index] == [user.id] * 3
    assert await service.get_user_by_email("mary@example.com") == user
    with pytest.raises(UsernameTakenError):
        await register(service, "rnary")


async def test_an_abandoned_skeleton_is_taken_over_after_its_time() -> None:
    now = [time.time()]
    base = make_service()
    service = S3AuthService(base.settings, store=base.store, clock=lambda: now[0])
    # A registration that wrote its skeleton and died before its user record.
    await service.store.create(keys.skeleton_index("rnary"), IndexEntry(new_id()))
    with pytest.raises(UsernameTakenError):
        await register(service, "mary")
    now[0] += service.settings.name_reservation_seconds + 1
    user = await register(service, "mary")
    entry = await service.store.get(keys.skeleton_index("rnary"), IndexEntry)
    assert entry is not None and entry.value.user_id == user.id


# Costs outside registration ---------------------------------------------------------------


def test_the_middleware_loads_neither_icu_nor_email_validator() -> None:
    code = (
        "import sys, s3auth_asgi.middleware, s3auth_asgi.identifiers\n"
        "print(sorted(m for m in ('icu', 'email_validator') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
