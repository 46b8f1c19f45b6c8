"""Hooks: the application's own code, run at points of the account lifecycle: async
functions, or plain ones, which run on the event loop and so must be quick.

    hooks = Hooks()

    @hooks.on("after_register")
    async def welcome(event: AuthEvent) -> None: ...

    @hooks.before_register
    async def invited_only(registration: Registration) -> None:
        if not await invitations.exists(registration.email):
            raise S3ValidationError("Registration is by invitation")

    @hooks.token_claims
    async def tenant(user: User) -> Mapping[str, Any]:
        return {"tenant": user.profile["tenant"]}

    auth = S3AuthService(settings, hooks=hooks)

Event hooks receive the `AuthEvent` the event log gets, once the answer has been sent:
`after_register`, `after_login`, `login_failed`, `after_password_reset`,
`after_email_verified`, `session_revoked`, `user_updated`, `user_deleted` (`HOOK_OF_EVENT`
says which events run which). They see the account of a failed login as `user_id` when the
name typed is an account's (the event log does not name it). A hook that raises is logged
and that is all: the operation has happened and stays done, and the other hooks still run.
They run for requests to the auth app only: a service method called from the host's code
(`delete_user`, `set_password`, ...) or the `s3auth` command runs none, and the host that
needs them runs `dispatch` itself with the event the app would have made (docs/accounts.md).

`before_register` runs before anything is written, sees the registration as it would be
stored (`registration_of`), and may refuse it by raising S3ValidationError (or another
refusal of this package: `refusal` says how each is answered); any other exception
refuses it too, as 503 `hook_failed`, logged: an invitation check that crashed must not
let everybody in. So does a hook that returns anything but None (a check returning False
to refuse).

`token_claims` adds claims to the access tokens of a session: it runs when the session is
opened (a login, a password change), and every token of the session carries the claims,
refreshed ones too (a refresh reads no user record), as JSON has them (msgspec's encoding,
which the session is kept in: a datetime is RFC 3339 text, a set a list). Reserved claims
(`RESERVED_CLAIMS`) cannot be set; a hook that fails, returns one of them, something JSON
cannot hold, or claims that would take those of all the hooks before it past
MAX_CLAIMS_BYTES (as the token writes them: `token_budget`) is logged and its claims are
left out.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, get_args

import msgspec

from .errors import (
    EmailTakenError,
    InvalidEmailError,
    InvalidUsernameError,
    S3AuthError,
    S3ValidationError,
    StoreUnavailableError,
    UsernameTakenError,
    WeakPasswordError,
)
from .events import AuthEvent, EventName
from .identifiers import FULL_NAME_MAX, clean_email, clean_text, clean_username
from .models import User
from .profile_fields import ProfileFields
from .token_budget import token_json_bytes

logger = logging.getLogger("s3auth_asgi.hooks")

HookName = Literal[
    "after_register",
    "after_login",
    "login_failed",
    "after_password_reset",
    "after_email_verified",
    "session_revoked",
    "user_updated",
    "user_deleted",
]
EventHook = Callable[[AuthEvent], Awaitable[None] | None]
ClaimsHook = Callable[[User], Awaitable[Mapping[str, Any]] | Mapping[str, Any]]
E = TypeVar("E", bound=EventHook)
C = TypeVar("C", bound=ClaimsHook)

HOOK_OF_EVENT: dict[EventName, HookName] = {
    "register": "after_register",
    "admin_user_create": "after_register",
    "login": "after_login",
    "login_totp": "after_login",
    "password_reset": "after_password_reset",
    "email_verify": "after_email_verified",
    "logout": "session_revoked",
    "logout_all": "session_revoked",
    "session_end": "session_revoked",
    "admin_user_revoke": "session_revoked",
    "admin_session_end": "session_revoked",
    "profile_change": "user_updated",
    "email_change_request": "user_updated",
    "email_change": "user_updated",
    "password_change": "user_updated",
    "admin_user_update": "user_updated",
    "admin_password_set": "user_updated",
    "totp_confirm": "user_updated",
    "totp_disable": "user_updated",
    "admin_totp_disable": "user_updated",
    "admin_user_delete": "user_deleted",
}
"""The hook a successful event runs; a failed login runs `login_failed` (`Hooks.hook_of`)."""
LOGIN_STEPS: frozenset[EventName] = frozenset(("login", "login_totp"))
"""A login's two steps: a failure of either runs `login_failed`, but for a right password
that waits for its second factor's code (`mfa_required`), which is no failure of it."""

RESERVED_CLAIMS = frozenset(
    ("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "scope", "preferred_username",
     "adm", "typ", "kid", "alg", "cnf", "client_id", "auth_time", "acr", "amr")
)  # fmt: skip
MAX_CLAIMS_BYTES = 2048
"""The claims of all the hooks together, as JSON as the token writes it (`token_budget`): a
token carries them beside its own."""


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What `before_register` hooks see of a registration: as it would be stored
    (`registration_of`)."""

    username: str
    email: str
    full_name: str | None = None
    profile: dict[str, Any] | None = None
    client: str | None = None
    """The client address, when it came through the auth app."""


def registration_of(
    username: str,
    email: str,
    full_name: str | None,
    profile: dict[str, Any] | None,
    *,
    profile_fields: ProfileFields,
    client: str | None,
) -> Registration:
    """The registration as `create_user` would store it: the names as their checks leave
    them (trimmed, NFKC, the address's domain folded), the full name cleaned, the profile
    validated with its defaults. A check that compares what it is shown so meets what it
    refuses however it was typed (`ａｄｍｉｎ`, `x@EXAMPLE.com `), which as given would be
    stored as the refused name; input those checks refuse is refused here, before any hook
    (InvalidUsernameError, InvalidEmailError, S3ValidationError)."""
    return Registration(
        username=clean_username(username),
        email=clean_email(email),
        full_name=clean_text(full_name, "full_name", FULL_NAME_MAX),
        profile=profile_fields.clean(profile),
        client=client,
    )


RegistrationHook = Callable[[Registration], Awaitable[None] | None]
R = TypeVar("R", bound=RegistrationHook)


class HookFailedError(StoreUnavailableError):
    """A `before_register` hook failed or returned a value: the registration cannot be decided
    now."""

    code = "hook_failed"
    title = "The request could not be completed now; try again later"


class Hooks:
    """The hooks an application registers; empty by default."""

    def __init__(self) -> None:
        self._event_hooks: dict[HookName, list[EventHook]] = defaultdict(list)
        self._registration: list[RegistrationHook] = []
        self._claims: list[ClaimsHook] = []

    def on(self, name: HookName) -> Callable[[E], E]:
        """A decorator registering an event hook under `name`."""
        if name not in get_args(HookName):
            raise ValueError(f"no hook {name!r}; one of {', '.join(get_args(HookName))}")

        def register(hook: E) -> E:
            self._event_hooks[name].append(hook)
            return hook

        return register

    def before_register(self, hook: R) -> R:
        self._registration.append(hook)
        return hook

    def token_claims(self, hook: C) -> C:
        self._claims.append(hook)
        return hook

    async def check_registration(self, registration: Registration) -> None:
        """Run the `before_register` hooks; the first refusal is the registration's answer,
        as `refusal` makes it one that `/register` declares."""
        for hook in self._registration:
            try:
                # Declared as returning None; whatever one returns is looked at all the same.
                answer = await _outcome(hook, registration)
                if answer is not None:
                    # A check written to return False to refuse must not let everybody in.
                    raise TypeError(f"returned {answer!r}, not None: a refusal is raised")
            except Exception as error:
                raise refusal(error, hook) from None

    def hook_of(self, event: AuthEvent) -> HookName | None:
        if event.outcome == "success":
            return HOOK_OF_EVENT.get(event.name)
        if event.name in LOGIN_STEPS and event.outcome == "failure":
            return "login_failed" if event.reason != "mfa_required" else None
        return None

    async def dispatch(self, event: AuthEvent) -> None:
        """Run the hooks of `event`; a failure is logged and the others still run."""
        name = self.hook_of(event)
        for hook in self._event_hooks.get(name, ()) if name is not None else ():
            try:
                await _outcome(hook, event)
            except Exception:
                logger.exception("%s hook %s failed", name, _name(hook))

    async def claims_for(self, user: User) -> dict[str, Any]:
        """The extra claims of a new session of `user` (empty without hooks)."""
        claims: dict[str, Any] = {}
        for hook in self._claims:
            try:
                encoded = msgspec.json.encode(dict(await _outcome(hook, user)))
                # As the session keeps them, so that the login's token carries what every
                # refreshed one does: a datetime as RFC 3339 text, a set or tuple as a
                # list, NaN as null; the token's own encoder takes none of those.
                given = msgspec.json.decode(encoded)
                size = token_json_bytes(given)  # as the token writes them (`token_budget`)
            except Exception:
                logger.exception("token_claims hook %s failed", _name(hook))
                continue
            reserved = sorted(set(given) & RESERVED_CLAIMS)
            if not reserved and size <= MAX_CLAIMS_BYTES and claims:
                # The bound is of the claims together: each hook within it, several could
                # still make tokens longer than any verifier reads (MAX_TOKEN_BYTES).
                size = token_json_bytes({**claims, **given})
            if reserved or size > MAX_CLAIMS_BYTES:
                logger.error(
                    "token_claims hook %s: claims left out (%s)",
                    _name(hook),
                    f"reserved: {', '.join(reserved)}" if reserved else f"{size} bytes",
                )
                continue
            claims.update(given)
        return claims


async def _outcome(hook: Callable[[Any], Awaitable[Any] | Any], argument: object) -> Any:
    """What `hook` gives for `argument`, awaited when it is awaitable: a plain function is
    a hook too (its call then holds the event loop, so it must be quick)."""
    given = hook(argument)
    return await given if inspect.isawaitable(given) else given


def _name(hook: object) -> str:
    return getattr(hook, "__qualname__", repr(hook))


HOOK_REFUSALS: tuple[type[S3AuthError], ...] = (
    S3ValidationError,
    WeakPasswordError,
    InvalidUsernameError,
    InvalidEmailError,
    StoreUnavailableError,
)
"""The refusals of a `before_register` hook answered as they are, but for a taken name:
those the registration itself gives. `/register` declares their codes (`app.table`)."""


def _kept(error: S3AuthError) -> bool:
    return any(error.status == e.status and error.code == e.code for e in HOOK_REFUSALS)


def _taken(error: UsernameTakenError | EmailTakenError) -> S3AuthError:
    """A name the application keeps, as the registration's own taken name: `/register`
    hides which (`account_exists`) or names it by the package's code."""
    taken = UsernameTakenError if isinstance(error, UsernameTakenError) else EmailTakenError
    return error if error.code == taken.code else taken(error.detail)


def refusal(error: Exception, hook: object) -> S3AuthError:
    """What a `before_register` hook's `error` refuses the registration with. One of
    HOOK_REFUSALS (by status and code: a subclass without a code of its own is one) is
    answered as it is, as the registration's own are; any other 422 or 503 of this package,
    or of a subclass with a code of its own, keeps its status and detail with the code of
    its branch, and any other refusal (4xx) its detail in a 422 `validation_error`: a code
    or a status `/register` does not declare would be an answer no client was told of
    (a 403 or a 404, an application's `invitation_required`). Anything else is a check
    that could not decide: logged, and 503 `hook_failed`."""
    if isinstance(error, (UsernameTakenError, EmailTakenError)):
        return _taken(error)
    if isinstance(error, S3AuthError) and _kept(error):
        return error
    if isinstance(error, StoreUnavailableError):
        return StoreUnavailableError(error.detail, headers=error.headers)
    if isinstance(error, S3AuthError) and 400 <= error.status < 500:
        return S3ValidationError(error.detail)
    logger.error("before_register hook %s failed", _name(hook), exc_info=error)
    return HookFailedError()
