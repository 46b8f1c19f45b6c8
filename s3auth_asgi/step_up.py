"""A recent authentication, asked for by a host's sensitive routes (RFC 9470, OAuth 2.0
Step Up Authentication Challenge): `max_age` seconds at most since the user last
authenticated, as the access token's `auth_time` says (`auth_methods`).

    requires("payments", max_age=300)             # a decorator, a FastAPI or Litestar check
    require_scopes(max_age=300)                   # FastAPI (`app.fastapi`)
    guards=[requires_scopes(max_age=300)]         # Litestar (`app.litestar`)

A token authenticated longer ago (allowing the verifier's leeway, S3AUTH_LEEWAY_SECONDS,
for clocks: `require_recent`), or one without `auth_time` (issued before it was
carried), is refused with ReauthenticationRequiredError: 401 `reauthentication_required`,
challenged with `error="insufficient_user_authentication"` and `max_age` (RFC 9470 §3),
which tells the client to authenticate again (the auth app's `POST /reauthenticate`) and
to retry with the new token. Checked after the token and its scopes, so a caller that no
re-authentication would let in is told so first. The auth app's administrator operations
ask for one with S3AUTH_ADMIN_MAX_AGE_SECONDS (`app.caller`); a user's own ask for none,
as each that changes what authentication depends on checks the password itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import AuthenticationError, ConfigurationError


class ReauthenticationRequiredError(AuthenticationError):
    """The token's authentication is older than a route allows (`max_age`), or unknown."""

    code = "reauthentication_required"
    title = "A more recent authentication is required"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        max_age: int = 0,
    ) -> None:
        self.max_age = max_age
        detail = detail or (
            f"This needs an authentication within the last {max_age} seconds; authenticate again"
        )
        super().__init__(detail, headers=headers)


def checked_max_age(max_age: object) -> int | None:
    """`max_age` as given (None: no recent authentication asked); ConfigurationError
    unless it is whole seconds, 0 or more."""
    if max_age is not None and (type(max_age) is not int or max_age < 0):
        raise ConfigurationError(f"max_age must be whole seconds, 0 or more (not {max_age!r})")
    return max_age


def require_recent(
    claims: Mapping[str, Any], max_age: int | None, now: float, *, leeway: int
) -> None:
    """ReauthenticationRequiredError unless the token of `claims` was authenticated at most
    `max_age` seconds before `now` (nothing asked when it is None), in whole seconds, as
    `auth_time` is and as the token's other times are judged (`access_claims`), allowing
    the `leeway` of the verifier that took the token. `auth_time` is by the clock of the
    host the user authenticated on and `now` by this one's, which may be the leeway apart:
    the allowance `exp` gets (OIDC Core §3.1.3.7 allows it for clock skew), else a host
    whose clock runs further ahead than `max_age` refuses even a token just renewed at
    `POST /reauthenticate`, and the client asks for one again and again. So taken until
    `max_age` plus the leeway has passed; and refused when more than the leeway in the
    future, as an `iat` would be: no clock within the leeway wrote it, so it says nothing
    of how recent the authentication was."""
    if max_age is None:
        return
    auth_time = claims.get("auth_time")
    if type(auth_time) is not int:
        raise ReauthenticationRequiredError(max_age=max_age)
    age = int(now) - auth_time
    if age > max_age + leeway or age < -leeway:
        raise ReauthenticationRequiredError(max_age=max_age)
