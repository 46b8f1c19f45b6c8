"""Email addresses: email-validator's syntax rules (no DNS lookup), its normalised form as
stored, and uniqueness on that form NFKC-casefolded (`fold`)."""

from __future__ import annotations

import string
from email import policy
from email.message import EmailMessage
from email.parser import Parser

import pytest
from conftest import make_service
from hypothesis import given, settings
from hypothesis import strategies as st
from support import held_index_keys

from s3auth_asgi import EmailTakenError, InvalidEmailError, S3AuthService, User
from s3auth_asgi.identifiers import clean_email, fold, new_id, normalise_email
from s3auth_asgi.mail_addresses import ascii_domain
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"


@pytest.mark.parametrize(
    "email",
    [
        "a..b@example.com",  # two dots in a row
        ".a@example.com",  # a leading dot
        "a.@example.com",  # a trailing dot before the @
        "a@-example.com",  # a label that starts with a hyphen
        "a@example-.com",  # or ends with one
        "a@exa_mple.com",  # an underscore in a host name
        "a@example",  # no dot: not a domain mail can reach
        "a@localhost.localhost",  # a special-use domain
        "a b@example.com",
        '"a b"@example.com',  # quoted local parts are refused too
        "a@[192.0.2.1]",
        "Name <a@example.com>",
        "a@b@example.com",
        "a@example.com\u200b",
        # RFC 2047 forbids encoded words in an address; a mail header would decode them.
        "=?utf-8?q?attacker=40evil.example=3E?=foo@victim.example",
        "=?utf-8?b?YUBiLmM=?=@example.com",
        "=?us-ascii?q?a?=@example.com",
        "a=?b@example.com",
        # What a header reads as the end of an address, a comment or another one.
        "a,b@example.com",
        "a<b@example.com",
        "a>b@example.com",
        "a(b)@example.com",
        "a\\b@example.com",
        "a:b@example.com",
        "a;b@example.com",
        "a[b]@example.com",
        '"a"@example.com',
        "a\r\nb@example.com",
        "@example.com",
        "a@",
        "",
    ],
)
async def test_malformed_addresses_are_refused_before_any_request(email: str) -> None:
    service = make_service()
    with pytest.raises(InvalidEmailError) as info:
        await service.create_user("someone", email, PASSWORD)
    assert info.value.code == "invalid_email"
    assert sum(service.store.requests.values()) == 0


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("john@example.com", "john@example.com"),
        ("  John@Example.COM ", "John@example.com"),  # the local part keeps its case
        ("x@XN--STRAE-OQA.DE", "x@straße.de"),  # IDNA: the Unicode form of the domain
        ("ü@Exämple.com", "ü@exämple.com"),  # internationalised local part (SMTPUTF8)
        ("a+tag@sub.example.com", "a+tag@sub.example.com"),
    ],
)
async def test_addresses_are_stored_as_email_validator_normalises_them(
    typed: str, stored: str
) -> None:
    service = make_service()
    user = await service.create_user("someone", typed, PASSWORD)
    assert user.email == stored
    for other in (typed, stored, stored.upper()):
        found = await service.get_user_by_email(other)
        assert found is not None and found.id == user.id


async def test_uniqueness_is_on_the_normalised_form(service: S3AuthService) -> None:
    await service.create_user("first", "x@straße.de", PASSWORD)
    for same in ("X@xn--strae-oqa.de", "x@STRASSE.de", "X@Straße.De"):
        with pytest.raises(EmailTakenError):
            await service.create_user("second", same, PASSWORD)


async def test_a_changed_address_is_validated_too(service: S3AuthService) -> None:
    user = await service.create_user("mover", "mover@example.com", PASSWORD)
    with pytest.raises(InvalidEmailError):
        await service.update_user(user.id, email="mover..new@example.com")
    moved = await service.update_user(user.id, email="New@Example.com")
    assert moved.email == "New@example.com"
    assert await service.get_user_by_email("mover@example.com") is None
    assert await service.authenticate_user("new@example.com", PASSWORD) is not None


async def test_an_address_registered_before_still_signs_in(service: S3AuthService) -> None:
    # An older version accepted what email-validator refuses; such an account keeps
    # signing in with it, and nobody can register it again.
    model = await service.create_user("model", "model@example.com", PASSWORD)
    await service.delete_user(model.id)
    address = "old..style@intranet.local"
    old = User(id=new_id(), username="old", email=address, hashed_password=model.hashed_password)
    await service.store.create(keys.username_index("old"), IndexEntry(old.id))
    await service.store.create(keys.email_index(fold(address)), IndexEntry(old.id))
    await service.store.create(keys.user(old.id), old)
    for typed in (address, address.upper()):
        found = await service.authenticate_user(typed, PASSWORD)
        assert found is not None and found.id == old.id
    with pytest.raises(InvalidEmailError):
        await service.create_user("new", address, PASSWORD)
    moved = await service.update_user(old.id, email="old.style@example.com")
    assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [
        keys.email_index("old.style@example.com")
    ]
    assert moved.email == "old.style@example.com"


@given(st.emails())
@settings(max_examples=300)
def test_an_accepted_address_round_trips_to_one_unique_form(email: str) -> None:
    try:
        stored = clean_email(email)
    except InvalidEmailError:
        return
    assert clean_email(stored) == stored
    unique = normalise_email(email)
    assert unique == fold(stored) == normalise_email(stored) == normalise_email(unique)
    assert normalise_email(email.upper()) == unique


# Local parts made of the characters and the pieces a mail header treats apart: encoded
# words whole and in parts, specials, quotes, white space, and other Unicode.
_PIECES = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.", max_size=4),
    st.sampled_from(
        [
            "=?utf-8?q?attacker=40evil.example=3E?=",
            "=?utf-8?b?YUBiLmM=?=",
            "=?us-ascii?q?",
            "=?",
            "?=",
            "=40",
            *'"(),:;<>@[]\\ \t\r\n',
            "ü",
            "ß",
        ]
    ),
    st.characters(exclude_categories=("Cs",)),
)
_ADDRESSES = st.tuples(
    st.lists(_PIECES, min_size=1, max_size=8).map("".join),
    st.sampled_from(["example.com", "victim.example", "Bücher.de", "XN--STRAE-OQA.DE"]),
).map("@".join)


@given(st.one_of(_ADDRESSES, st.emails()))
@settings(max_examples=500)
def test_an_accepted_address_is_the_one_address_its_mail_header_names(email: str) -> None:
    try:
        stored = clean_email(email)
    except InvalidEmailError:
        return
    to = ascii_domain(stored)
    mail = EmailMessage()
    mail["To"] = to
    assert [a.addr_spec for a in mail["To"].addresses] == [to]
    # And so it stays once the message is written out and read again by its recipient
    # (as text: an SMTPUTF8 message's headers are UTF-8, which the bytes parser does not
    # decode).
    written = mail.as_bytes(policy=policy.SMTPUTF8).decode()
    read = Parser(policy=policy.default).parsestr(written)
    assert [a.addr_spec for a in read["To"].addresses] == [to]


@given(st.one_of(st.text(max_size=80), _ADDRESSES))
@settings(max_examples=300)
def test_what_email_validator_refuses_is_refused_and_encoded_words_too(text: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    try:
        expected = validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        assert clean_email(text) == expected
    except InvalidEmailError:
        assert expected is None or "=?" in expected
