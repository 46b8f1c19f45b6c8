"""S3AUTH_MAX_BODY_BYTES is refused below what the largest valid request needs, so that no
value the settings take answers a valid login, registration or password change with 413:
when the settings are made (with S3AUTH_PASSWORD_MAX_LENGTH), and when the app is made
(with the password policy and the profile fields given in code). The least it takes is
tried through the real app with each field at its longest, each character written in its
longest form: a character beyond the BMP as a JSON escape of its surrogate pair, or
percent-encoded in a form, 12 bytes each."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_service, make_settings
from test_app import bearer, client_for, mounted

from s3auth_asgi import ConfigurationError, S3AuthService, S3AuthSettings
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.password_policy import PasswordPolicy
from s3auth_asgi.profile_fields import ProfileFields
from s3auth_asgi.storage import ObjectStore

BOLD = ("\U0001d400", "\U0001d41a", "\U0001d7ce")
"""MATHEMATICAL BOLD CAPITAL A, SMALL A, DIGIT ZERO: an upper-case and a lower-case letter
and a digit, as the default policy wants, each four bytes of UTF-8."""
OTHER_BOLD = ("\U0001d401", "\U0001d41b", "\U0001d7cf")
EMOJI = "\U0001f600"


def worst_password(length: int, letters: tuple[str, ...] = BOLD) -> str:
    return "".join(letters[i % 3] for i in range(length))


def refusal(**values: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings(secret_key=SECRET, **values)
    return str(info.value)


def test_a_body_limit_no_registration_or_login_fits_in_is_refused() -> None:
    for small in (1, 1024):
        assert "S3AUTH_MAX_BODY_BYTES" in refusal(max_body_bytes=small)
    with pytest.raises(ConfigurationError, match="S3AUTH_MAX_BODY_BYTES"):
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_MAX_BODY_BYTES": "2000"})
    # Two passwords of 4096 such characters are 98,304 bytes: past the default limit.
    message = refusal(password_max_length=4096)
    assert "S3AUTH_MAX_BODY_BYTES" in message and "S3AUTH_PASSWORD_MAX_LENGTH=4096" in message
    assert S3AuthSettings(secret_key=SECRET).max_body_bytes == 65536


def test_the_readme_names_the_rule() -> None:
    from pathlib import Path

    from s3auth_asgi.body_limit import least_body_bytes

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `S3AUTH_MAX_BODY_BYTES`")]
    assert f"{least_body_bytes(128)} with the default" in row and "12 bytes" in row
    assert f"{least_body_bytes(4096)} with 4096" in row
    # The longest passwords the default limit fits, as the password length's row says.
    assert least_body_bytes(2709) <= 65536 < least_body_bytes(2710)
    assert "above 2709, `S3AUTH_MAX_BODY_BYTES` must be raised" in readme


def json_body(fields: dict[str, Any]) -> bytes:
    """As Python's json module writes it by default: every character beyond ASCII escaped,
    a space after each separator."""
    return json.dumps(fields).encode()


@pytest.mark.parametrize(("length", "profile"), [(64, True), (4096, False)])
def test_the_largest_requests_fit_in_the_least_limit_taken(length: int, profile: bool) -> None:
    from s3auth_asgi.body_limit import least_body_bytes

    profile_bytes = 4096 if profile else 0
    least = least_body_bytes(length, profile_bytes)
    # The settings know no profile: the app holds the limit to it (below).
    below = least_body_bytes(length) - 1
    assert "S3AUTH_MAX_BODY_BYTES" in refusal(password_max_length=length, max_body_bytes=below)
    declared = {"type": "object", "properties": {"bio": {"type": "string"}}} if profile else None
    service = S3AuthService(
        make_settings(password_max_length=length, max_body_bytes=least),
        store=ObjectStore.from_url("memory://"),
        profile_fields=ProfileFields(declared, max_bytes=profile_bytes) if profile else None,
    )
    password, new_password = worst_password(length), worst_password(length, OTHER_BOLD)
    registration: dict[str, Any] = {
        # NFKC makes each letter its ASCII one: a username of 64 letters.
        "username": "".join(chr(0x1D41A + i % 26) for i in range(64)),
        # 244 bytes before the `@`, the 254 in all that an address may have.
        "email": "\U0001d41a" * 61 + "@aaaaa.com",
        "password": password,
        "full_name": EMOJI * 200,
    }
    if profile:
        # 10 bytes of `{"bio":""}` and 4 of each character: 4096 bytes as stored.
        registration["profile"] = {"bio": EMOJI * 1021}
    sizes = []

    async def run() -> None:
        async with client_for(mounted(service)) as client:
            body = json_body(registration)
            sizes.append(len(body))
            created = await client.post(
                "/auth/register", content=body, headers={"Content-Type": "application/json"}
            )
            assert created.status_code == 201, created.text
            # A form percent-encodes each of a character's four bytes: 12 bytes too.
            form = {"grant_type": "password", "username": created.json()["email"]}
            logged_in = await client.post("/auth/login", data={**form, "password": password})
            assert logged_in.status_code == 200, logged_in.text
            change = json_body({"current_password": password, "new_password": new_password})
            sizes.append(len(change))
            changed = await client.post(
                "/auth/password",
                content=change,
                headers={"Content-Type": "application/json", **bearer(logged_in.json())},
            )
            assert changed.status_code == 200, changed.text

    anyio.run(run, backend="asyncio")
    assert max(sizes) <= least
    if length == 4096:  # the password change is the largest, and the rule near its size
        assert sizes[1] > least - 1024


def test_the_app_holds_the_limit_to_what_is_given_in_code() -> None:
    """A password policy or profile fields given in code may let a request be larger than
    the settings alone say: the app is refused rather than answering it 413."""
    from s3auth_asgi.body_limit import least_body_bytes

    service = make_service()
    longer = S3AuthService(
        service.settings,
        store=ObjectStore.from_url("memory://"),
        password_policy=PasswordPolicy.default(max_length=4096),
    )
    with pytest.raises(ConfigurationError) as info:
        create_auth_app(longer)
    assert "S3AUTH_MAX_BODY_BYTES" in str(info.value) and "4096" in str(info.value)
    declared = {"type": "object", "properties": {"bio": {"type": "string"}}}
    for profile_bytes, taken in ((4096, True), (65536, False)):
        settings = make_settings(max_body_bytes=least_body_bytes(128, 4096))
        profiled = S3AuthService(
            settings,
            store=ObjectStore.from_url("memory://"),
            profile_fields=ProfileFields(declared, max_bytes=profile_bytes),
        )
        if taken:
            create_auth_app(profiled)
            continue
        with pytest.raises(ConfigurationError, match=r"S3AUTH_MAX_BODY_BYTES.*65536 bytes"):
            create_auth_app(profiled)
    # Without profile fields declared, the profile takes no room.
    create_auth_app(make_service(max_body_bytes=least_body_bytes(128)))
