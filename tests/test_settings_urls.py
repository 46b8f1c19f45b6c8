"""The URL settings hold to the letter what they are given: whitespace around one is refused,
never part of the URL (`file:///srv/auth ` is a directory named `auth ` beside `auth`: another
store), and the public URL is one every mailed link can start with."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import SECRET

from s3auth_asgi import ConfigurationError, S3AuthSettings, cli
from s3auth_asgi.cli import failures


def refusal(**env: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, **env})
    return str(info.value)


# Whitespace around a URL -------------------------------------------------------------------

PADDINGS = ["{} ", " {}", "{}\n", "{}\r\n", "\t{}"]


@pytest.mark.parametrize("padded", PADDINGS)
@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("S3AUTH_STORE_URL", "file:///srv/auth/store"),
        ("S3AUTH_STORE_URL", "s3://bucket/prefix"),
        ("S3AUTH_STORE_URL", "memory://"),
        ("S3AUTH_JWKS_PUBLISH_URL", "s3://public-bucket/jwks.json"),
        ("S3AUTH_PUBLIC_URL", "https://app.example.com"),
    ],
)
def test_a_url_with_surrounding_whitespace_is_refused(variable: str, url: str, padded: str) -> None:
    message = refusal(**{variable: padded.format(url)})
    assert message.startswith(f"{variable} begins or ends with whitespace"), message
    assert "remove it" in message


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("store_url", "s3://bucket/prefix "),
        ("jwks_publish_url", " s3://public-bucket/jwks.json"),
        ("public_url", "https://app.example.com\n"),
    ],
)
def test_a_padded_url_is_refused_as_an_argument_too(field: str, url: str) -> None:
    with pytest.raises(ConfigurationError, match=f"S3AUTH_{field.upper()} begins or ends"):
        S3AuthSettings(secret_key=SECRET, **{field: url})  # type: ignore[arg-type]


def test_check_opens_no_store_beside_the_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s3auth check --create` on a URL with a trailing space made a directory `store `, and
    passed: every command after it used a store the app never reads."""
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path}/store ")
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["check", "--create"], stdout=out, stderr=err)
    assert code == failures.CONFIGURATION, out.getvalue() + err.getvalue()
    assert "S3AUTH_STORE_URL begins or ends with whitespace" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


# The public URL: where every mailed link starts -------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # A link is `{url}/reset-password#token=…`: after an empty query or fragment, the path
        # and the token are part of it, and the front end finds neither.
        ("https://app.example.com#", "no query or fragment"),
        ("https://app.example.com?", "no query or fragment"),
        ("https://app.example.com/?", "no query or fragment"),
        ("https://app.example.com/app?#", "no query or fragment"),
        ("https://app.example.com?next=1", "no query or fragment"),
        # urlsplit drops tabs and newlines inside a URL; a mail reader ends the link there.
        ("https://app .example.com", "no whitespace"),
        ("https://app.example.com/my app", "no whitespace"),
        ("https://app.example.com/\tx", "no whitespace"),
        ("https://app.exam\nple.com", "no whitespace"),
        ("https://app.example.com/\x00", "no whitespace"),
        ("https://app.example.com/\u00a0x", "no whitespace"),
        # Credentials in it would be mailed to every user.
        ("https://user:pw@app.example.com", "no user name or password"),
        ("https://user@app.example.com", "no user name or password"),
        ("https://@app.example.com", "no user name or password"),
    ],
)
def test_a_public_url_that_would_make_broken_or_leaking_links_is_refused(
    url: str, says: str
) -> None:
    message = refusal(S3AUTH_PUBLIC_URL=url)
    assert message.startswith("S3AUTH_PUBLIC_URL must ") and says in message, message
    assert "pw" not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/account",
        "http://localhost:8000",
        "https://[2001:db8::1]:8443/app",
        "https://app.example.com/a%20b",
    ],
)
def test_a_public_url_links_can_start_with_is_taken(url: str) -> None:
    settings = S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_PUBLIC_URL": url})
    assert settings.public_url == url
