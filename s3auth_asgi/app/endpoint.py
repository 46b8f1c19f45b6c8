"""Endpoint: the ASGI app of one path, running its operations as the table declares them.

For each request, in this order:

1. the operation, by method (405 with `Allow` otherwise; Starlette's own 405 raises into
   the host's exception handlers, which a Litestar or Quart host does not have);
2. in browser mode, for a state-changing method, where the request comes from (403
   `cross_origin_request` when another site's page sent it; see `origins`): before
   anything is read, and so before the store sees the request;
3. the caller, from `access` (401 without a valid token, 403 for a non-administrator on
   an admin operation, then 401 `reauthentication_required` for a token authenticated
   longer ago than `max_age` allows, whose events name the caller);
   `bearer_or_refresh_token` reads the body first and needs an access token only when
   the body holds no refresh token;
4. the path parameters, each an id of the right shape (404 otherwise: nothing else can
   exist, and the body is not read);
5. the body (`request`: 400, 413, 415 or 422 when it is bad) and the query (`query`: 422);
6. the caller's user record, unless the operation reads it itself (`reads_account`; 401
   when the account is gone or disabled: see `caller`): after the input, which bad input
   then costs no read;
7. the rate limits the operation declares (`limits`; 429), per address or per caller;
8. the handler, given the outcome as a `Call`; the answer it returns carries the
   RateLimit fields of the checks of 7 and of those it adds (`Call.shown`).

A request waiting for its turn at a password hash listens for its client meanwhile: the
next message after the body is `http.disconnect` when the client goes away (an ASGI server
does not cancel the app's task), and the request then gives its place in the hash queue
back unhashed (`hash_turns`). Its answer, which nobody reads, has no body; the status 499
servers log for a client that left and its event's reason `client_gone` are all it is.

Every answer of a `token_response` operation is marked no-store (RFC 6749 §5.1); the
answers of a `cacheable` one, 304s included, vary by Origin (a shared cache keeps them,
and a CORS header sent to one origin must not reach another). Errors of this package
become problems, and so does a conditional write that another writer's write refused where
the operation expected none (StoreConflict): nothing is wrong but the timing, so it is the
503 that every operation on the store may answer, which a client retries. Anything else
is a bug, logged and answered 500. An operation that declares an `event` emits one auth
event per request, whatever its outcome (`events`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigurationError, S3AuthError, StoreUnavailableError
from ..events import AuthEvent, emit
from ..hash_turns import ClientGoneError, given_up_on
from ..identifiers import is_id
from ..mail import held_mail
from ..storage import StoreConflict
from ..types import Clock, Receive, Scope, Send
from .body import BodyReader
from .caller import Caller, CallerCheck
from .errors import InternalError, MethodNotAllowedError
from .events import decoy_of, request_event, spent_of, with_account
from .limits import AuthRateLimits
from .operations import Access, Call, Handler, Operation
from .origins import OriginCheck
from .problem_codes import PATH_ID_ERRORS
from .query import parse_query
from .responses import problem_response, vary

logger = logging.getLogger("s3auth_asgi.app")

NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
"""For token responses, as RFC 6749 §5.1 asks."""

CHANGED_MEANWHILE = "The store changed while the request was answered; try again"
CLIENT_CLOSED_REQUEST = 499
"""The status of a request whose client went away before its answer, as servers log it."""
CLIENT_GONE = "client_gone"


async def disconnected(receive: Receive) -> None:
    """Returns once the client has gone away: asked once the body has been read, when no
    message but `http.disconnect` is left to come."""
    while (await receive())["type"] != "http.disconnect":
        pass


@dataclass(frozen=True, slots=True)
class RequestChecks:
    """What every endpoint of an app checks requests with."""

    callers: CallerCheck
    body: BodyReader
    origins: OriginCheck
    limits: AuthRateLimits
    clock: Clock
    """The service's: what events are stamped with."""
    after: Callable[[AuthEvent, list[AuthEvent]], Awaitable[None]] | None = None
    """Runs with each request's event, and those its trail keeps (`events`), once the
    answer is sent (the audit trail, hooks)."""


class Endpoint:
    """The operations of one path, by method; `extra_get` serves a GET outside the table
    (the OpenAPI document)."""

    def __init__(
        self,
        operations: Sequence[Operation],
        checks: RequestChecks,
        *,
        extra_get: Handler | None = None,
    ) -> None:
        for op in operations:
            unknown = [name for name in op.path_parameters if name not in PATH_ID_ERRORS]
            if unknown:
                raise ConfigurationError(f"{op.operation_id}: no 404 is declared for {unknown}")
        self.operations: dict[str, Operation] = {op.method: op for op in operations}
        self.callers = checks.callers
        self.body = checks.body
        self.origins = checks.origins
        self.limits = checks.limits
        self.after = checks.after
        self.clock = checks.clock
        self.extra_get = extra_get
        methods = set(self.operations) | ({"GET"} if extra_get is not None else set())
        if "GET" in methods:
            methods.add("HEAD")
        self.allow = ", ".join(sorted(methods))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The mail the request asks for starts once its answer is sent (`mail.delivery`).
        noted: dict[str, str] = {}
        with held_mail():
            event = await self._answer(scope, receive, send, noted)
        if event is not None and self.after is not None:
            told = with_account(event, noted)
            kept = [decoy_of(event, noted) or told]
            limited = spent_of(kept[0], noted)
            await self.after(told, kept if limited is None else [*kept, limited])

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, noted: dict[str, str]
    ) -> AuthEvent | None:
        """Answer the request; the event it emitted, if any."""
        request = Request(scope, receive)
        method = "GET" if request.method == "HEAD" else request.method
        op = self.operations.get(method)
        code: str | None = None
        token_endpoint = op is not None and op.token_endpoint
        try:
            if op is not None:
                response = await self._run(op, request, noted)
            elif method == "GET" and self.extra_get is not None:
                response = await self.extra_get(Call(request, None))
            else:
                raise MethodNotAllowedError(
                    f"Allowed: {self.allow}", headers=[("Allow", self.allow)]
                )
        except S3AuthError as error:
            code = error.code
            response = problem_response(error, token_endpoint=token_endpoint)
        except ClientGoneError:
            code = CLIENT_GONE
            response = Response(status_code=CLIENT_CLOSED_REQUEST)
        except StoreConflict as conflict:
            logger.warning("%s %s lost a write of %s", request.method, request.url.path, conflict)
            unanswered = StoreUnavailableError(CHANGED_MEANWHILE)
            code = unanswered.code
            response = problem_response(unanswered, token_endpoint=token_endpoint)
        except Exception:
            # A bug, not bad input: logged with its traceback, answered without it.
            logger.exception("unhandled error in %s %s", request.method, request.url.path)
            bug = InternalError()
            code = bug.code
            response = problem_response(bug, token_endpoint=token_endpoint)
        event = None
        if op is not None and op.event is not None:
            client = self.limits.client_ip(scope)
            user_agent = request.headers.get("user-agent")
            event = request_event(
                op.event, response.status_code, code, noted, client, user_agent, clock=self.clock
            )
            emit(event)
        if op is not None and op.token_response:
            for name, value in NO_STORE:
                response.headers[name] = value
        await response(scope, receive, send)
        return event

    def _admit(self, caller: Caller, op: Operation, noted: dict[str, str]) -> None:
        """`CallerCheck.admit`; a caller its token refuses (no administrator, or one who
        authenticated too long ago) is the one its event names: who tried is what the
        event is for."""
        try:
            self.callers.admit(caller, op)
        except S3AuthError:
            noted.update(user_id=caller.user_id, session_id=caller.session_id)
            raise

    async def _with_account(self, caller: Caller, access: Access, noted: dict[str, str]) -> Caller:
        """`CallerCheck.with_account`; a caller its own record refuses (an administrator's
        token that outlived the power, an account gone or disabled) is the one its event
        names, as a caller its token refuses is: no administrator acted on anybody."""
        try:
            return await self.callers.with_account(caller, access)
        except S3AuthError:
            noted.pop("actor_id", None)
            noted.update(user_id=caller.user_id, session_id=caller.session_id)
            raise

    async def _run(self, op: Operation, request: Request, noted: dict[str, str]) -> Response:
        if self.origins.applies_to(op.method):
            self.origins.check(request.scope)
        either = op.access == "bearer_or_refresh_token"
        caller = None if either else await self.callers.resolve(request, op.access)
        if caller is not None:
            self._admit(caller, op, noted)
        path_ids = {}
        for name in op.path_parameters:
            value = request.path_params.get(name)
            if not is_id(value):
                raise PATH_ID_ERRORS[name]()
            path_ids[name] = value
        body = None
        if op.request is not None:
            body = await self.body.parse(
                request, op.request, form=op.form, optional=op.body_optional
            )
        if either and not getattr(body, "refresh_token", None):
            caller = await self.callers.resolve(request, "bearer")
        query = parse_query(request, op.query) if op.query is not None else None
        if caller is not None:
            noted.update(user_id=caller.user_id, session_id=caller.session_id)
            if op.access == "admin":
                # The account acted on is the path's, or one the handler notes (a new one).
                account = path_ids.get("user_id", caller.user_id)
                noted.update(actor_id=caller.user_id, user_id=account)
            if op.reads_account:
                caller = await self._with_account(caller, op.access, noted)
        caller_id = caller.user_id if caller is not None else None
        infos = await self.limits.check_operation(request.scope, op.limits, caller_id)
        call = Call(request, caller, body, query, path_ids, noted, infos)
        if op.request is None:
            response = await op.handler(call)
        else:  # read: the client can be listened to, should a hash keep it waiting
            with given_up_on(partial(disconnected, request.receive)):
                response = await op.handler(call)
        for name, value in self.limits.headers(call.shown):
            response.headers.append(name, value)
        if op.cacheable:
            # A shared cache may keep it: said here, its copies are kept by Origin whether
            # or not the host's CORS layer adds Vary to an answer it gives no CORS header.
            vary(response, "Origin")
        return response
