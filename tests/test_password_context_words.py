"""The site's own words (`S3AUTH_PASSWORD_CONTEXT_WORDS`: the organisation's, the product's
names; NIST SP 800-63B 5.1.1.2, ASVS 6.1.2 and 6.2.11) held against a new password as the
account's names are by `nist`, under either policy: the whole password may not be one, and
what is left once each is taken out must still be long enough. Refused at start-up when a
word is empty or too short to count."""

from __future__ import annotations

import pytest
from conftest import SECRET, make_service
from test_app import assert_problem, client_for, mounted

from s3auth_asgi import ConfigurationError, S3AuthSettings, WeakPasswordError
from s3auth_asgi.password_policy import PasswordPolicy

pytestmark = pytest.mark.anyio
WORDS = ("Acme", "Zorblax")
VARIABLE = "S3AUTH_PASSWORD_CONTEXT_WORDS"


def refusal(policy: PasswordPolicy, password: str, *names: str) -> tuple[str, ...]:
    with pytest.raises(WeakPasswordError) as info:
        policy.check(password, *names)
    assert info.value.code == "weak_password"
    return info.value.errors


def test_the_default_policy_refuses_a_password_made_of_a_site_word() -> None:
    policy = PasswordPolicy.default(context_words=WORDS)
    assert refusal(policy, "ACME-2024!x") == (
        "The password must be at least 8 characters without the names of this service in it",
    )
    assert refusal(policy, "Zorblax1") == (
        "The password must be at least 8 characters without the names of this service in it",
    )
    assert policy.check("Acme-2024!xyz") == "Acme-2024!xyz"  # 9 besides it
    # The account's names stay `nist`'s alone.
    assert policy.check("Alice2024!", "alice", "alice@example.com") == "Alice2024!"


def test_nist_holds_the_site_words_with_the_accounts_names() -> None:
    policy = PasswordPolicy.nist(context_words=WORDS)
    assert refusal(policy, "zorblax") == (
        "The password must be at least 15 characters",
        "The password must not be one of the names of this service",
    )
    assert refusal(policy, "ａｃｍｅ rockets 2024!", "alice", "alice@example.com") == (
        "The password must be at least 15 characters without the names of this service in it",
    )
    assert refusal(policy, "acme-alice-2024-09!", "alice", "alice@example.com") == (
        "The password must be at least 15 characters without the username, the email or the "
        "names of this service in it",
    )
    # Without the site's words, the account's names alone, as before.
    assert refusal(PasswordPolicy.nist(), "alice-2024-09-15!", "alice", "a@example.com") == (
        "The password must be at least 15 characters without the username or email in it",
    )
    assert policy.check("correct horse acme battery staple") is not None
    assert "the names of this service" in policy.describe()


async def test_the_setting_reaches_a_registration_which_writes_nothing() -> None:
    settings = S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, VARIABLE: " Acme , Zorblax"})
    assert settings.password_context_words == ["Acme", "Zorblax"]
    service = make_service(password_context_words=settings.password_context_words)
    async with client_for(mounted(service)) as client:
        answer = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": "Acme-2024!x"},
        )
    body = assert_problem(answer, 422, "weak_password")
    assert body["errors"] == [
        "The password must be at least 8 characters without the names of this service in it"
    ]
    assert sum(service.store.requests.values()) == 0


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("acme,,zorblax", "an empty word"),
        ("acme,", "an empty word"),
        ("acme,ab", "'ab' is shorter than 4 characters"),
        ("acme, ｂｅｅ ", "'ｂｅｅ' is shorter than 4 characters"),
    ],
)
def test_an_empty_or_short_word_is_refused_at_start(text: str, said: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, VARIABLE: text})
    assert VARIABLE in str(info.value) and said in str(info.value)


def test_the_same_words_are_refused_as_keyword_arguments_and_policy_arguments() -> None:
    for words in ([""], [" acme"], ["abc"]):
        with pytest.raises(ConfigurationError, match=VARIABLE):
            S3AuthSettings(secret_key=SECRET, password_context_words=words)
        with pytest.raises(ConfigurationError, match="PasswordPolicy context_words"):
            PasswordPolicy(context_words=tuple(words))
    assert (
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, VARIABLE: ""}).password_context_words
        == []
    )
