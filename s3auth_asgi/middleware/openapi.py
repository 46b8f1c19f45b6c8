"""declare_bearer_refusals: what BearerTokenMiddleware, and BlacklistMiddleware inside it,
answer a host's operations with, in the host's OpenAPI document.

A framework documents its routes, not the middleware in front of them: a route guarded by
the middleware's `protected` patterns lists neither the token it needs nor its refusals.
Declared here, by the middleware's own rules (`paths.PathRules`), on each operation:

- where a token is required: the security requirement (with the scopes the path needs)
  and the refusals, each listing its codes (`refusal_codes`): 400 `invalid_request` (the
  Authorization header sent twice), 401 (none, invalid, expired; revoked, under
  `revocations`; `reauthentication_required` where a pattern that may match asks for a
  recent authentication, `requires(max_age=…)`), 403 `insufficient_scope` where scopes
  are needed, and 503 with what
  reading the verifier's keys, and the revocations, may fail with (`verifier_failures`);
- where a token is optional (verified when sent, anonymous otherwise): the scheme or none,
  `[{scheme: []}, {}]`, the empty requirement being how OpenAPI (3.0 and 3.1) makes security
  optional, and the refusals a token sent there may get: those above but a missing token
  and the scopes. Where the operation, or the document, says what security it takes, that
  stands;
- where credentials are not looked at (`exclude`): nothing.

Given the host's `endpoints` (`endpoint_requirements`), an operation whose endpoint
`requires` decorates needs the token, and the scopes the decorators name, wherever the
middleware verifies one; where they ask for a recent authentication (`max_age`), its 401
lists `reauthentication_required` and describes RFC 9470's challenge.

The requirement is added to each of the operation's alternatives (the document's, where it
names none of its own): the token is needed whatever else the host asks for. Its scheme is
the auth app's, where the document holds it (`SECURITY_SCHEME`, which a framework's merge
adds, its flow then declaring the scopes), else any HTTP bearer scheme the document has,
else one added (`BEARER_SCHEME`). OpenAPI 3.0 names scopes for OAuth2 schemes only, so an
HTTP scheme's requirement lists none there; its 403 still says they are checked.

The middleware matches request paths, a document lists templated ones (`/items/{id}`): an
operation is declared where every value of its parameters gets the same treatment
(`path_coverage`). One that a pattern takes effect on for some values only is left as it
is, and reported (`PartlyProtected`), for the host to declare or not; so is a pattern that
needs scopes of some values of an operation that needs a token for all. A status the
operation declares keeps what it says, and gains the problem media type, with its codes,
and the headers it lacks; a `$ref` response is left alone; declaring twice changes nothing
the first time did not (`host_openapi`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..host_openapi import check_root_path, operations, place_refusal, problem_schema
from ..openapi_30 import is_openapi_3_0
from ..openapi_problems import asking_recent, bearer_request_refusal, error_response
from ..path_coverage import PARAMETER, coverage
from ..path_patterns import PathSet
from ..paths import PathAccess, PathRules, listed
from ..problems import with_codes
from ..refusal_codes import (
    KEYS,
    MISSING_TOKEN,
    RECENT,
    REVOKED,
    SCOPES,
    SENT_TOKEN,
    STORE,
    Raised,
    by_status,
)
from ..step_up import ReauthenticationRequiredError
from ..types import Receive, Scope, Send
from ..verifier import AccessTokenVerifier, verifier_identity
from .bearer import BearerTokenMiddleware
from .endpoint_requirements import Endpoint, needed_by_operation

SECURITY_SCHEME = "s3auth"
"""The name of the auth app's password-flow scheme in a host's document
(`app.host_document`)."""
SCOPE_DESCRIPTION = (
    "Granted to an account by an administrator (its `scopes`); asking for it at login "
    "changes nothing"
)
"""What a scope the auth app does not describe is, in a flow's list of scopes."""
BEARER_SCHEME = "bearer"
"""The name of the scheme added where the document has none that carries the token (or
the first free one of `s3auth_bearer`, numbered)."""
BEARER_SCHEME_OBJECT = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The access token, sent as `Authorization: Bearer …`.",
}


@dataclass(frozen=True, slots=True)
class PartlyProtected:
    """An operation that `pattern`, protected or excluded, takes effect on for some values
    of its path parameters only (`/items/{id}` of `/items/1`): nothing is declared for it,
    or, where every value needs a token, not the scopes of `pattern`."""

    path: str
    """As the document writes it."""
    method: str
    """In upper case."""
    pattern: str


def declare_bearer_refusals(
    document: MutableMapping[str, Any],
    middleware: BearerTokenMiddleware | Mapping[str, Any],
    *,
    revocations: bool = False,
    root_path: str = "",
    endpoints: Iterable[Endpoint] = (),
) -> list[PartlyProtected]:
    """Declare in `document` the security and the refusals of `middleware` (a
    BearerTokenMiddleware, or the keyword arguments it is built with) on its operations;
    `revocations`: BlacklistMiddleware runs inside it. Returns the operations a pattern
    takes effect on for some path parameters only, which are not declared.

    The document's paths are matched as the middleware sees them: both are relative to
    where the app is served. `root_path`: what comes before the document's paths in the
    paths the middleware matches, where it wraps an app that mounts the documented one
    (`/v1` for a pattern `/v1/*` and a path `/items`). `endpoints`: the host's operations
    and their endpoints (Starlette's `SchemaGenerator.get_endpoints(routes)`), whose
    `requires` decorators are declared too."""
    bearer = _middleware(middleware)
    check_root_path(root_path)
    unavailable = verifier_failures(bearer.verifier) + (STORE if revocations else ())
    sent = (*SENT_TOKEN, *(REVOKED if revocations else ()), *unavailable)
    needed = needed_by_operation(endpoints)
    partial: list[PartlyProtected] = []
    problem: dict[str, str] | None = None
    scheme: _Scheme | None = None
    for path, method, operation in operations(document):
        access, scopes, some = _access(bearer.rules, root_path + path, method.upper())
        partial += [PartlyProtected(path, method.upper(), pattern) for pattern in some]
        if access is None or access is PathAccess.SKIP:
            continue
        problem = problem or problem_schema(document)
        scheme = scheme or _Scheme(document)
        max_age = None
        endpoint = needed.get((path, method))
        if endpoint is not None:  # the endpoint refuses what the middleware lets through
            access, max_age = PathAccess.REQUIRED, endpoint.max_age
            scopes = tuple(dict.fromkeys((*scopes, *endpoint.scopes)))
        if access is PathAccess.REQUIRED:
            scheme.require(document, operation, scopes)
            raised = (sent[0], *MISSING_TOKEN, *sent[1:], *(SCOPES if scopes else ()))
            recent = max_age is not None or _asks_recent(bearer.rules, root_path + path)
            raised += RECENT if recent else ()
        else:
            scheme.offer(document, operation)
            raised = sent
        _refusals(operation, raised, problem, access, revocations, max_age)
    return partial


RECENT_ENOUGH = (
    "authenticated longer ago than the path allows (code `reauthentication_required`, "
    'with `error="insufficient_user_authentication"` and `max_age`, RFC 9470): '
    "authenticate again (`POST /reauthenticate`) and retry with the token it answers"
)


def _asks_recent(rules: PathRules, path: str) -> bool:
    """Whether a pattern asking for a recent authentication matches some request to
    `path`: declaring the refusal where only some values get it is the safe side."""
    return any(
        coverage(pattern, path, PathSet((pattern,), "protected").matches) != "none"
        for pattern in rules.max_age_by_pattern
    )


def verifier_failures(verifier: AccessTokenVerifier) -> Raised:
    """What verifying a token with `verifier` may fail with, as a 503: nothing, with keys
    fixed while it runs (a secret, the environment, a KeySet given in code); no keys to
    verify with, for a JwksVerifier whose JWKS cannot be read; that, and what reading the
    store fails with, for keys kept in the store (their first read may make them, and so
    check the store's conditional writes). A verifier of another kind may read keys from
    anywhere: all of these."""
    # Imported here: the service's codec loads the storage it may keep its keys in.
    from ..keys.remote import JwksVerifier
    from ..tokens import TokenCodec

    own = verifier_identity(verifier)
    if isinstance(own, JwksVerifier):
        return KEYS
    if isinstance(own, TokenCodec) and (own.ring is None or own.ring.source != "store"):
        return ()
    return (*KEYS, *STORE)


def _middleware(given: object) -> BearerTokenMiddleware:
    if isinstance(given, BearerTokenMiddleware):
        return given
    if not isinstance(given, Mapping):
        raise ConfigurationError(
            "declare_bearer_refusals takes a BearerTokenMiddleware or its keyword arguments"
        )
    try:
        return BearerTokenMiddleware(_unused, **given)
    except TypeError as error:
        raise ConfigurationError(f"not BearerTokenMiddleware's arguments: {error}") from None


async def _unused(scope: Scope, receive: Receive, send: Send) -> None:
    """The app of a middleware built to read its rules, which serves nothing."""
    raise RuntimeError("a middleware built for its rules serves no request")


def _access(
    rules: PathRules, path: str, method: str
) -> tuple[PathAccess | None, tuple[str, ...], list[str]]:
    """What `rules` decide for every request of the operation `method` at `path` (None
    where that differs by the values of its parameters), the scopes needed, and the
    patterns that take effect on some values only."""
    if len(PARAMETER.split(path)) == 1:
        access, scopes = rules.decide({"type": "http", "method": method, "path": path})
        return access, scopes, []
    some: list[str] = []
    for pattern in rules.exclude.patterns:
        matches = PathSet(
            (pattern,), "exclude", exclusion=True, protected=rules.scopes_by_pattern
        ).matches
        covered = coverage(pattern, path, matches)
        if covered == "all":
            return PathAccess.SKIP, (), []
        if covered == "some":
            some.append(pattern)
    needed: dict[str, None] = {}
    required = False
    partly: list[tuple[str, tuple[str, ...]]] = []
    if rules.methods is None or listed(method, rules.methods):
        for pattern, scopes in rules.scopes_by_pattern.items():
            covered = coverage(pattern, path, PathSet((pattern,), "protected").matches)
            if covered == "all":
                required = True
                needed.update(dict.fromkeys(scopes))
            elif covered == "some":
                partly.append((pattern, scopes))
    if some or (partly and not required):
        return None, (), some + [pattern for pattern, _ in partly]
    if not required:
        return PathAccess.OPTIONAL, (), []
    # A pattern of some values that asks for no scope beyond these adds nothing.
    more = [pattern for pattern, scopes in partly if not set(scopes) <= needed.keys()]
    return PathAccess.REQUIRED, tuple(needed), more


class _Scheme:
    """The scheme that carries the token in a document: found, or added (see the module)."""

    def __init__(self, document: MutableMapping[str, Any]) -> None:
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        own = schemes.get(SECURITY_SCHEME)
        self.flows: list[dict[str, Any]] = []
        if isinstance(own, dict) and own.get("type") == "oauth2":
            self.name, self.names_scopes = SECURITY_SCHEME, True
            flows = own.get("flows", {})
            self.flows = [f for f in flows.values() if isinstance(f.get("scopes"), dict)]
            return
        # OpenAPI 3.0 says a requirement of another kind lists no scopes; 3.1 lets it.
        self.names_scopes = not is_openapi_3_0(document)
        for name, scheme in schemes.items():
            bearer = isinstance(scheme, dict) and scheme.get("type") == "http"
            if bearer and str(scheme.get("scheme", "")).lower() == "bearer":
                self.name = name
                return
        name, number = BEARER_SCHEME, 1
        while name in schemes:
            number += 1
            name = "s3auth_bearer" + ("" if number == 2 else str(number - 1))
        schemes[name] = copy.deepcopy(BEARER_SCHEME_OBJECT)
        self.name = name

    def require(
        self, document: Mapping[str, Any], operation: dict[str, Any], scopes: tuple[str, ...]
    ) -> None:
        """Add the token, with `scopes`, to each alternative of `operation`'s security."""
        listed_scopes = list(scopes) if self.names_scopes else []
        for flow in self.flows:
            for scope in scopes:
                flow["scopes"].setdefault(scope, SCOPE_DESCRIPTION)
        given = operation.get("security")
        alternatives = given if given is not None else document.get("security")
        required: list[dict[str, list[str]]] = []
        for alternative in alternatives or [{}]:
            both = dict(alternative)
            both[self.name] = list(dict.fromkeys([*alternative.get(self.name, ()), *listed_scopes]))
            if both not in required:
                required.append(both)
        operation["security"] = required

    def offer(self, document: Mapping[str, Any], operation: dict[str, Any]) -> None:
        """The token or none, where neither the operation nor the document says."""
        if "security" not in operation and "security" not in document:
            operation["security"] = [{self.name: []}, {}]


def _refusals(
    operation: dict[str, Any],
    raised: Raised,
    problem: dict[str, str],
    access: PathAccess,
    revocations: bool,
    max_age: int | None,
) -> None:
    responses = operation.setdefault("responses", {})
    refused = "invalid, expired or revoked" if revocations else "invalid or expired"
    descriptions = {
        401: f"The bearer token is missing, {refused}"
        if access is PathAccess.REQUIRED
        else f"The bearer token sent (it may be left out) is {refused}",
        403: "The bearer token lacks a scope the path requires",
    }
    for status, codes in by_status(raised).items():
        schema = with_codes(problem, codes)
        if status == 400:
            made = bearer_request_refusal(schema)
        else:
            words = descriptions.get(status) or _unavailable(codes)
            if ReauthenticationRequiredError.code in codes and max_age is None:
                words += f"; or {RECENT_ENOUGH}"  # the path's rule; an endpoint's says its own
            made = error_response(status, schema, words)
            if status == 401 and max_age is not None:
                asking_recent(made, max_age)
        place_refusal(responses, status, schema, made)


def _unavailable(codes: tuple[str, ...]) -> str:
    """What a 503 of these codes says: the keys, the store, or either."""
    keys = KEYS[0].code in codes
    store = any(error.code in codes for error in STORE)
    what = " or ".join(
        [
            *(["the keys to verify the token with"] if keys else []),
            *(["the object store"] if store else []),
        ]
    )
    return f"{what[0].upper()}{what[1:]} cannot be read now; retry after Retry-After seconds"
