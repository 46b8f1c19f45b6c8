"""Operation: one endpoint with everything the dispatcher and the OpenAPI document need, so
what the document declares is what is enforced: `endpoint.Endpoint` authenticates from
`access`, reads `request`/`query`, checks the ids in the path and marks `token_response`
answers no-store before a handler runs; a handler receives the outcome as a `Call`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from ..errors import AuthenticationRequiredError, ConflictError, S3AuthError
from ..events import EventName
from .problem_codes import problem_codes

if TYPE_CHECKING:
    from ..models import User
    from ..ratelimit import RateLimitInfo
    from .caller import Caller

Access = Literal["public", "bearer", "bearer_or_refresh_token", "admin"]
"""Who may call: anyone; the holder of an access token; the holder of a refresh token in
the body, or else of an access token; an administrator's access token."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request, checked and read as its operation declares."""

    request: Request
    caller_or_none: Caller | None
    """None for public operations, and for a refresh token in the body."""
    body: Any = None
    """The `request` Struct (its defaults for an empty optional body)."""
    query: Any = None
    path_ids: dict[str, str] = field(default_factory=dict)
    """The path parameters, each a well-formed id."""
    noted: dict[str, str] = field(default_factory=dict)
    """What the operation's auth event names (`user_id`, `session_id`, `actor_id`): the
    caller's, and what a handler adds (the account a login opened a session of)."""
    shown: list[RateLimitInfo] = field(default_factory=list)
    """The rate-limit checks whose fields the answer a handler returns carries: the
    operation's `limits`, and those a handler adds (a password attempt's). They are written
    once, after the handler, so that an answer under both has one list of policies and one
    policy in the legacy fields."""

    @property
    def caller(self) -> Caller:
        if self.caller_or_none is None:  # only where the access allows no token
            raise AuthenticationRequiredError()
        return self.caller_or_none

    @property
    def account(self) -> User:
        """The caller's user record, read before the handler (`Operation.reads_account`)."""
        account = self.caller.account
        if account is None:  # only where the operation does not read it
            raise AuthenticationRequiredError()
        return account


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HandlerLimits:
    """Rate limits a handler counts against itself, where it must (a password attempt's
    budgets are read before the password is checked and charged only when it is wrong),
    rather than before it runs as the `Operation.limits` are."""

    counted: tuple[str, ...]
    """Each may refuse the request: a 429."""
    shown: tuple[str, ...]
    """Those whose fields the answers it returns carry (`Call.shown`)."""
    charged: tuple[int, ...] = ()
    """Error statuses whose answers carry the fields of `shown` too: a wrong password's,
    which is charged to them."""
    unshown: tuple[str, ...] = ()
    """Those that may refuse with `Retry-After` alone, their fields shown by no answer: the
    budgets of the inboxes a change would mail (`limits.check_mails`)."""


_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")
LOST_TO_A_CONCURRENT_CHANGE = (
    "A concurrent change of the account that this one loses to (one that makes what it "
    "checked untrue, or wins the write every time) is 409 `conflict`: nothing is changed."
)
"""Said of every operation that writes an account record: it declares `conflict` for it."""
ADMINS_SEE_NAMES = (
    "Whatever the enumeration protection: administrators can list every account, so "
    "naming what is taken hides nothing from them."
)
"""Said of the admin operations that answer `username_taken` and `email_taken`."""


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    access: Access = "public"
    reads_account: bool = True
    """With a caller: its user record is read before the handler runs (`Call.account`),
    and a token whose account is gone, closed or disabled answers 401 `invalid_token`
    (`caller.usable_account`). False where the handler judges the record it reads itself
    by that rule, or where no account is needed (ending the caller's own session)."""
    max_age: int | None = None
    """A recent authentication it asks for: the caller's token authenticated at most this
    many seconds ago (`step_up`), else 401 `reauthentication_required`. None: any."""
    request: type[Any] | None = None
    """The body Struct, as JSON."""
    form: bool = False
    """The body may also be an urlencoded form (the OAuth2 token endpoints)."""
    body_optional: bool = False
    refresh_cookie: bool = False
    """Takes the refresh token from the `s3auth_refresh` cookie where the body has none
    (browser mode): the document declares the cookie as a security scheme of its own."""
    query: type[Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Optional request headers it reads, as (name, description)."""
    response: type[Any] | None = None
    """The success body Struct; None for 204 No Content."""
    status: int = 200
    token_response: bool = False
    """Sends tokens: `Cache-Control: no-store`, and the refresh cookie in browser mode."""
    token_endpoint: bool = False
    """An OAuth 2.0 token endpoint (RFC 6749 §3.2): its problems also carry the §5.2
    `error` and `error_description` (`token_errors`)."""
    event: EventName | None = None
    """The auth event each request emits, whatever its outcome (`events`)."""
    limits: tuple[str, ...] = ()
    """The rate limits every request counts against (`auth_limits.DEFAULT_AUTH_LIMITS` names),
    counted after the caller and the body are checked, before the handler runs; the
    answers the handler returns carry their fields. Those the limiter has may refuse
    (429): the OpenAPI document follows the limiter (`limit_fields`)."""
    handler_limits: HandlerLimits | None = None
    """The limits its handler counts itself."""
    returned_errors: tuple[int, ...] = ()
    """Error statuses the handler answers by returning a problem rather than raising it,
    which so carry the fields of `limits`."""
    raises: tuple[type[S3AuthError], ...] = ()
    """The errors its handler answers with beyond those implied by the body, the access,
    the path parameters, the limits, the store and the conflicts (`problem_codes`): the
    OpenAPI document lists the codes of both under their statuses."""
    forbidden: str = ""
    """What its 403 means where that is not a missing permission: the codes it answers."""
    conflicts: tuple[type[ConflictError], ...] = ()
    """The 409s it answers: the OpenAPI document declares their codes."""
    uses_store: bool = True
    cacheable: bool = False
    """Answers with Cache-Control and an ETag, and 304 to an If-None-Match naming it; the
    endpoint adds `Vary: Origin` to both."""
    versioned: bool = False
    """Answers with the ETag of the account it shows (`preconditions`)."""
    description: str = ""

    @property
    def success_status(self) -> int:
        return self.status if self.response is not None else 204

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    @property
    def error_statuses(self) -> list[int]:
        """Those of `problem_codes` but 429, which only a limiter that has the limits
        answers (`limit_fields`)."""
        return [status for status in problem_codes(self) if status != 429]
