"""A profile-field declaration that can never work is refused when the service is made, with
a ConfigurationError naming the field and what is wrong: before, the auth app's document
failed with a bare TypeError naming no field, a host using the service alone met it at its
first `create_user`, and a default of the wrong type was stored as it was."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
from conftest import make_settings
from test_app import PASSWORD

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.profile_fields import ProfileFields

NEVER_WORKS: dict[str, tuple[dict[str, Any], str]] = {
    "a list of types": ({"type": ["string", "null"]}, "a single type"),
    "a type that is no name": ({"type": {"string": True}}, "a single type"),
    "a float enum": ({"enum": [1.5, 2.5]}, "enum"),
    "an empty enum": ({"enum": []}, "enum"),
    "an enum that is no list": ({"enum": "abc"}, "enum"),
    "an enum of another type": ({"type": "integer", "enum": ["a", "b"]}, "enum"),
    "minLength on an integer": ({"type": "integer", "minLength": 1}, "minLength"),
    "maxLength on a boolean": ({"type": "boolean", "maxLength": 1}, "maxLength"),
    "minLength on an enum": ({"enum": ["a", "b"], "minLength": 1}, "minLength"),
    "minimum on a string": ({"type": "string", "minimum": 1}, "minimum"),
    "maximum on a boolean": ({"type": "boolean", "maximum": 1}, "maximum"),
    "a minimum given as text": ({"type": "integer", "minimum": "3"}, "minimum"),
    "a negative maxLength": ({"type": "string", "maxLength": -1}, "maxLength"),
    "a default of the wrong type": ({"type": "integer", "default": "x"}, "default"),
    "a default outside the enum": ({"enum": ["a", "b"], "default": "c"}, "default"),
    "a default below the minimum": ({"type": "integer", "minimum": 1, "default": 0}, "default"),
    "a default the pattern refuses": (
        {"type": "string", "pattern": "^[a-z]+$", "default": "ABC"},
        "default",
    ),
}


@pytest.mark.parametrize("case", NEVER_WORKS)
def test_a_declaration_that_can_never_work_is_refused_with_its_field(case: str) -> None:
    spec, keyword = NEVER_WORKS[case]
    schema = {"type": "object", "properties": {"seats": spec}}
    with pytest.raises(ConfigurationError) as refused:
        S3AuthService(make_settings(), profile_fields=schema)
    message = str(refused.value)
    assert message.startswith("profile_fields.seats: "), message
    assert keyword in message, message


class WrongDefault(msgspec.Struct, kw_only=True):
    seats: int = "many"  # type: ignore[assignment]


class WrongConstraint(msgspec.Struct, kw_only=True):
    seats: Annotated[int, msgspec.Meta(min_length=1)] = 1


@pytest.mark.parametrize(
    ("declared", "says"), [(WrongDefault, "default"), (WrongConstraint, "min_length")]
)
def test_a_struct_that_can_never_work_is_refused_with_its_field(
    declared: type[msgspec.Struct], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"^profile_fields\.seats: .*{says}"):
        ProfileFields(declared)


@pytest.mark.anyio
async def test_what_works_is_unchanged_and_the_app_is_built() -> None:
    schema = {
        "type": "object",
        "properties": {
            "plan": {"enum": ["free", "paid"], "default": "free"},
            "seats": {"type": "integer", "minimum": 1, "default": 1},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
            "code": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8, "default": "x"},
            "news": {"type": "boolean", "default": False},
        },
    }
    service = S3AuthService(make_settings(), profile_fields=schema)
    document = create_auth_app(service).openapi.for_mount("/auth")
    assert "Profile" in document["components"]["schemas"]
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    assert user.profile == {"plan": "free", "seats": 1, "ratio": 0, "code": "x", "news": False}


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        (
            {"properties": {"seats": {"type": "integer"}}, "required": ["seat"]},
            "profile_fields.seat: required, but not among the properties",
        ),
        (
            {"properties": {"seats": {"type": "integer", "default": 1}}, "required": ["seats"]},
            "profile_fields.seats: a default on a required field",
        ),
        (
            {"properties": {"seats": {"type": "integer"}}, "required": "seats"},
            "profile_fields: required must be a list of property names",
        ),
    ],
    ids=["an undeclared field required", "a required field's default", "required as text"],
)
def test_a_required_list_that_cannot_mean_what_it_says_is_refused(
    schema: dict[str, Any], says: str
) -> None:
    # Taken as it was, the typo'd name would leave `seats` optional, and the default would
    # never be used: a registration without the field is refused.
    with pytest.raises(ConfigurationError) as refused:
        S3AuthService(make_settings(), profile_fields={"type": "object", **schema})
    assert str(refused.value).startswith(says), str(refused.value)


class PublicUser(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Named as the auth app's own user schema is."""

    company: str = ""


class Problem(msgspec.Struct, kw_only=True):
    """Named as the auth app's problem schema is, within a profile."""

    note: str = ""


class Health(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    problem: Problem | None = None


@pytest.mark.parametrize(("declared", "named"), [(PublicUser, "PublicUser"), (Health, "Problem")])
def test_a_profile_schema_named_as_one_of_the_apps_own_is_refused(
    declared: type[msgspec.Struct], named: str
) -> None:
    """Its schema took the place of the app's own in the document: `GET /me` answered the
    profile's fields, or every error answer a profile note."""
    service = S3AuthService(make_settings(), profile_fields=declared)
    with pytest.raises(ConfigurationError, match=rf"^profile_fields: .*\b{named}\b"):
        create_auth_app(service)
