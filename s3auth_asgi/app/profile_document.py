"""The application's profile fields (`profile_fields`) in the auth app's OpenAPI document,
in place of the generic `profile` object of the bodies that hold one."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError

NEW_ACCOUNTS = ("RegisterRequest", "AdminUserCreate")
PROFILE_READERS = ("PublicUser", *NEW_ACCOUNTS)
PROFILE_CHANGES = ("UpdateProfileRequest", "AdminUserUpdate")
_NO_PROFILE = "None: this application declares no profile fields."


def declare_profile(
    document: dict[str, Any], reference: dict[str, Any], definitions: dict[str, Any]
) -> None:
    """Put the application's profile fields (`profile_fields`: its schema's reference and
    definitions) in place of the generic `profile` object; a change (PATCH) needs none of
    them, so it refers to a copy without `required`, `{name}Change`. ConfigurationError
    for a Struct named as a schema the document has already, or as that copy: the document
    names schemas by their Struct's name, and one put in another's place documents every
    body that refers to it as the other (`GET /me` answering the profile's fields)."""
    schemas = document["components"]["schemas"]
    name = reference["$ref"].rsplit("/", 1)[-1]
    change = f"{name}Change"
    taken = sorted((schemas.keys() & {*definitions, change}) | (definitions.keys() & {change}))
    if taken:
        raise ConfigurationError(
            f"profile_fields: {', '.join(taken)} would name two schemas in the auth app's "
            "OpenAPI document; give the Struct another name"
        )
    schemas.update(definitions)
    schemas[change] = {k: v for k, v in definitions[name].items() if k != "required"}
    for schema_name, target in [
        *((n, reference) for n in PROFILE_READERS),
        *((n, {"$ref": f"{reference['$ref']}Change"}) for n in PROFILE_CHANGES),
    ]:
        properties = schemas.get(schema_name, {}).get("properties", {})
        if "profile" in properties:
            nullable = schema_name in PROFILE_READERS
            properties["profile"] = {"anyOf": [target, {"type": "null"}]} if nullable else target


def declare_no_profile(document: dict[str, Any]) -> None:
    """Without profile fields every profile a request gives is refused, even `{}`: a new
    account's may only be null, and a change has none to make."""
    schemas = document["components"]["schemas"]
    for name in NEW_ACCOUNTS:
        schemas[name]["properties"]["profile"] = {"type": "null", "description": _NO_PROFILE}
    for name in PROFILE_CHANGES:
        del schemas[name]["properties"]["profile"]
