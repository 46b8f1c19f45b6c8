"""S3AuthSettings from the environment: one clear error naming the variable."""

from __future__ import annotations

import pytest

from s3auth_asgi import ConfigurationError, S3AuthSettings

SECRET = "s" * 32


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
    ("env", "variable"),
    [
        ({}, "S3AUTH_SECRET_KEY"),
        ({"S3AUTH_SECRET_KEY": "short"}, "S3AUTH_SECRET_KEY"),
        ({"S3AUTH_ALGORITHM": "none"}, "S3AUTH_ALGORITHM"),
        ({"S3AUTH_ALGORITHM": "RS256"}, "S3AUTH_ALGORITHM"),
        ({"S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "soon"}, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"S3AUTH_REFRESH_GRACE_SECONDS": "-1"}, "S3AUTH_REFRESH_GRACE_SECONDS"),
        ({"S3AUTH_PASSWORD_POLICY": "weak"}, "S3AUTH_PASSWORD_POLICY"),
        ({"S3AUTH_PASSWORD_MAX_LENGTH": "32"}, "S3AUTH_PASSWORD_MAX_LENGTH"),
        ({"S3AUTH_TRUST_X_FORWARDED_FOR": "maybe"}, "S3AUTH_TRUST_X_FORWARDED_FOR"),
        ({"S3AUTH_STORE_URL": "bucket"}, "S3AUTH_STORE_URL"),
        ({"S3AUTH_LEEWAY_SECONDS": "30"}, "S3AUTH_REVOCATION_SKEW_SECONDS"),
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


@pytest.mark.parametrize(
    ("field", "value"),
    [("trust_x_forwarded_for", "false"), ("trusted_proxies", "10.0.0.1"), ("rate_limits", 5)],
)
def test_keyword_arguments_are_type_checked(field: str, value: object) -> None:
    """A string "false" must not slip through as a truthy flag."""
    with pytest.raises(ConfigurationError, match=f"S3AUTH_{field.upper()}"):
        S3AuthSettings(secret_key=SECRET, **{field: value})  # type: ignore[arg-type]
