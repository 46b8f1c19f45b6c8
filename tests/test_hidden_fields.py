"""No object of the package shows a secret when printed: every field whose name says it holds
a password, a token, a secret, a MAC or a hash of one shows as `<hidden>` in `repr`, `str`,
`pprint` and rich's pretty printer, wherever the class is defined, so a field added later
cannot print its value. Encoding and decoding still carry every value."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import pprint
import re
from typing import Any

import msgspec
import pytest
from litestar.openapi import OpenAPIConfig
from test_service import pretty_reprs

import s3auth_asgi
from s3auth_asgi.app.lifecycle_schemas import ResetPasswordRequest
from s3auth_asgi.app.schemas import ChangePasswordRequest, LoginRequest, TokenResponse
from s3auth_asgi.cli.user_import import LineResult
from s3auth_asgi.mail.message import Message
from s3auth_asgi.mail.outbox import StoredMessage
from s3auth_asgi.models import User
from s3auth_asgi.problems import Problem
from s3auth_asgi.settings import S3AuthSettings
from s3auth_asgi.tokens import RefreshToken, TokenCodec
from s3auth_asgi.totp_factor import TotpEnrolment

SECRET_LOOKING = re.compile(
    r"(?:^|_)(?:password|token|code|mac|digest|jwk|hash|seed)$|(?:^|_)secret(?:_|$)"
)
NOT_SECRET = {
    (Problem, "code"): "a problem's code (`invalid_credentials`), sent to every client",
    (LineResult, "code"): "the problem code of an import line that failed, printed with it",
    (OpenAPIConfig, "random_seed"): "Litestar's seed of the examples its document makes up",
}
SECRET_UNDER_ANOTHER_NAME = [
    (Message, "text"),  # holds the mailed link, and its token
    (StoredMessage, "text"),
    (S3AuthSettings, "signing_key"),
    (S3AuthSettings, "key_encryption_key"),
    (TotpEnrolment, "otpauth_uri"),  # carries the seed
    (User, "totp_recovery"),  # the hashes of the recovery codes
]


def field_names(cls: type) -> tuple[str, ...]:
    if issubclass(cls, msgspec.Struct):
        return cls.__struct_fields__
    if dataclasses.is_dataclass(cls):
        return tuple(field.name for field in dataclasses.fields(cls))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return tuple(cls._fields)
    return ()


def package_classes() -> list[type]:
    """Every Struct, dataclass and named tuple defined in the package."""
    found: list[type] = []
    for module in pkgutil.walk_packages(s3auth_asgi.__path__, "s3auth_asgi."):
        if module.name.endswith("__main__"):  # runs the command line when imported
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, type) and value.__module__ == module.name and field_names(value):
                found.append(value)
    return found


def is_secret(cls: type, name: str) -> bool:
    if (cls, name) in SECRET_UNDER_ANOTHER_NAME:
        return True
    # A field a base class declares is what it is there in every subclass.
    declared_by = (base for base in cls.__mro__ if name in getattr(base, "__annotations__", {}))
    return bool(SECRET_LOOKING.search(name)) and (next(declared_by, cls), name) not in NOT_SECRET


def secret_looking_fields() -> list[tuple[type, str]]:
    return [
        (cls, name)
        for cls in package_classes()
        for name in field_names(cls)
        if SECRET_LOOKING.search(name) and is_secret(cls, name)
    ]


def filled(cls: type) -> tuple[Any, dict[str, str]]:
    """An instance whose every field holds a string of its own, built without the class's
    checks (which a settings object would fail), and those strings by field."""
    values = {name: f"{cls.__qualname__}.{name}!value" for name in field_names(cls)}
    if issubclass(cls, msgspec.Struct):
        unchecked = type(cls.__name__, (cls,), {"__post_init__": lambda self: None})
        instance = unchecked(**values)
    elif dataclasses.is_dataclass(cls):
        instance = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(instance, name, value)
    else:
        instance = cls._make(values.values())  # type: ignore[attr-defined]
    return instance, values


def renderings(value: object) -> list[str]:
    return [
        repr(value),
        str(value),
        f"{value}",
        f"{value!r}",
        pprint.pformat(value),
        pprint.pformat(value, width=20),
        *pretty_reprs(value),
    ]


def assert_hidden(cls: type, name: str) -> None:
    instance, values = filled(cls)
    for text in renderings(instance):
        assert values[name] not in text, f"{cls.__qualname__}.{name} shows: {text}"
        assert f"{name}=<hidden>" in text.replace("\n", "").replace(" ", ""), text
    for other, value in values.items():  # and nothing else is hidden
        assert is_secret(cls, other) or value in repr(instance), other


def test_the_walk_finds_the_secrets_of_every_kind_of_class() -> None:
    """Were the walk to miss a module or a kind of class, the test below would pass on
    nothing."""
    found = {(cls.__qualname__, name) for cls, name in secret_looking_fields()}
    assert {
        ("LoginRequest", "password"),
        ("LoginRequest", "client_secret"),
        ("RefreshRequest", "refresh_token"),
        ("ChangePasswordRequest", "current_password"),
        ("ChangePasswordRequest", "new_password"),
        ("ResetPasswordRequest", "token"),
        ("AdminSetPassword", "new_password"),
        ("TokenResponse", "access_token"),
        ("User", "hashed_password"),
        ("AccountToken", "digest"),
        ("StoredKey", "jwk"),
        ("S3AuthSettings", "secret_key"),
        ("RefreshToken", "mac"),  # a named tuple
        ("OpenedSeed", "seed"),  # a TOTP seed, opened
        ("ImportLine", "password_hash"),  # as another system made it
    } <= found


@pytest.mark.parametrize(
    ("cls", "name"),
    [*secret_looking_fields(), *SECRET_UNDER_ANOTHER_NAME],
    ids=lambda value: value if isinstance(value, str) else value.__qualname__,
)
def test_a_secret_field_shows_as_hidden(cls: type, name: str) -> None:
    assert_hidden(cls, name)


def test_hiding_changes_neither_encoding_nor_decoding() -> None:
    login = LoginRequest(username="ann", password="Login-Pass-1", client_secret="client-s")
    encoded = msgspec.json.encode(login)
    assert json.loads(encoded)["password"] == "Login-Pass-1"
    assert json.loads(encoded)["client_secret"] == "client-s"
    assert msgspec.json.decode(encoded, type=LoginRequest) == login
    change = msgspec.json.decode(
        b'{"current_password": "Old-Pass-1", "new_password": "New-Pass-1"}',
        type=ChangePasswordRequest,
    )
    assert (change.current_password, change.new_password) == ("Old-Pass-1", "New-Pass-1")
    reset = msgspec.convert({"token": "t" * 43, "new_password": "New-Pass-1"}, ResetPasswordRequest)
    assert msgspec.to_builtins(reset) == {"token": "t" * 43, "new_password": "New-Pass-1"}
    response = TokenResponse(
        access_token="access.jwt.value", token_type="bearer", expires_in=900,
        refresh_token="rt1.refresh", refresh_expires_in=86400,
    )  # fmt: skip
    assert json.loads(msgspec.json.encode(response)) == {
        "access_token": "access.jwt.value",
        "token_type": "bearer",
        "expires_in": 900,
        "refresh_token": "rt1.refresh",
        "refresh_expires_in": 86400,
    }
    message = Message(
        to="ann@example.com", subject="Reset", text="#token=abc", kind="password_reset"
    )
    assert json.loads(msgspec.json.encode(message))["text"] == "#token=abc"


def test_a_parsed_refresh_token_keeps_its_mac_and_its_tuple_shape() -> None:
    user_id, session_id, mac = "a" * 32, "b" * 32, "m" * 43
    token = TokenCodec.parse_refresh_token(f"rt1.{user_id}.{session_id}.7.{mac}")
    assert token.mac == mac and tuple(token) == (user_id, session_id, 7, mac)
    assert token == RefreshToken(user_id, session_id, 7, mac)
    assert mac not in repr(token) and "generation=7" in repr(token)


def test_what_is_not_secret_still_shows() -> None:
    user = User(id="u1", username="ann", email="ann@example.com", hashed_password="$argon2id$x")
    assert "username='ann'" in repr(user) and "hashed_password=<hidden>" in repr(user)
    assert "access_token=<hidden>" in repr(
        TokenResponse(access_token="a", token_type="bearer", expires_in=1, refresh_expires_in=2)
    )


@pytest.mark.parametrize(
    ("store_url", "jwks_publish_url", "shown"),
    [
        (
            "s3://AKIAEXAMPLE:Sh0wnN3ver@bucket/auth",
            "s3://AKIAEXAMPLE:Sh0wnN3ver@public/jwks.json",
            ("s3://bucket/auth", "s3://public/jwks.json"),
        ),
        (
            "https://acct.blob.core.windows.net/c/auth?sv=2024&sig=Sh0wnN3ver",
            "https://acct.blob.core.windows.net/www/jwks.json?sig=Sh0wnN3ver#Sh0wnN3ver",
            (
                "https://acct.blob.core.windows.net/c/auth",
                "https://acct.blob.core.windows.net/www/jwks.json",
            ),
        ),
    ],
)
def test_the_settings_show_no_credentials_a_url_carries(
    store_url: str, jwks_publish_url: str, shown: tuple[str, str]
) -> None:
    """A URL may carry credentials (user info, an Azure SAS in the query): the settings show
    what `s3auth` prints of one, without them."""
    settings = S3AuthSettings(
        secret_key="a-secret-key-that-is-long-enough-0123456789",
        algorithm="ES256",  # a JWKS to publish
        store_url=store_url,
        jwks_publish_url=jwks_publish_url,
    )
    assert settings.store_url == store_url  # only printing leaves them out
    for text in renderings(settings):
        assert "Sh0wnN3ver" not in text, text
        flat = text.replace("\n", "").replace(" ", "")
        assert f"store_url='{shown[0]}'" in flat and f"jwks_publish_url='{shown[1]}'" in flat
