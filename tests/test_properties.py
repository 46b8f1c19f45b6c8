"""Property tests: normalisation, password policy, and a stateful model of the service."""

from __future__ import annotations

import string
import unicodedata

import anyio
import pytest
from conftest import make_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from s3auth_asgi import (
    InvalidTokenError,
    S3ValidationError,
    TokenRevokedError,
    UsernameTakenError,
    WeakPasswordError,
)
from s3auth_asgi.identifiers import clean_username, fold, normalise_email, normalise_username
from s3auth_asgi.passwords import PasswordPolicy
from s3auth_asgi.secret_strength import common_passwords

names = st.text(
    st.characters(categories=("Lu", "Ll", "Nd", "Lo"), include_characters="._-"),
    min_size=3,
    max_size=20,
)


@given(names)
def test_normalisation_is_idempotent_and_case_blind(name: str) -> None:
    try:
        normal = normalise_username(name)
    except S3ValidationError:
        return
    assert normalise_username(normal) == normal
    assert fold(normal) == normal
    assert normalise_username(unicodedata.normalize("NFKD", name)) == normal
    if name.isascii():  # outside ASCII, upper() is not casefold()'s inverse ('ı' → 'I')
        assert normalise_username(name.upper()) == normal


@given(st.text(string.ascii_letters + string.digits, min_size=3, max_size=20))
def test_fullwidth_forms_are_the_same_name(ascii_name: str) -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in ascii_name)
    assert normalise_username(fullwidth) == normalise_username(ascii_name.upper())


@given(st.text(max_size=30))
def test_usernames_with_invisible_characters_are_refused(text: str) -> None:
    for bad in ("\u200b", "\u200d", "\u2060", "\ufeff", "\x00", "\x1b", "\u202e"):
        with pytest.raises(S3ValidationError):
            clean_username(f"abc{text}{bad}def")


@given(st.emails())
def test_email_normalisation_is_case_blind(email: str) -> None:
    try:
        normal = normalise_email(email)
    except S3ValidationError:
        return
    assert normalise_email(email.upper()) == normal
    assert normalise_email(normal) == normal


compliant_passwords = st.builds(
    lambda core, upper, lower, digit: core + upper + lower + digit,
    st.text(max_size=130),
    st.characters(categories=("Lu",)),
    st.characters(categories=("Ll",)),
    st.characters(categories=("Nd",)),
)


@given(st.one_of(st.text(max_size=140), compliant_passwords))
@settings(max_examples=400)
def test_default_policy_accepts_exactly_its_rules(password: str) -> None:
    policy = PasswordPolicy.default()
    expected = (
        8 <= len(password) <= 128
        and any(c.isupper() for c in password)
        and any(c.islower() for c in password)
        and any(c.isdigit() for c in password)
        and not any(unicodedata.category(c) in ("Cc", "Cs") for c in password)
        and fold(password) not in common_passwords()
    )
    try:
        assert policy.check(password) == password
        accepted = True
    except WeakPasswordError:
        accepted = False
    assert accepted == expected


@given(st.text(min_size=15, max_size=40).filter(lambda p: p.isprintable()))
def test_nist_policy_has_no_composition_rules(password: str) -> None:
    policy = PasswordPolicy.nist()
    try:
        policy.check(password, "someone", "someone@example.com")
    except WeakPasswordError as exc:
        assert "common" in str(exc) or "username" in str(exc)


def test_nist_policy_refuses_common_and_identifiers() -> None:
    policy = PasswordPolicy.nist()
    with pytest.raises(WeakPasswordError, match="common"):
        policy.check("PasswordPassword")
    with pytest.raises(WeakPasswordError, match="username"):
        policy.check("averylongusername", "AVeryLongUsername", "x@example.com")
    with pytest.raises(WeakPasswordError):
        policy.check("short")
    assert policy.check("correct horse battery staple extra") is not None


def test_maximum_length_is_never_truncation() -> None:
    policy = PasswordPolicy.default(max_length=64)
    policy.check("Aa1" + "x" * 61)
    with pytest.raises(WeakPasswordError, match="at most 64"):
        policy.check("Aa1" + "x" * 62)


PASSWORD = "SecurePass123!"


class ServiceModel(RuleBasedStateMachine):
    """Register, log in, refresh, revoke at random; the service agrees with a model."""

    def __init__(self) -> None:
        super().__init__()
        self.service = make_service()
        self.users: dict[str, str] = {}  # folded name -> user id
        self.live: dict[str, tuple[str, str]] = {}  # refresh token -> (user id, access)
        self.dead: list[tuple[str, str]] = []  # (refresh, access) that must fail

    def run(self, fn, *args):  # type: ignore[no-untyped-def]
        return anyio.run(fn, *args)

    @rule(name=st.sampled_from(["ann", "ANN", "bob", "Bob", "ｃａｔ", "cat"]))
    def register(self, name: str) -> None:
        key = fold(name)
        try:
            user = self.run(
                self.service.create_user, name, f"{key}-{len(self.users)}@ex.com", PASSWORD
            )
        except UsernameTakenError:
            assert key in self.users
            return
        assert key not in self.users
        self.users[key] = user.id

    @rule(name=st.sampled_from(["ann", "bob", "cat"]), good=st.booleans())
    def login(self, name: str, good: bool) -> None:
        user = self.run(self.service.authenticate_user, name, PASSWORD if good else "Wrong1234")
        if not good or name not in self.users:
            assert user is None
            return
        assert user is not None and user.id == self.users[name]
        pair = self.run(self.service.create_token_pair, user)
        self.live[pair.refresh_token] = (user.id, pair.access_token)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.live)))
        user_id, _ = self.live.pop(token)
        pair = self.run(self.service.refresh_access_token, token)
        self.live[pair.refresh_token] = (user_id, pair.access_token)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def logout(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.live)))
        _, access = self.live.pop(token)
        assert self.run(self.service.revoke_refresh_token, token) is True
        self.dead.append((token, access))

    @rule(name=st.sampled_from(["ann", "bob", "cat"]))
    def logout_everywhere(self, name: str) -> None:
        if name not in self.users:
            return
        user_id = self.users[name]
        count = self.run(self.service.revoke_all_user_tokens, user_id)
        mine = [t for t, (uid, _) in self.live.items() if uid == user_id]
        assert count == len(mine)
        for token in mine:
            self.dead.append((token, self.live.pop(token)[1]))

    @invariant()
    def tokens_agree_with_the_model(self) -> None:
        for _, access in self.live.values():
            self.service.decode_token(access)
        for _, access in self.dead:
            with pytest.raises(TokenRevokedError):
                self.service.decode_token(access)

    @invariant()
    def dead_refresh_tokens_fail(self) -> None:
        for refresh, _ in self.dead[-2:]:
            with pytest.raises(InvalidTokenError):
                self.run(self.service.refresh_access_token, refresh)


ServiceModel.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestServiceModel = ServiceModel.TestCase
