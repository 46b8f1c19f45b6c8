"""The one rule for administrators: a user is an administrator exactly when its record says
`is_admin`, and an administrator's access tokens grant the `admin` scope (`adm: true` and
`admin` in `scope`), so `requires("admin")`, the admin endpoints of the auth app and the
OpenAPI document all agree on who that is.

`admin` among the scopes given to `create_user` or `update_user` means `is_admin`; the
stored `scopes` never hold it, so there is one flag to change and nothing to drift apart.
A record written before this rule with `admin` among its scopes is an administrator too,
until a change sets its `is_admin`: that change drops the scope, so `is_admin: false`
demotes it as any other (`scopes_after`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import S3ValidationError

ADMIN_SCOPE = "admin"


def is_administrator(is_admin: bool, scopes: Iterable[str]) -> bool:
    return bool(is_admin) or ADMIN_SCOPE in scopes


def granted_scopes(is_admin: bool, scopes: Iterable[str]) -> list[str]:
    """The scopes a token carries: the user's own, and `admin` for an administrator."""
    own = [scope for scope in scopes if scope != ADMIN_SCOPE]
    return sorted([*own, ADMIN_SCOPE]) if is_administrator(is_admin, scopes) else own


def stored_scopes(scopes: Iterable[str]) -> list[str]:
    return [scope for scope in scopes if scope != ADMIN_SCOPE]


def scopes_after(scopes: Iterable[str], changes: Mapping[str, Any]) -> list[str]:
    """The scopes a record holding `scopes` stores once `changes` (fields and their new
    values) apply: those given, else its own; without `admin` where the change sets
    `is_admin`, which then alone says whether the user is an administrator."""
    after = list(changes.get("scopes", scopes))
    return stored_scopes(after) if "is_admin" in changes else after


def admin_from_input(is_admin: object, scopes: list[str] | None) -> bool | None:
    """What a create or an update asks of `is_admin`: True, False, or None (no change).
    `is_admin` is the given flag (None: not given); `admin` among `scopes` asks for True,
    and contradicting an explicit `is_admin: false` is refused."""
    wants = scopes is not None and ADMIN_SCOPE in scopes
    if is_admin is None:
        return True if wants else None
    if not isinstance(is_admin, bool):
        raise S3ValidationError("is_admin must be true or false")
    if wants and not is_admin:
        raise S3ValidationError(
            f"the {ADMIN_SCOPE!r} scope is granted by is_admin: they cannot disagree"
        )
    return is_admin
