"""declare_rate_limits: what RateLimitMiddleware's rules add to a host's operations, in
the host's OpenAPI document.

A request that a rule limits may be refused with a 429 (problem+json, its code listed:
`rate_limited`; `Retry-After` and the RateLimit fields), and, with `send_headers`, every
answer it admits carries the RateLimit fields (`ratelimit.fields`). The middleware matches
request paths, a document lists templated ones (`/items/{id}`): an operation is declared
limited where a rule limits it whatever its parameters are (`rule_coverage`); one that a
rule limits for some values only is left as it is and reported (`PartialMatch`), for the
host to declare or not. The document is a plain dict, as every framework makes one,
changed in place; declaring twice changes nothing the first time did not.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ConfigurationError, RateLimitedError
from ..problems import PROBLEM_CONTENT_TYPE, Problem, with_codes
from .fields import REFUSAL_DESCRIPTION, RETRY_AFTER, field_headers
from .limiter import RateLimiter
from .rule_coverage import coverage
from .rules import RateLimitRule

OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The keys of a path item that are operations (OpenAPI 3.1)."""
SCHEMA_REF = "#/components/schemas/"
PROBLEM_SCHEMA_NAMES = ("Problem", "S3AuthProblem")
"""The names the problem schema is added under, the first free one (or a number added
to the last), unless the document holds the very same schema under any name already."""


@dataclass(frozen=True, slots=True)
class PartialMatch:
    """An operation that `rule` limits for some values of its path parameters only
    (`/items/1` of `/items/{id}`): its 429 and fields are not declared for that rule."""

    path: str
    """As the document writes it."""
    method: str
    """In upper case."""
    rule: RateLimitRule


def declare_rate_limits(
    document: MutableMapping[str, Any],
    rules: Sequence[RateLimitRule],
    limiter: RateLimiter,
    *,
    send_headers: bool = True,
    root_path: str = "",
) -> list[PartialMatch]:
    """Declare in `document` the 429 and the RateLimit fields that RateLimitMiddleware
    with these `rules`, `limiter` and `send_headers` sends on its operations; returns the
    operations a rule limits for some path parameters only, which are not declared.

    The document's paths are matched as the rules see them: both are relative to where
    the app is served (the document's server URL, the request's `root_path`).
    `root_path`: what comes before the document's paths in the paths the middleware
    matches, where it wraps an app that mounts the documented one (`/v1` for a rule
    `/v1/*` and a path `/items`). A status or header the document declares already is
    kept as it is (a problem media type is added to a 429 that lacks one); a response
    given as a `$ref` is left alone.
    """
    _check(rules, limiter, root_path)
    partial: list[PartialMatch] = []
    problem: dict[str, str] | None = None
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method in OPERATION_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            names: list[str] = []
            some: list[RateLimitRule] = []
            for rule in rules:
                covered = coverage(rule, root_path + path, method.upper())
                if covered == "all" and rule.limit not in names:
                    names.append(rule.limit)
                elif covered == "some":
                    some.append(rule)
            # A rule of a limit declared anyway adds nothing the document lacks.
            partial += [PartialMatch(path, method.upper(), r) for r in some if r.limit not in names]
            if names:
                problem = problem or _problem_schema(document)
                _declare(operation, names, limiter.legacy_headers, send_headers, problem)
    return partial


def _check(rules: Sequence[RateLimitRule], limiter: RateLimiter, root_path: str) -> None:
    if not isinstance(limiter, RateLimiter):
        raise ConfigurationError("declare_rate_limits needs the middleware's RateLimiter")
    if isinstance(rules, RateLimitRule):
        raise ConfigurationError("declare_rate_limits takes a list of rules")
    for rule in rules:
        if not isinstance(rule, RateLimitRule):
            raise ConfigurationError(f"not a RateLimitRule: {rule!r}")
        if rule.limit not in limiter.limits:
            raise ConfigurationError(
                f"rule for {rule.path!r} names limit {rule.limit!r}, which the limiter "
                f"does not have (it has {sorted(limiter.limits)})"
            )
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise ConfigurationError(f"root_path {root_path!r} must start and not end with '/'")


def _declare(
    operation: dict[str, Any],
    names: list[str],
    legacy: bool,
    send_headers: bool,
    problem: dict[str, str],
) -> None:
    responses = operation.setdefault("responses", {})
    fields = field_headers(names, legacy)
    refusal = responses.setdefault("429", {"description": REFUSAL_DESCRIPTION})
    if "$ref" not in refusal:
        refused = with_codes(problem, [RateLimitedError.code])
        refusal.setdefault("content", {}).setdefault(PROBLEM_CONTENT_TYPE, {"schema": refused})
        _add_headers(refusal, {**RETRY_AFTER, **fields})
    if send_headers:
        for status, response in responses.items():
            if status != "429" and isinstance(response, dict) and "$ref" not in response:
                _add_headers(response, fields)


def _add_headers(response: dict[str, Any], headers: dict[str, dict[str, Any]]) -> None:
    declared = response.setdefault("headers", {})
    present = {name.lower() for name in declared}
    for name, header in headers.items():
        if name.lower() not in present:
            declared[name] = copy.deepcopy(header)


def _problem_schema(document: MutableMapping[str, Any]) -> dict[str, str]:
    """A reference to the problem schema in `document`, added where it is missing."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    wanted = problem_definition()
    for name, schema in schemas.items():
        if schema == wanted:
            return {"$ref": SCHEMA_REF + name}
    name = next((n for n in PROBLEM_SCHEMA_NAMES if n not in schemas), None)
    number = 2
    while name is None:
        candidate = f"{PROBLEM_SCHEMA_NAMES[-1]}{number}"
        name = None if candidate in schemas else candidate
        number += 1
    schemas[name] = copy.deepcopy(wanted)
    return {"$ref": SCHEMA_REF + name}


@functools.cache
def problem_definition() -> dict[str, Any]:
    """The JSON Schema of a problem answer, as the auth app's document has it."""
    _, definitions = msgspec.json.schema_components([Problem], ref_template=SCHEMA_REF + "{name}")
    definition: dict[str, Any] = definitions[Problem.__name__]
    return definition
