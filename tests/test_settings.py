"""S3AuthSettings from the environment: one clear error naming the variable. A secret key
that is easy to guess is refused; an origin list holds origins only."""

from __future__ import annotations

import random
import secrets
from pathlib import Path

import hypothesis
import msgspec
import pytest
from conftest import SECRET
from hypothesis import given
from hypothesis import strategies as st

from s3auth_asgi import ConfigurationError, S3AuthSettings, WeakPasswordError, passwords
from s3auth_asgi.secret_strength import MIN_SECRET_BITS, common_passwords, estimate_bits
from s3auth_asgi.settings import env_name, new_secret_key, normalise_origin


def test_from_env_reads_variables_of_every_type() -> None:
    settings = S3AuthSettings.from_env(
        {
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_STORE_URL": "s3://bucket/prefix",
            "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "15",
            "S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS": "2",
            "S3AUTH_ISSUER": "https://auth.example",
            "S3AUTH_PASSWORD_POLICY": "nist",
            "S3AUTH_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16",
            "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
            "S3AUTH_ENUMERATION_PROTECTION": "false",
            "UNRELATED": "x",
        }
    )
    assert settings.store_url == "s3://bucket/prefix"
    assert settings.access_token_seconds == 900 and settings.refresh_token_seconds == 172800
    assert settings.issuer == "https://auth.example" and settings.password_policy == "nist"
    assert settings.trusted_proxies == ["10.0.0.1", "10.1.0.0/16"]
    assert settings.trust_x_forwarded_for is True and settings.enumeration_protection is False


def test_keyword_arguments_win_over_the_environment() -> None:
    settings = S3AuthSettings.from_env(
        {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ALGORITHM": "HS512"}, algorithm="HS384"
    )
    assert settings.algorithm == "HS384"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("access_token_expire_minutes", "1440.0000000000001"),
        ("access_token_expire_minutes", "30"),
        ("refresh_cookie", "true"),
        ("audit_retention_days", 30.0),
        ("trusted_proxies", "10.0.0.1"),
    ],
)
def test_keyword_arguments_of_from_env_are_values_as_the_constructors(
    field: str, value: object
) -> None:
    """Text is read by the variables' rules; a keyword argument is a value, checked as the
    constructor checks it, never read as text by other rules (which rounded a whole
    number's fraction away)."""
    with pytest.raises(ConfigurationError) as made:
        S3AuthSettings(secret_key=SECRET, **{field: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as read:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET}, **{field: value})
    assert str(read.value) == str(made.value)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "S3AUTH_SECRET_KEY"),
        ({"S3AUTH_SECRET_KEY": "short"}, "S3AUTH_SECRET_KEY"),
        ({"S3AUTH_ALGORITHM": "none"}, "S3AUTH_ALGORITHM"),
        ({"S3AUTH_ALGORITHM": "PS256"}, "S3AUTH_ALGORITHM"),
        ({"S3AUTH_KEY_PUBLISH_SECONDS": "300"}, "S3AUTH_KEY_PUBLISH_SECONDS"),
        ({"S3AUTH_KEY_ENCRYPTION_KEY": "short"}, "S3AUTH_KEY_ENCRYPTION_KEY"),
        ({"S3AUTH_SIGNING_KEY": "-----BEGIN"}, "S3AUTH_SIGNING_KEY"),
        (
            {
                "S3AUTH_ALGORITHM": "ES256",
                "S3AUTH_STORE_URL": "s3://b/auth",
                "S3AUTH_JWKS_PUBLISH_URL": "s3://b/auth/j.json",
            },
            "S3AUTH_JWKS_PUBLISH_URL",
        ),
        ({"S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "soon"}, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"S3AUTH_REFRESH_GRACE_SECONDS": "-1"}, "S3AUTH_REFRESH_GRACE_SECONDS"),
        ({"S3AUTH_PASSWORD_POLICY": "weak"}, "S3AUTH_PASSWORD_POLICY"),
        ({"S3AUTH_PASSWORD_MAX_LENGTH": "32"}, "S3AUTH_PASSWORD_MAX_LENGTH"),
        ({"S3AUTH_TRUST_X_FORWARDED_FOR": "maybe"}, "S3AUTH_TRUST_X_FORWARDED_FOR"),
        ({"S3AUTH_STORE_URL": "bucket"}, "S3AUTH_STORE_URL"),
        ({"S3AUTH_LEEWAY_SECONDS": "30"}, "S3AUTH_REVOCATION_SKEW_SECONDS"),
        ({"S3AUTH_ALLOWED_ORIGINS": "*"}, "S3AUTH_ALLOWED_ORIGINS"),
        ({"S3AUTH_FORWARDED_HEADER": "X-Real-IP"}, "S3AUTH_FORWARDED_HEADER"),
        ({"S3AUTH_IPV6_PREFIX_LENGTH": "0"}, "S3AUTH_IPV6_PREFIX_LENGTH"),
        ({"S3AUTH_IPV6_PREFIX_LENGTH": "/64"}, "S3AUTH_IPV6_PREFIX_LENGTH"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], variable: str) -> None:
    environ = {"S3AUTH_SECRET_KEY": SECRET, **env} if variable != "S3AUTH_SECRET_KEY" else env
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(environ)
    assert variable in str(info.value)


def test_secret_never_appears_in_repr() -> None:
    settings = S3AuthSettings(secret_key="do-not-print-this-secret-anywhere-0001")
    assert "do-not-print" not in repr(settings) and "do-not-print" not in str(settings)


def test_no_secret_setting_appears_in_richs_rendering() -> None:
    """rich (installed with litestar) asks `__rich_repr__` for the fields, not `__repr__`:
    the REPL with rich, a debugger or a rich log handler shows what it answers."""
    pretty = pytest.importorskip("rich.pretty")
    secrets = {
        "secret_key": new_secret_key(),
        "key_encryption_key": new_secret_key(),
        "smtp_password": "smtp-password-not-to-show",
        "signing_key": "-----BEGIN PRIVATE KEY-----not-to-show",
    }
    settings = S3AuthSettings(
        **secrets, algorithm="ES256", smtp_host="mail.example.com", smtp_username="user",
        public_url="https://app.example.com", mail_from="no-reply@example.com",
    )  # fmt: skip
    for shown in (pretty.pretty_repr(settings), pretty.pretty_repr(settings, max_width=10_000)):
        assert not [name for name, value in secrets.items() if value in shown], shown
        assert "secret_key=<hidden>" in shown and "smtp_password=<hidden>" in shown
    assert pretty.pretty_repr(settings, max_width=10_000) == repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trust_x_forwarded_for", "false"),
        ("trusted_proxies", "10.0.0.1"),
        ("rate_limits", 5),
        ("allowed_origins", "https://app.example.com"),
    ],
)
def test_keyword_arguments_are_type_checked(field: str, value: object) -> None:
    """A string "false" must not slip through as a truthy flag."""
    with pytest.raises(ConfigurationError, match=f"S3AUTH_{field.upper()}"):
        S3AuthSettings(secret_key=SECRET, **{field: value})  # type: ignore[arg-type]


# The secret key's strength (secret_strength) ---------------------------------------------

WEAK_SECRETS = [
    "a" * 32,
    "s" * 32,
    "password" * 4,
    "PASSWORDpassword" * 2,
    "changeme" * 4,
    "0123456789" * 4,
    "ab" * 16,
    "abbabaabbaababbaabbabaabbaababba",  # two letters, in no repeating order
    "qwertyuiop" + "1234567890" + "zyxwvutsrqponm",
    "correcthorsebatterystaple1234567",
]


@pytest.mark.parametrize("weak", WEAK_SECRETS)
def test_a_guessable_secret_is_refused_naming_the_variable_and_the_remedy(weak: str) -> None:
    assert len(weak) >= 32  # refused for what it is made of, not for its length
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": weak})
    message = str(info.value)
    assert "S3AUTH_SECRET_KEY" in message and "s3auth gen-secret" in message
    assert weak not in message
    with pytest.raises(ConfigurationError, match="S3AUTH_SECRET_KEY"):
        S3AuthSettings(secret_key=weak)


def test_the_estimates_the_docs_quote() -> None:
    """docs/storage-and-security.md and the model's docstring give these numbers."""
    quoted = {"a" * 32: 11, "password" * 4: 26, "0123456789" * 4: 22}
    assert {secret: int(estimate_bits(secret)) for secret in quoted} == quoted


@hypothesis.settings(deadline=None)  # a shared, loaded machine; the property is not about time
@given(
    st.one_of(
        st.builds(new_secret_key),
        st.builds(secrets.token_hex, st.integers(32, 64)),
        st.builds(secrets.token_urlsafe, st.integers(32, 64)),
    )
)
def test_random_secrets_always_pass(secret: str) -> None:
    assert estimate_bits(secret) >= MIN_SECRET_BITS + 100
    assert S3AuthSettings(secret_key=secret).secret_key == secret


def test_thirty_two_random_hex_digits_almost_always_pass() -> None:
    """128 random bits, exactly the bound and the shortest secret allowed: a coincidental
    short repeat or run in random text saves less than its piece costs, so the estimate
    stays above 128 but for about one in 2,500 (`000000`, `23456` at an end)."""
    draws = random.Random(2024)  # the same draws every run: the test cannot flake
    estimates = [estimate_bits(draws.randbytes(16).hex()) for _ in range(2500)]
    assert sum(bits < MIN_SECRET_BITS for bits in estimates) <= 2
    assert sum(estimates) / len(estimates) > MIN_SECRET_BITS + 5


@hypothesis.settings(deadline=None)
@given(st.text(min_size=1, max_size=8), st.integers(32, 64))
def test_any_short_unit_repeated_is_refused(unit: str, length: int) -> None:
    secret = (unit * length)[:length]
    assert estimate_bits(secret) < MIN_SECRET_BITS
    with pytest.raises(ConfigurationError, match="S3AUTH_SECRET_KEY"):
        S3AuthSettings(secret_key=secret)


@hypothesis.settings(deadline=None)
@given(
    st.lists(st.characters(), min_size=1, max_size=3, unique=True).flatmap(
        lambda chars: st.text(st.sampled_from(chars), min_size=32, max_size=40)
    )
)
def test_any_secret_of_three_distinct_characters_or_fewer_is_refused(secret: str) -> None:
    assert estimate_bits(secret) < MIN_SECRET_BITS


def test_structure_costs_bits_and_randomness_does_not() -> None:
    random_part = secrets.token_urlsafe(24)  # 32 characters
    assert estimate_bits(random_part + "password") > estimate_bits(random_part)
    assert estimate_bits(random_part + random_part) < estimate_bits(random_part) + 20
    assert estimate_bits("x" * 10_000) < 40  # long input is cut short, not slow


def test_one_word_list_serves_the_password_policy_and_the_secret_check() -> None:
    assert {"password", "changeme", "correcthorsebatterystaple"} <= common_passwords()
    nist = passwords.PasswordPolicy.nist()
    for word in (w for w in common_passwords() if len(w) >= nist.min_length):
        with pytest.raises(WeakPasswordError, match="too common"):
            nist.check(word)


# Allowed origins ------------------------------------------------------------------------


def test_allowed_origins_are_read_comma_separated() -> None:
    settings = S3AuthSettings.from_env(
        {
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_ALLOWED_ORIGINS": " https://App.Example.com:443, http://localhost:8000 ,",
        }
    )
    assert settings.allowed_origins == ["https://App.Example.com:443", "http://localhost:8000"]
    assert [normalise_origin(o) for o in settings.allowed_origins] == [
        "https://app.example.com",
        "http://localhost:8000",
    ]


@pytest.mark.parametrize(
    ("written", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://APP.EXAMPLE.COM", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("https://a-b.example.com:1", "https://a-b.example.com:1"),
        ("http://localhost:65535", "http://localhost:65535"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://a.b-c.d", "https://a.b-c.d"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(written: str, origin: str) -> None:
    assert normalise_origin(written) == origin


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "null",
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/login",
        "https://app.example.com?x=1",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://*.example.com",
        "https://app.example.com:99999",
        "https://bücher.example",
        "",
        # No browser sends these: port 0 is no port, and a label neither begins nor ends
        # with a hyphen.
        "https://app.example.com:0",
        "https://app.example.com:00000",
        "https://-.-",
        "https://-app.example.com",
        "https://app-.example.com",
        "https://app.-example.com",
        "https://app.example.com-",
    ],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="S3AUTH_ALLOWED_ORIGINS"):
        S3AuthSettings(secret_key=SECRET, allowed_origins=["https://ok.example.com", bad])


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [
        env_name(field)
        for field in S3AuthSettings.__struct_fields__
        if f"`{env_name(field)}`" not in readme
    ]
    assert missing == []


FLOAT_SETTINGS = [f.name for f in msgspec.structs.fields(S3AuthSettings) if f.type is float]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN"])
def test_no_float_setting_takes_a_number_that_is_not_finite(name: str, text: str) -> None:
    # NaN compares false with everything: `sync <= 0` would pass it, and a snapshot that
    # is never older than NaN seconds would never sync.
    variable = env_name(name)
    expected = f"{variable} must be a number .* not {text!r}$"
    with pytest.raises(ConfigurationError, match=expected):
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": new_secret_key(), variable: text})


def test_the_float_settings_are_found() -> None:
    assert {"revocation_sync_seconds", "key_sync_seconds", "smtp_timeout_seconds"} <= set(
        FLOAT_SETTINGS
    )


def test_the_refresh_grace_is_bounded() -> None:
    # Within the grace a replayed previous refresh token is answered, not caught as reuse.
    env = {"S3AUTH_SECRET_KEY": new_secret_key(), "S3AUTH_REFRESH_GRACE_SECONDS": "300"}
    assert S3AuthSettings.from_env(env).refresh_grace_seconds == 300
    expected = "S3AUTH_REFRESH_GRACE_SECONDS must be a whole number from 0 to 300"
    with pytest.raises(ConfigurationError, match=expected):
        S3AuthSettings.from_env({**env, "S3AUTH_REFRESH_GRACE_SECONDS": "301"})
