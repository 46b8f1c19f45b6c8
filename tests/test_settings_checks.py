"""Settings that would stop the app at start, or fail at the first password hash or the first
key change, are refused when the settings are made, by the same parsers the app uses: the
rate limits, the trusted proxies, argon2's own bounds, the JWKS publication target. The
key-encryption key is held to the secret key's strength, and neither may carry surrounding
whitespace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import msgspec
import pytest
from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret
from conftest import SECRET
from test_settings import WEAK_SECRETS

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.keys.publish import publish_jwks
from s3auth_asgi.keys.ring import KeyRing
from s3auth_asgi.passwords import PasswordHasher
from s3auth_asgi.ratelimit import ClientIPResolver, RateLimit, parse_rate_limits
from s3auth_asgi.settings import env_name, new_secret_key
from s3auth_asgi.settings_ranges import (
    ARGON2_MAX_PARALLELISM,
    ARGON2_MAX_VALUE,
    ARGON2_MIN_MEMORY_PER_LANE,
)

KEY_PAIR = {"S3AUTH_ALGORITHM": "ES256"}
"""An algorithm whose keys are a pair, which the key settings and the JWKS target are for."""


def made(**env: str) -> S3AuthSettings:
    return S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, **env})


def refusal(**env: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        made(**env)
    return str(info.value)


# The rate limits and the proxies: the app's own parsers ---------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"S3AUTH_TRUSTED_PROXIES": "not-an-ip"}, "S3AUTH_TRUSTED_PROXIES"),
        ({"S3AUTH_TRUSTED_PROXIES": "10.0.0.1,10.0.0.300"}, "S3AUTH_TRUSTED_PROXIES"),
        ({"S3AUTH_TRUSTED_PROXIES": "0.0.0.0/0"}, "S3AUTH_TRUST_ALL_PROXIES"),
        ({"S3AUTH_TRUSTED_PROXIES": "10.0.0.1,::/0"}, "S3AUTH_TRUST_ALL_PROXIES"),
        ({"S3AUTH_TRUST_X_FORWARDED_FOR": "true"}, "S3AUTH_TRUSTED_PROXIES"),
        # Proxies whose header is not read: every client behind them counts as the proxy.
        ({"S3AUTH_TRUSTED_PROXIES": "10.0.0.1"}, "S3AUTH_TRUST_X_FORWARDED_FOR"),
        ({"S3AUTH_TRUSTED_PROXIES": "unix"}, "S3AUTH_TRUST_X_FORWARDED_FOR"),
        # A header named to be read that nothing reads.
        ({"S3AUTH_FORWARDED_HEADER": "forwarded"}, "S3AUTH_FORWARDED_HEADER"),
        (
            {"S3AUTH_FORWARDED_HEADER": "forwarded", "S3AUTH_TRUST_X_FORWARDED_FOR": "false"},
            "S3AUTH_FORWARDED_HEADER",
        ),
        ({"S3AUTH_RATE_LIMITS": "login=abc"}, "S3AUTH_RATE_LIMITS"),
        ({"S3AUTH_RATE_LIMITS": "login=0/60"}, "S3AUTH_RATE_LIMITS"),
        ({"S3AUTH_RATE_LIMITS": "login=5/60,login=6/60"}, "S3AUTH_RATE_LIMITS"),
        ({"S3AUTH_RATE_LIMITS": "log in=5/60"}, "S3AUTH_RATE_LIMITS"),
    ],
)
def test_what_the_app_would_refuse_at_start_is_refused_when_made(
    env: dict[str, str], variable: str
) -> None:
    message = refusal(**env)
    assert variable in message
    # The very message the app's start gives: one parser decides both.
    with pytest.raises(ConfigurationError) as at_start:
        ClientIPResolver(
            [p for p in env.get("S3AUTH_TRUSTED_PROXIES", "").split(",") if p],
            trust_x_forwarded_for=env.get("S3AUTH_TRUST_X_FORWARDED_FOR") == "true",
            forwarded_header=env.get("S3AUTH_FORWARDED_HEADER", "x-forwarded-for"),  # type: ignore[arg-type]
        )
        parse_rate_limits(env.get("S3AUTH_RATE_LIMITS", ""))
    assert str(at_start.value) == message


def test_the_keyword_arguments_are_checked_alike() -> None:
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUSTED_PROXIES"):
        S3AuthSettings(secret_key=SECRET, trusted_proxies=["proxy.internal"])
    with pytest.raises(ConfigurationError, match="S3AUTH_RATE_LIMITS"):
        S3AuthSettings(secret_key=SECRET, rate_limits="login=5")


def test_proxy_and_limit_settings_the_app_takes_are_taken() -> None:
    settings = made(
        S3AUTH_TRUSTED_PROXIES="10.0.0.1, 10.1.0.0/16, ::1",
        S3AUTH_TRUST_X_FORWARDED_FOR="true",
        S3AUTH_RATE_LIMITS="login=5/60, api=100/0.5",
    )
    assert settings.trusted_proxies == ["10.0.0.1", "10.1.0.0/16", "::1"]
    everyone = made(
        S3AUTH_TRUSTED_PROXIES="0.0.0.0/0,::/0",
        S3AUTH_TRUST_X_FORWARDED_FOR="true",
        S3AUTH_TRUST_ALL_PROXIES="true",
    )
    assert everyone.trust_all_proxies


# argon2's bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"S3AUTH_ARGON2_MEMORY_KIB": "1"}, "S3AUTH_ARGON2_MEMORY_KIB", "from 8 to 4294967295"),
        ({"S3AUTH_ARGON2_MEMORY_KIB": "7"}, "S3AUTH_ARGON2_MEMORY_KIB", "from 8 to 4294967295"),
        (
            {"S3AUTH_ARGON2_PARALLELISM": "100000"},
            "S3AUTH_ARGON2_MEMORY_KIB",
            "at least 800000 KiB",
        ),
        (
            {"S3AUTH_ARGON2_MEMORY_KIB": "99999999999999"},
            "S3AUTH_ARGON2_MEMORY_KIB",
            "from 8 to 4294967295",
        ),
        (
            {"S3AUTH_ARGON2_TIME_COST": "4294967296"},
            "S3AUTH_ARGON2_TIME_COST",
            "from 1 to 4294967295",
        ),
        (
            {"S3AUTH_ARGON2_PARALLELISM": "16777216", "S3AUTH_ARGON2_MEMORY_KIB": "4294967295"},
            "S3AUTH_ARGON2_PARALLELISM",
            "from 1 to 16777215",
        ),
        ({"S3AUTH_ARGON2_PARALLELISM": "0"}, "S3AUTH_ARGON2_PARALLELISM", "from 1 to"),
        ({"S3AUTH_ARGON2_TIME_COST": "0"}, "S3AUTH_ARGON2_TIME_COST", "from 1 to"),
    ],
)
def test_a_hash_cost_argon2_cannot_run_is_refused(
    env: dict[str, str], variable: str, says: str
) -> None:
    message = refusal(**env)
    assert variable in message and says in message, message


@pytest.mark.parametrize("parallelism", [1, 3, 8])
def test_the_memory_bound_is_argon2s_own(parallelism: int) -> None:
    """One KiB less than the least the settings take, argon2 refuses; at it, it hashes."""
    least = ARGON2_MIN_MEMORY_PER_LANE * parallelism
    with pytest.raises(HashingError, match="Memory cost is too small"):
        hash_secret(b"pw", b"s" * 16, 1, least - 1, parallelism, 32, Type.ID)
    with pytest.raises(ConfigurationError, match="S3AUTH_ARGON2_MEMORY_KIB"):
        S3AuthSettings(
            secret_key=SECRET, argon2_memory_kib=least - 1, argon2_parallelism=parallelism
        )
    settings = S3AuthSettings(
        secret_key=SECRET, argon2_memory_kib=least, argon2_parallelism=parallelism,
        argon2_time_cost=1,
    )  # fmt: skip
    hasher = PasswordHasher.from_settings(settings)
    hashed = anyio.run(hasher.hash, "Secret123!", backend="asyncio")
    assert hashed.startswith(f"$argon2id$v=19$m={least},t=1,p={parallelism}$")


def test_the_upper_bounds_are_argon2s_own() -> None:
    bindings = pytest.importorskip("_argon2_cffi_bindings")
    assert ARGON2_MAX_VALUE == bindings.lib.ARGON2_MAX_MEMORY == bindings.lib.ARGON2_MAX_TIME
    assert ARGON2_MAX_PARALLELISM == bindings.lib.ARGON2_MAX_LANES
    assert ARGON2_MAX_PARALLELISM == bindings.lib.ARGON2_MAX_THREADS
    assert ARGON2_MIN_MEMORY_PER_LANE == 2 * bindings.lib.ARGON2_SYNC_POINTS
    with pytest.raises(OverflowError):
        hash_secret(b"pw", b"s" * 16, ARGON2_MAX_VALUE + 1, 8, 1, 32, Type.ID)


# The key-encryption key: as strong as the secret key -------------------------------------


@pytest.mark.parametrize("weak", WEAK_SECRETS)
def test_a_guessable_key_encryption_key_is_refused(weak: str) -> None:
    message = refusal(S3AUTH_KEY_ENCRYPTION_KEY=weak)
    assert "S3AUTH_KEY_ENCRYPTION_KEY is too easy to guess" in message
    assert "s3auth gen-secret" in message and weak not in message
    with pytest.raises(ConfigurationError, match="S3AUTH_KEY_ENCRYPTION_KEY"):
        S3AuthSettings(secret_key=SECRET, key_encryption_key=weak)


def test_a_generated_key_encryption_key_is_taken() -> None:
    key = new_secret_key()
    assert made(**KEY_PAIR, S3AUTH_KEY_ENCRYPTION_KEY=key).key_encryption_key == key
    assert made(S3AUTH_KEY_ENCRYPTION_KEY="").key_encryption_key == ""  # none: keys unsealed


# The keys: what would seal or publish nothing, or fail only when the key ring is made -----


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # HS* keeps no private key in the store: nothing would be sealed.
        ({"S3AUTH_KEY_ENCRYPTION_KEY": new_secret_key()}, ("KEY_ENCRYPTION_KEY", "ALGORITHM")),
        # An HMAC key has no public form: the JWKS written would be {"keys": []}.
        (
            {"S3AUTH_JWKS_PUBLISH_URL": "file:///srv/www/jwks.json"},
            ("JWKS_PUBLISH_URL", "ALGORITHM"),
        ),
        (
            {**KEY_PAIR, "S3AUTH_SIGNING_KEY": "x", "S3AUTH_SIGNING_KEY_FILE": "/etc/hostname"},
            ("SIGNING_KEY", "SIGNING_KEY_FILE"),
        ),
        (
            {**KEY_PAIR, "S3AUTH_VERIFICATION_KEYS_FILE": "/k.pem"},
            ("VERIFICATION_KEYS_FILE", "SIGNING_KEY"),
        ),
    ],
)
def test_a_key_setting_that_would_do_nothing_or_fail_later_is_refused(
    env: dict[str, str], named: tuple[str, ...]
) -> None:
    message = refusal(**env)
    for name in named:
        assert re.search(rf"\bS3AUTH_{name}\b", message), (name, message)
    assert "/etc/hostname" not in message and "/k.pem" not in message


@pytest.mark.parametrize(
    "env",
    [
        {**KEY_PAIR, "S3AUTH_VERIFICATION_KEYS_FILE": "/nonexistent/keys.pem"},
        {**KEY_PAIR, "S3AUTH_SIGNING_KEY": "x", "S3AUTH_SIGNING_KEY_FILE": "/nonexistent/k.pem"},
        {"S3AUTH_SIGNING_KEY_FILE": "/nonexistent/k.pem"},
    ],
)
def test_the_key_ring_refuses_them_by_the_same_rule(env: dict[str, str]) -> None:
    """One function judges where the keys come from, for the settings and for the ring;
    settings that slipped past it (changed after they were made) meet it again there."""
    message = refusal(**env)
    settings = made(**{k: v for k, v in env.items() if k == "S3AUTH_ALGORITHM"})
    for name, value in env.items():
        msgspec.structs.force_setattr(settings, name.removeprefix("S3AUTH_").lower(), value)
    with pytest.raises(ConfigurationError) as info:
        KeyRing(settings, None, clock=lambda: 0.0)
    assert str(info.value) == message


def test_a_key_file_is_read_when_the_key_ring_is_made_not_with_the_settings() -> None:
    """The settings are made where the files may not be (`s3auth check` on another host, a
    secret mounted later): what a file holds is judged by the ring, naming the variable."""
    settings = made(**KEY_PAIR, S3AUTH_SIGNING_KEY_FILE="/nonexistent/k.pem")
    with pytest.raises(ConfigurationError, match=r"^S3AUTH_SIGNING_KEY_FILE: the file could not"):
        KeyRing(settings, None, clock=lambda: 0.0)


# ASCII digits and spaces -----------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        "login=\u0661\u0662/\u0666\u0660",  # Arabic-Indic 12/60: int() and float() read them
        "login=\uff15/\uff16\uff10",  # full-width 5/60
        "login=5/6\u0660",
        "login=5/60\u00a0",  # a no-break space, which str.strip() and \\s take for a space
        "login=5\u2003/60",
        "\u00a0login=5/60",
        "login=5/60,\u00a0",
    ],
)
def test_rate_limits_are_written_in_ascii(limits: str) -> None:
    assert refusal(S3AUTH_RATE_LIMITS=limits).startswith("S3AUTH_RATE_LIMITS: ")
    with pytest.raises(ConfigurationError, match=r"^S3AUTH_RATE_LIMITS: "):
        parse_rate_limits(limits)


@pytest.mark.parametrize(
    ("variable", "items"),
    [
        ("S3AUTH_TRUSTED_PROXIES", "10.0.0.1,\u00a010.0.0.2"),
        ("S3AUTH_TRUSTED_PROXIES", "10.0.0.1,\u3000"),
        ("S3AUTH_ALLOWED_ORIGINS", "https://app.example.com\u00a0"),
    ],
)
def test_a_list_item_takes_only_ascii_spaces_around_it(variable: str, items: str) -> None:
    assert refusal(**{variable: items}).startswith(variable)


def test_rate_limits_take_ascii_spaces_around_their_parts() -> None:
    limits = " login = 5 / 60 ,\tapi=100/60\n"
    assert parse_rate_limits(made(S3AUTH_RATE_LIMITS=limits).rate_limits) == {
        "login": RateLimit(5, 60),
        "api": RateLimit(100, 60),
    }


# A secret missing ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", [{}, {"S3AUTH_SECRET_KEY": ""}])
def test_a_secret_key_not_set_is_named_as_such(environment: dict[str, str]) -> None:
    """A newcomer who has not set it is told so and how to make one, not how long it must
    be."""
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(environment)
    assert str(info.value) == (
        "S3AUTH_SECRET_KEY is not set (generate one with `s3auth gen-secret`)"
    )


# Whitespace around a secret ----------------------------------------------------------------


@pytest.mark.parametrize("variable", ["S3AUTH_SECRET_KEY", "S3AUTH_KEY_ENCRYPTION_KEY"])
@pytest.mark.parametrize("padded", ["{}\n", "{}\r\n", " {}", "{} ", "\t{}"])
def test_a_secret_with_surrounding_whitespace_is_refused(variable: str, padded: str) -> None:
    """The whitespace would be part of the key: hosts given the same secret without it (a
    trailing newline from a secret file on one only) could not verify each other's tokens
    or open each other's sealed keys."""
    key = new_secret_key()
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, variable: padded.format(key)})
    message = str(info.value)
    assert f"{variable} begins or ends with whitespace" in message, message
    assert key not in message


@pytest.mark.parametrize(
    "variable", ["S3AUTH_SECRET_KEY", "S3AUTH_KEY_ENCRYPTION_KEY", "S3AUTH_SECRET_KEY_FALLBACKS"]
)
def test_a_secret_that_is_no_text_is_refused_at_start(variable: str) -> None:
    """An environment byte that is not UTF-8 reaches Python as a lone surrogate, which no
    key can be derived from: refused when the settings are made, naming the variable and
    not the secret, rather than failing at the first token."""
    key = new_secret_key() + "\udcff"
    environment = {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ALGORITHM": "ES256", variable: key}
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(environment)
    message = str(info.value)
    assert message.startswith(variable) and "UTF-8" in message, message
    assert key not in message


@pytest.mark.parametrize("field", ["issuer", "audience"])
@pytest.mark.parametrize("value", [" ", "\n", " https://auth.example.com", "api\n", "\tapi"])
def test_an_issuer_or_audience_with_surrounding_whitespace_is_refused(
    field: str, value: str
) -> None:
    """Tokens would carry it in `iss` or `aud`, and a verifier configured without it, as
    any other service's would be, refuses them all."""
    variable = f"S3AUTH_{field.upper()}"
    expected = f"^{variable} begins or ends with whitespace"
    with pytest.raises(ConfigurationError, match=expected):
        made(**{variable: value})
    with pytest.raises(ConfigurationError, match=expected):
        S3AuthSettings(secret_key=SECRET, **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["issuer", "audience"])
def test_an_empty_issuer_or_audience_is_unset(field: str) -> None:
    assert getattr(made(**{f"S3AUTH_{field.upper()}": ""}), field) is None
    value = "https://auth.example.com/a b"  # inside, whitespace is the operator's choice
    assert getattr(made(**{f"S3AUTH_{field.upper()}": value}), field) == value


# The JWKS publication target ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not-a-url", "s3://, gs://, az:// or file://"),
        ("ftp://host/jwks.json", "s3://, gs://, az:// or file://"),
        ("memory://jwks", "s3://, gs://, az:// or file://"),
        ("https://example.com/jwks.json", "s3://, gs://, az:// or file://"),
        ("s3://public-bucket", "must name an object"),
        ("s3://public-bucket/", "must name an object"),
        ("gs://public-bucket", "must name an object"),
        ("file:///srv/www/", "must name a file"),
        ("file://", "must name a file"),
        ("file:///", "must name a file"),
        ("file://www.example.com/jwks.json", "is read as a host"),
    ],
)
def test_a_jwks_target_that_cannot_be_written_is_refused(url: str, says: str) -> None:
    message = refusal(**KEY_PAIR, S3AUTH_JWKS_PUBLISH_URL=url)
    assert message.startswith("S3AUTH_JWKS_PUBLISH_URL") and says in message, message


@pytest.mark.parametrize(
    "url",
    [
        "s3://public-bucket/.well-known/jwks.json",
        "s3://public-bucket/jwks.json",
        "https://public-bucket.s3.amazonaws.com/jwks.json",
        "gs://public-bucket/jwks.json",
        "az://container/jwks.json",
        "file:///srv/www/.well-known/jwks.json",
        "file://./www/jwks.json",
    ],
)
def test_a_jwks_target_naming_an_object_is_taken(url: str) -> None:
    assert made(**KEY_PAIR, S3AUTH_JWKS_PUBLISH_URL=url).jwks_publish_url == url


def test_publishing_applies_the_same_rule() -> None:
    """What the settings refuse is what the writer refuses, by one function."""
    jwks: dict[str, list[object]] = {"keys": []}
    with pytest.raises(ConfigurationError) as writing:
        anyio.run(publish_jwks, "s3://public-bucket", jwks, 60, backend="asyncio")
    assert str(writing.value) == refusal(**KEY_PAIR, S3AUTH_JWKS_PUBLISH_URL="s3://public-bucket")


def test_a_jwks_file_url_is_read_as_the_stores_are(tmp_path: Path) -> None:
    """`file://localhost/abs` is `/abs` (RFC 8089), for the JWKS as for the store."""
    target = tmp_path / "www" / "jwks.json"
    target.parent.mkdir()
    url = f"file://localhost{target}"
    assert made(**KEY_PAIR, S3AUTH_JWKS_PUBLISH_URL=url).jwks_publish_url == url
    anyio.run(publish_jwks, url, {"keys": []}, 60, backend="asyncio")
    assert json.loads(target.read_bytes()) == {"keys": []}


def test_a_jwks_target_inside_a_directory_store_is_refused_however_it_is_spelt(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    for url in (
        f"file://{store}/keys/jwks.json",
        f"file://{tmp_path}/www/../store/jwks.json",
        f"file://{tmp_path}/./store/jwks.json",
    ):
        message = refusal(
            **KEY_PAIR, S3AUTH_STORE_URL=f"file://{store}", S3AUTH_JWKS_PUBLISH_URL=url
        )
        assert "S3AUTH_JWKS_PUBLISH_URL must be outside the store" in message, url
    beside = f"file://{tmp_path}/store-www/jwks.json"
    assert made(**KEY_PAIR, S3AUTH_STORE_URL=f"file://{store}", S3AUTH_JWKS_PUBLISH_URL=beside)


TEXT_FIELDS = [
    field.name
    for field in msgspec.structs.fields(S3AuthSettings)
    if field.type in (str, str | None, list[str])
]
PATH_FIELDS = ("store_url", "jwks_publish_url", "signing_key_file", "verification_keys_file",
               "mail_outbox")  # fmt: skip


@pytest.mark.parametrize("field", sorted(set(TEXT_FIELDS) - set(PATH_FIELDS)))
def test_a_text_setting_that_is_no_text_is_refused_naming_its_variable(field: str) -> None:
    """A byte of the environment that is not UTF-8 reaches Python as a lone surrogate, which
    no token, mail or SMTP login can carry, nor a typed password hold: refused when the
    settings are made, naming the variable and not the value, rather than a traceback at
    start (`iss`, `aud`) or every mail failing. A path may be any bytes, so those are taken."""
    variable = env_name(field)
    value = "cafe-\udce9-0123456789abcdefghij@example.com"
    environment = {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ALGORITHM": "ES256", variable: value}
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(environment)
    message = str(info.value)
    assert message.startswith(variable) and "not UTF-8 text" in message, message
    assert "cafe" not in message


def test_a_path_that_is_no_utf_8_is_taken(tmp_path: Path) -> None:
    """A file's name may be any bytes, which open() gets back from the same surrogates."""
    directory = f"{tmp_path}/caf\udce9"
    settings = S3AuthSettings.from_env({
        "S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ALGORITHM": "ES256",
        "S3AUTH_STORE_URL": f"file://{directory}/store",
        "S3AUTH_JWKS_PUBLISH_URL": f"file://{directory}/jwks.json",
        "S3AUTH_SIGNING_KEY_FILE": f"{directory}/signing.pem",
        "S3AUTH_VERIFICATION_KEYS_FILE": f"{directory}/verify.pem",
        "S3AUTH_MAIL_OUTBOX": f"{directory}/outbox", "S3AUTH_MAIL_FROM": "a@example.com",
    })  # fmt: skip
    assert settings.mail_outbox == f"{directory}/outbox"
    assert set(PATH_FIELDS) < set(TEXT_FIELDS)
