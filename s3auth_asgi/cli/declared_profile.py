"""`--profile-fields MODULE:NAME`: the application's profile fields, which live in its code,
not in the environment the commands read, taken from where the application declares them:
a msgspec Struct, a JSON-Schema-shaped dict, a `ProfileFields`, or the application's
`S3AuthService`, whose own are taken (its `max_bytes` with them). The module is imported
as the application imports it, from the current directory or the installed packages."""

from __future__ import annotations

import importlib
import os
import sys

from ..profile_fields import ProfileFields
from ..service import S3AuthService
from .failures import CommandError

OPTION = "--profile-fields"
FORM = "MODULE:NAME"


def declared_profile(given: str | None) -> ProfileFields | None:
    """The profile fields `given` names (None for none); CommandError, a usage error, when
    it names nothing that can be had, and ConfigurationError for a declaration that can
    never work, as the service refuses it."""
    if given is None:
        return None
    module_name, _, name = given.partition(":")
    if not module_name or not name:
        raise CommandError(f"{OPTION} takes {FORM} (myapp.auth:Profile), not {given!r}")
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        # A console script's path starts at its own directory, not the one it runs in.
        sys.path.insert(0, here)
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"{OPTION}: cannot import {module_name}: {exc}") from exc
    for part in name.split("."):
        if not hasattr(found, part):
            raise CommandError(f"{OPTION}: {module_name} has no {name}")
        found = getattr(found, part)
    if isinstance(found, S3AuthService):
        return found.profile_fields
    if isinstance(found, ProfileFields):
        return found
    return ProfileFields(found)  # type: ignore[arg-type]  # it says what it takes
