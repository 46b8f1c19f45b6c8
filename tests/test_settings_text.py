"""How the text of an `S3AUTH_*` variable is read: each kind of setting takes one spelling
of each value, and any other text is refused naming the variable and saying what it takes,
never read as something else (`1e-400` as 0, `1440.0000000000001` as 1440)."""

from __future__ import annotations

import io
import math
from typing import Any

import msgspec
import pytest
from conftest import SECRET

from s3auth_asgi import ConfigurationError, S3AuthSettings, cli
from s3auth_asgi.cli import failures
from s3auth_asgi.settings import env_name
from s3auth_asgi.settings_ranges import RANGES

WHOLE = sorted(field for field, bounds in RANGES.items() if bounds.whole)
FRACTIONAL = sorted(field for field, bounds in RANGES.items() if not bounds.whole)
COMPANIONS: dict[str, dict[str, str]] = {
    # What a value at an end of a range needs of the settings it must agree with.
    "key_publish_seconds": {"jwks_max_age_seconds": "1", "key_sync_seconds": "0.1"},
    "key_sync_seconds": {"key_publish_seconds": str(30 * 86400)},
    "jwks_max_age_seconds": {"key_publish_seconds": str(30 * 86400)},
    "refresh_token_expire_days": {"session_absolute_lifetime_days": "365"},
    "session_absolute_lifetime_days": {"refresh_token_expire_days": "1"},
    "leeway_seconds": {"revocation_skew_seconds": "3600"},
    "revocation_skew_seconds": {"leeway_seconds": "0"},
    "argon2_parallelism": {"argon2_memory_kib": str(2**32 - 1)},
    "password_max_length": {"max_body_bytes": str(1024 * 1024)},
    "max_body_bytes": {"password_max_length": "64"},
    # A header other than the default is only taken where it is read.
    "forwarded_header": {"trusted_proxies": "10.0.0.1", "trust_x_forwarded_for": "true"},
}


def from_env(**values: str) -> S3AuthSettings:
    environ = {"S3AUTH_SECRET_KEY": SECRET}
    for field, text in values.items():
        environ.update({env_name(k): v for k, v in COMPANIONS.get(field, {}).items()})
        environ[env_name(field)] = text
    return S3AuthSettings.from_env(environ)


def read(field: str, text: str) -> Any:
    return getattr(from_env(**{field: text}), field)


def refusal(field: str, text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        from_env(**{field: text})
    message = str(info.value)
    assert message.startswith(f"{env_name(field)} must be"), message
    return message


# Numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(RANGES))
@pytest.mark.parametrize("text", ["1e-400", "-1e-400", "0.2e-323", "9e-999999"])
def test_a_number_too_small_for_a_double_is_not_read_as_zero(field: str, text: str) -> None:
    # 1e-400 is not 0: as S3AUTH_AUDIT_RETENTION_DAYS it kept no events, as
    # S3AUTH_SMTP_PORT it chose the default port, as S3AUTH_LEEWAY_SECONDS it allowed none.
    assert refusal(field, text).endswith(f", not {text!r}")


@pytest.mark.parametrize("field", WHOLE)
@pytest.mark.parametrize("text", ["1e1", "10.0", "1E3", "30.0", "-0.0", "1.5", "10e0"])
def test_a_whole_number_is_written_in_digits(field: str, text: str) -> None:
    message = refusal(field, text)
    assert "a whole number" in message and message.endswith(f", not {text!r}"), message


@pytest.mark.parametrize("field", WHOLE)
def test_a_whole_number_past_the_most_is_not_rounded_into_range(field: str) -> None:
    # A double reads "1440.0000000000001" as 1440.0, within 1 to 1440.
    most = int(RANGES[field].most)
    refusal(field, f"{most}.0000000000001")


@pytest.mark.parametrize("field", sorted(RANGES))
@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " 5",
        "5 ",
        "5\n",
        "\u0661\u0662",  # Arabic-Indic 12: int() reads it
        "\uff11\uff12",  # full-width 12: int() reads it
        "1_000",  # int() reads it
        "+5",
        "05",
        "0x10",
        "5s",
        ".5",
        "5.",
        "nan",
        "-inf",
        "Infinity",
    ],
)
def test_no_other_spelling_of_a_number_is_taken(field: str, text: str) -> None:
    assert refusal(field, text).endswith(f", not {text!r}")


@pytest.mark.parametrize("field", WHOLE)
def test_a_whole_number_in_digits_is_taken(field: str) -> None:
    bounds = RANGES[field]
    most = int(bounds.most)
    assert read(field, str(most)) == most and type(read(field, str(most))) is int
    if bounds.least == 0:
        assert read(field, "0") == 0 and read(field, "-0") == 0


@pytest.mark.parametrize("field", FRACTIONAL)
@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), ("5e-1", 0.5), ("5E-1", 0.5), ("1", 1.0), ("2.5e+1", 25.0), ("1e-300", 1e-300)],
)
def test_a_fractional_number_takes_a_fraction_and_an_exponent(
    field: str, text: str, value: float
) -> None:
    assert read(field, text) == value


@pytest.mark.parametrize("field", [f for f in FRACTIONAL if not RANGES[f].above_least])
@pytest.mark.parametrize("text", ["0", "-0", "0.0", "-0e-400", "0.000e5"])
def test_zero_written_any_way_is_zero(field: str, text: str) -> None:
    value = read(field, text)
    assert value == 0 and math.copysign(1, value) == 1


@pytest.mark.parametrize("field", sorted(RANGES))
def test_a_number_out_of_range_is_quoted_as_given(field: str) -> None:
    # As every other refusal of a variable quotes it: the value read from "-0" is 0, which
    # is not what the variable says.
    bounds = RANGES[field]
    most = int(bounds.most) + 1 if bounds.whole else "1e6"
    for text in ("-0" if bounds.least > 0 or bounds.above_least else "-1", str(most)):
        assert refusal(field, text).endswith(f", not {text!r}")


# Booleans ---------------------------------------------------------------------------------

BOOLEANS = sorted(f.name for f in msgspec.structs.fields(S3AuthSettings) if f.type is bool)
BOOLEAN_COMPANIONS = {"trust_x_forwarded_for": {"S3AUTH_TRUSTED_PROXIES": "10.0.0.1"}}
"""What a boolean needs beside it to be true (and must be without to be false)."""


def boolean_from_env(field: str, text: str) -> S3AuthSettings:
    companions = BOOLEAN_COMPANIONS.get(field, {}) if text.lower() in ("true", "1") else {}
    environ = {"S3AUTH_SECRET_KEY": SECRET, **companions}
    return S3AuthSettings.from_env({**environ, env_name(field): text})


def test_the_booleans_are_found() -> None:
    assert {"refresh_cookie", "require_verified_email", "store_create"} <= set(BOOLEANS)


@pytest.mark.parametrize("field", BOOLEANS)
@pytest.mark.parametrize(
    ("text", "meant"),
    [
        *[("true", True), ("TRUE", True), ("True", True), ("1", True)],
        *[("false", False), ("FALSE", False), ("False", False), ("0", False)],
    ],
)
def test_a_boolean_is_true_or_false_or_1_or_0(field: str, text: str, meant: bool) -> None:
    assert getattr(boolean_from_env(field, text), field) is meant


@pytest.mark.parametrize("field", BOOLEANS)
@pytest.mark.parametrize(
    "text", ["yes", "no", "on", "off", "t", "2", "", " true", "true\n", "\uff54rue", "-0"]
)
def test_another_spelling_of_a_boolean_is_refused_saying_what_is_taken(
    field: str, text: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        boolean_from_env(field, text)
    assert str(info.value) == f"{env_name(field)} must be true or false (or 1 or 0), not {text!r}"


@pytest.mark.parametrize("field", BOOLEANS)
@pytest.mark.parametrize("value", ["false", 0, 1, None])
def test_a_boolean_argument_is_a_bool(field: str, value: object) -> None:
    # A string "false" must not slip through as a truthy flag.
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings(secret_key=SECRET, **{field: value})  # type: ignore[arg-type]
    assert str(info.value) == f"{env_name(field)} must be True or False, not {value!r}"


def debugged_run(monkeypatch: pytest.MonkeyPatch, debug: str) -> tuple[int, str]:
    """`s3auth cleanup` with a store URL it refuses, and S3AUTH_DEBUG=`debug`."""
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_STORE_URL", "ftp://host/auth")
    monkeypatch.setenv("S3AUTH_DEBUG", debug)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["cleanup"], stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize(("text", "meant"), [("1", True), ("TRUE", True), ("0", False)])
def test_s3auth_debug_takes_the_booleans_spellings(
    monkeypatch: pytest.MonkeyPatch, text: str, meant: bool
) -> None:
    code, said = debugged_run(monkeypatch, text)
    assert code == failures.CONFIGURATION and "S3AUTH_STORE_URL" in said, said
    assert ("Traceback" in said) is meant, said


@pytest.mark.parametrize("text", ["yes", "on", "", "2"])
def test_s3auth_debug_refuses_what_the_settings_refuse(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    with pytest.raises(ConfigurationError):
        boolean_from_env("refresh_cookie", text)
    code, said = debugged_run(monkeypatch, text)
    assert code == failures.CONFIGURATION, said
    assert f"S3AUTH_DEBUG must be true or false (or 1 or 0), not {text!r}" in said, said
    assert "Traceback" not in said and "S3AUTH_STORE_URL" not in said


# Choices ----------------------------------------------------------------------------------

CHOICES = {
    "password_policy": ("default", "nist"),
    "smtp_security": ("starttls", "tls", "none"),
    "rate_limit_store": ("memory", "store"),
    "forwarded_header": ("x-forwarded-for", "forwarded"),
    "algorithm": ("HS256", "HS384", "HS512", "ES256", "EdDSA", "Ed25519", "RS256"),
}


def test_every_choice_is_tested() -> None:
    literal = {
        f.name
        for f in msgspec.structs.fields(S3AuthSettings)
        if "Literal" in repr(f.type)  # Literal[...] and Literal[...] | None
    }
    assert literal | {"algorithm"} == set(CHOICES)


@pytest.mark.parametrize(("field", "choice"), [(f, c) for f, cs in CHOICES.items() for c in cs])
def test_each_choice_is_taken_as_listed(field: str, choice: str) -> None:
    assert getattr(from_env(**{field: choice}), field) == choice


def misspellings(choices: tuple[str, ...]) -> list[str]:
    """Each choice in other cases, with whitespace around it, and spelt out."""
    spelt = [str.upper, str.lower, str.title, lambda c: f" {c}", lambda c: f"{c}\n", "-".join]
    return sorted({spell(c) for c in choices for spell in spelt} - set(choices))


@pytest.mark.parametrize(
    ("field", "text"), [(f, text) for f, cs in CHOICES.items() for text in misspellings(cs)]
)
def test_a_choice_spelt_otherwise_is_refused_listing_the_choices(field: str, text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        from_env(**{field: text})
    listed = ", ".join(CHOICES[field])
    assert str(info.value) == f"{env_name(field)} must be one of: {listed}, not {text!r}"


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_an_empty_choice_is_refused_as_an_empty_number_or_boolean_is(field: str) -> None:
    # Unset, each has its default; empty, none of them says which is meant.
    with pytest.raises(ConfigurationError) as info:
        from_env(**{field: ""})
    assert str(info.value).startswith(f"{env_name(field)} must be one of: ")
    assert str(info.value).endswith(", not ''")


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_a_choice_argument_is_refused_listing_the_choices(field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings(secret_key=SECRET, **{field: "other"})  # type: ignore[arg-type]
    listed = ", ".join(CHOICES[field])
    optional = " (or None)" if field == "rate_limit_store" else ""
    assert str(info.value) == f"{env_name(field)} must be one of: {listed}{optional}, not 'other'"


EMPTY_AS_UNSET = sorted(
    f.name
    for f in msgspec.structs.fields(S3AuthSettings)
    if f.type in (str, str | None, list[str]) and f.name not in ("algorithm", "secret_key")
    and f.name != "store_url"
)  # fmt: skip


@pytest.mark.parametrize("field", EMPTY_AS_UNSET)
def test_an_empty_text_or_list_is_the_same_as_an_unset_one(field: str) -> None:
    assert read(field, "") == getattr(from_env(), field)


def test_an_empty_store_url_is_refused_not_read_as_the_memory_default() -> None:
    """`S3AUTH_STORE_URL=$STORE` with STORE unset: a store that vanishes with the process
    would lose every account without a word, so it is refused, not taken as unset."""
    assert from_env().store_url == "memory://"
    assert refusal("store_url", "").startswith("S3AUTH_STORE_URL must be a URL such as")
