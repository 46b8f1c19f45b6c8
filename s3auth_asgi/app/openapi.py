"""The OpenAPI 3.1 document of the auth app, generated from its operations and the msgspec
Structs they read and write (msgspec emits JSON Schema 2020-12, the dialect of OpenAPI 3.1).

The paths in the document are relative to the mount point, which is only known per request
(`root_path`), so the server URL and the OAuth2 token URL are filled in per mount point.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..breached_passwords import BreachCheckUnavailableError
from ..errors import HashingBusyError, InvalidRequestError
from ..openapi_problems import (
    BUSY_HASHING_DESCRIPTION,
    CONFLICT_DESCRIPTIONS,
    CROSS_ORIGIN_DESCRIPTION,
    ERROR_DESCRIPTIONS,
    NEW_PASSWORD_DESCRIPTION,
    REAUTHENTICATION_DESCRIPTION,
    bearer_request_refusal,
    error_response,
)
from ..password_policy import PasswordPolicy
from ..privileges import ADMIN_SCOPE
from ..problems import Problem, with_codes
from ..ratelimit import RateLimiter
from ..ratelimit.fields import field_headers
from .body import FORM_MEDIA_TYPE, JSON_MEDIA_TYPE
from .cookies import REFRESH_COOKIE
from .limit_fields import limited_answers
from .operations import Operation
from .origins import OriginCheck
from .problem_codes import problem_codes
from .profile_document import declare_no_profile, declare_profile
from .schemas import NEW_PASSWORD
from .token_errors import TokenProblem

REF_TEMPLATE = "#/components/schemas/{name}"
ADMIN_SCOPE_DESCRIPTION = (
    "Granted to administrators (`is_admin`) and only to them; the admin operations need it"
)
_MAX_CACHED_MOUNTS = 16
REFRESH_COOKIE_SCHEME = "refresh_cookie"
"""The browser mode's refresh cookie, as a security scheme of the operations that take it."""


class OpenAPIDocument:
    """The document, encoded once per mount point."""

    def __init__(
        self,
        operations: Sequence[Operation],
        *,
        title: str,
        version: str,
        description: str,
        origins: OriginCheck | None = None,
        profile: tuple[dict[str, Any], dict[str, Any]] | None = None,
        limiter: RateLimiter | None = None,
        password_policy: PasswordPolicy | None = None,
    ) -> None:
        self._template = build_document(
            operations,
            title=title,
            version=version,
            description=description,
            origins=origins,
            limiter=limiter,
        )
        if profile is not None:
            declare_profile(self._template, *profile)
        else:
            declare_no_profile(self._template)
        if password_policy is not None:
            declare_password_policy(self._template, password_policy)
        self._encoded: dict[str, tuple[bytes, str]] = {}

    def extend(self, change: Callable[[dict[str, Any]], object]) -> None:
        """Have `change` alter the document in place, for every mount point: what an
        application wrapped around the app answers too (the demo's 421)."""
        change(self._template)
        self._encoded.clear()

    def for_mount(self, root_path: str) -> dict[str, Any]:
        document = copy.deepcopy(self._template)
        root = root_path.rstrip("/")
        document["servers"] = [{"url": root or "/"}]
        flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
        flows["password"]["tokenUrl"] = f"{root}/login"
        flows["password"]["refreshUrl"] = f"{root}/refresh"
        return document

    def encoded(self, root_path: str) -> tuple[bytes, str]:
        """The document for `root_path` as JSON, and its ETag: a hash of those bytes, the
        same in every process that serves the same document."""
        found = self._encoded.get(root_path)
        if found is None:
            body = msgspec.json.encode(self.for_mount(root_path))
            found = body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            if len(self._encoded) < _MAX_CACHED_MOUNTS:
                self._encoded[root_path] = found
        return found


def build_document(
    operations: Sequence[Operation],
    *,
    title: str,
    version: str,
    description: str,
    origins: OriginCheck | None = None,
    limiter: RateLimiter | None = None,
) -> dict[str, Any]:
    """`origins`: the app's check of where requests come from; the operations it applies
    to (browser mode, unsafe methods) list its 403. `limiter`: the app's, whose limits
    decide which answers carry the rate-limit fields, and which operations may be
    refused with 429 (`limit_fields`); none without one."""
    types: list[Any] = [Problem]
    if any(op.token_endpoint for op in operations):
        types.append(TokenProblem)
    for op in operations:
        types += [t for t in (op.request, op.response) if t is not None and t not in types]
    _, schemas = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        cross_origin = origins is not None and origins.applies_to(op.method)
        operation = _operation(op, cross_origin, limiter)
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "password": {
                            "tokenUrl": "/login",
                            "refreshUrl": "/refresh",
                            "scopes": {ADMIN_SCOPE: ADMIN_SCOPE_DESCRIPTION},
                        }
                    },
                },
            },
        },
    }
    if any(op.refresh_cookie for op in operations):
        document["components"]["securitySchemes"][REFRESH_COOKIE_SCHEME] = {
            "type": "apiKey",
            "in": "cookie",
            "name": REFRESH_COOKIE,
            "description": "Browser mode: the refresh token, in the HttpOnly cookie that a "
            "login and a refresh set",
        }
    return document


def declare_password_policy(document: dict[str, Any], policy: PasswordPolicy) -> None:
    """Describe each field that sets a password (`schemas.Password`) by the policy the
    service holds it to: its lengths, in code points as `check` counts them, and its rules
    in words. Not in the type itself, which would have the body decoder refuse a short
    password as invalid input rather than as the weak password it is."""
    described = {
        "type": "string",
        "minLength": policy.min_length,
        "maxLength": policy.max_length,
        "description": policy.describe(),
    }
    placeholder = {"type": "string", "description": NEW_PASSWORD}
    for schema in document["components"]["schemas"].values():
        properties = schema.get("properties", {})
        for name, field in properties.items():
            if field == placeholder:
                properties[name] = dict(described)


def _ref(type_: type[Any]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=type_.__name__)}


def _operation(op: Operation, cross_origin: bool, limiter: RateLimiter | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        document["description"] = op.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_parameters
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    parameters += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": description,
            "schema": {"type": "string"},
        }
        for name, description in op.headers
    ]
    if parameters:
        document["parameters"] = parameters
    if op.request is not None:
        content = {JSON_MEDIA_TYPE: {"schema": _ref(op.request)}}
        if op.form:
            content[FORM_MEDIA_TYPE] = {"schema": _ref(op.request)}
        document["requestBody"] = {"required": not op.body_optional, "content": content}
    if op.access != "public":
        needed = [ADMIN_SCOPE] if op.access == "admin" else []
        security: list[dict[str, list[str]]] = [{"bearer": needed}, {"oauth2": needed}]
        if op.access == "bearer_or_refresh_token":
            security.append({})  # a refresh token in the body will do instead
        document["security"] = security
    elif op.refresh_cookie:
        document["security"] = [{REFRESH_COOKIE_SCHEME: []}, {}]  # {}: a token in the body
    document["responses"] = _responses(op, cross_origin, limiter)
    return document


def _query_parameters(query: type[Any]) -> list[dict[str, Any]]:
    (_,), definitions = msgspec.json.schema_components([query], ref_template=REF_TEMPLATE)
    schema = definitions[query.__name__]
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema["properties"].items():
        property_schema = dict(property_schema)
        description = property_schema.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": property_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _responses(op: Operation, cross_origin: bool, limiter: RateLimiter | None) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    limited = limited_answers(op, limiter)
    if op.response is None:
        responses["204"] = {"description": "Done"}
    else:
        success: dict[str, Any] = {
            "description": "Success",
            "content": {JSON_MEDIA_TYPE: {"schema": _ref(op.response)}},
        }
        if op.token_response:
            success["headers"] = {
                "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
                "Set-Cookie": {
                    "description": "Browser mode: the refresh token, HttpOnly. A login also "
                    "sets `s3auth_device`, the device cookie (see the S3Auth-Device header)",
                    "schema": {"type": "string"},
                },
            }
        if op.versioned:
            success["headers"] = {
                "ETag": {
                    "description": "The account's version, for `If-Match`",
                    "schema": {"type": "string"},
                }
            }
        if op.cacheable:
            success["headers"] = {
                "Cache-Control": {"description": "public, max-age", "schema": {"type": "string"}},
                "ETag": {"description": "The document's version", "schema": {"type": "string"}},
                "Vary": {
                    "description": "Origin: a shared cache keeps a copy per origin",
                    "schema": {"type": "string"},
                },
            }
            responses["304"] = {"description": "Not modified: the copy named is current"}
        responses[str(op.status)] = success
    statuses = set(op.error_statuses) | ({429} & limited.keys())
    codes = problem_codes(op, cross_origin)
    for status in sorted(statuses | {403} if cross_origin else statuses):
        description = op.forbidden if status == 403 and op.forbidden else ERROR_DESCRIPTIONS[status]
        if status == 403 and cross_origin:
            description = (
                f"{description}; or {CROSS_ORIGIN_DESCRIPTION}"
                if status in statuses
                else CROSS_ORIGIN_DESCRIPTION[0].upper() + CROSS_ORIGIN_DESCRIPTION[1:]
            )
        if status == 401 and op.max_age is not None:
            description = f"{description}; {REAUTHENTICATION_DESCRIPTION.format(op.max_age)}"
        if status == 503 and HashingBusyError.code in codes[503]:
            unchecked = BreachCheckUnavailableError.code in codes[503]
            description = NEW_PASSWORD_DESCRIPTION if unchecked else BUSY_HASHING_DESCRIPTION
        if status == 409 and op.conflicts:
            description = "A conflict, by `code`: " + "; ".join(
                f"`{code}`, {CONFLICT_DESCRIPTIONS[code]}" for code in codes[409]
            )
        # Every code the answer may carry, so a client can tell each case it must handle.
        schema = with_codes(_ref(TokenProblem if op.token_endpoint else Problem), codes[status])
        if status == 400 and op.access != "public":
            other = set(codes[400]) != {InvalidRequestError.code}  # its input refused too
            responses["400"] = bearer_request_refusal(schema, other)
            continue
        responses[str(status)] = error_response(status, schema, description)
    legacy = limiter is not None and limiter.legacy_headers
    for status, names in limited.items():
        if names:
            responses[str(status)].setdefault("headers", {}).update(field_headers(names, legacy))
    return responses
