"""The auth app's operations in the host's OpenAPI document.

The auth app documents itself at `{mount}/openapi.json`, but a host framework (FastAPI,
Litestar) serves a document of its own, and its Swagger UI shows only what that one holds.
`merge_auth_document` copies the auth operations into the host's document, under the
mount prefix, with:

- their component schemas; one whose name the host uses for a different schema is renamed
  (`S3Auth` + name) and every `$ref` follows;
- their operation ids prefixed (`auth_login`) and their tags grouped (`auth: tokens`),
  since the host's own operations may use the same words;
- one OAuth2 password-flow security scheme, SECURITY_SCHEME, in place of the auth
  document's two (`bearer` and `oauth2` carry the same token). Its token URL is the mounted
  login endpoint below the host's first server URL, so Swagger UI's Authorize button logs
  in there and sends the token with every operation that lists the scheme: the auth
  app's, and the host's that require it (with their scopes, declared in the flow). A scope
  the auth document describes keeps its description (`admin`: administrators); the
  others are ordinary grants, SCOPE_DESCRIPTION;
- the auth document's other schemes (browser mode's refresh cookie) as they are, under
  their own names, or `s3auth_` + name where the host has a different scheme by that name;
- all of it in the form of the host document's OpenAPI version: a 3.0 one (FastAPI's
  `openapi_version = "3.0.2"`) gets the auth app's 3.1 schemas in 3.0's (`openapi_30`);
- on the host's operations that require the scheme, the problem answers its check gives
  (400 for credentials sent twice, 401, 503; 403 where scopes are required), each listing
  the codes it may carry (`problem_codes.guarded_route_codes`), the 401 with
  `reauthentication_required` and RFC 9470's challenge where the route asks for a recent
  authentication (its `max_age`, which the framework's integration reads from the route's
  dependencies or guards, as the framework reads their scopes); a status the host
  declares itself keeps what it says, and gains the problem media type where it lacks one.

Documents are plain dicts (both frameworks produce one); the host's is not modified.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..host_openapi import place_refusal
from ..middleware.openapi import SCOPE_DESCRIPTION as SCOPE_DESCRIPTION
from ..middleware.openapi import SECURITY_SCHEME as SECURITY_SCHEME
from ..openapi_30 import document_for_3_0, is_openapi_3_0
from ..openapi_problems import asking_recent, bearer_request_refusal, error_response
from ..problems import Problem, with_codes
from .problem_codes import guarded_route_codes

OPERATION_ID_PREFIX = "auth_"
TAG_PREFIX = "auth: "
RENAMED_SCHEMA_PREFIX = "S3Auth"
RENAMED_SCHEME_PREFIX = "s3auth_"

_SCHEMA_REF = "#/components/schemas/"
_PATH_PARAMETER = re.compile(r"\{[^{}]*\}")
_AUTH_OAUTH2 = "oauth2"
_AUTH_BEARER = "bearer"  # an alternative spelling of the same token: not carried over


def password_scheme(mount_url: str, scopes: Mapping[str, str]) -> dict[str, Any]:
    """The security scheme: OAuth2's password flow at the auth app mounted at `mount_url`,
    declaring `scopes` (name: description)."""
    return {
        "type": "oauth2",
        "description": "Log in with a username (or email address) and password; the "
        "access token is then sent as `Authorization: Bearer …`.",
        "flows": {
            "password": {
                "tokenUrl": f"{mount_url}/login",
                "refreshUrl": f"{mount_url}/refresh",
                "scopes": dict(sorted(scopes.items())),
            }
        },
    }


def merge_auth_document(
    host: Mapping[str, Any],
    auth: Mapping[str, Any],
    *,
    prefix: str,
    recent: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, Any]:
    """`host` with the operations of `auth` (the auth app's document) mounted at `prefix`;
    `recent`: the `max_age` each of the host's operations that asks for a recent
    authentication allows, by its path as `host` writes it and its method in lower case.

    At a path the host documents itself (`path_shape`: whatever its parameters are
    named), the auth app's operations are left out: the host's route answers that path,
    every method of it (Litestar's routing, and FastAPI's under `include_auth`), so
    another method gets 405, not the auth app.
    """
    if is_openapi_3_0(host):
        auth = document_for_3_0(auth)
    merged = copy.deepcopy(dict(host))
    components = merged.setdefault("components", {})
    renames = _place_schemas(components.setdefault("schemas", {}), auth["components"]["schemas"])
    paths = merged.setdefault("paths", {})
    _declare_refusals(paths, {"$ref": _SCHEMA_REF + renames[Problem.__name__]}, recent or {})
    schemes = components.setdefault("securitySchemes", {})
    scheme_names = _place_schemes(schemes, auth["components"]["securitySchemes"])
    host_shapes = {path_shape(path) for path in paths}
    for path, item in auth["paths"].items():
        if path_shape(prefix + path) not in host_shapes:
            paths[prefix + path] = {
                method: _host_operation(operation, renames, scheme_names)
                for method, operation in item.items()
            }
    mount_url = _first_server_url(merged) + prefix
    described = auth["components"]["securitySchemes"][_AUTH_OAUTH2]["flows"]["password"]
    scopes = {
        scope: described["scopes"].get(scope, SCOPE_DESCRIPTION)
        for scope in _scopes_required(paths)
    }
    schemes[SECURITY_SCHEME] = password_scheme(mount_url, scopes)
    return merged


def path_shape(path: str) -> str:
    """`path` with its parameters unnamed (`/sessions/{}`), converters included: two
    paths of one shape are one path to a router and to OpenAPI."""
    return _PATH_PARAMETER.sub("{}", path)


def served_below(document: Mapping[str, Any], root_path: str, prefix: str) -> dict[str, Any]:
    """A merged `document` as served below `root_path`, which comes first in its servers
    (as FastAPI adds a request's root path), with the token URLs following it."""
    served = dict(document)
    served["servers"] = [{"url": root_path}, *document.get("servers", ())]
    components = served["components"] = dict(document["components"])
    schemes = components["securitySchemes"] = dict(components["securitySchemes"])
    scopes = schemes[SECURITY_SCHEME]["flows"]["password"]["scopes"]
    schemes[SECURITY_SCHEME] = password_scheme(root_path + prefix, scopes)
    return served


def _first_server_url(document: Mapping[str, Any]) -> str:
    """Where the paths are below, and so the mount: Swagger UI resolves a token URL
    against the server URL, and a relative one would replace its last segment. A
    templated URL (`{scheme}://…`) cannot be used, as token URLs are not templated."""
    servers = document.get("servers") or [{}]
    url = str(servers[0].get("url", ""))
    return "" if "{" in url else url.rstrip("/")


def _host_operation(
    operation: Mapping[str, Any], renames: Mapping[str, str], scheme_names: Mapping[str, str]
) -> dict[str, Any]:
    moved: dict[str, Any] = _with_refs(operation, renames)
    moved["operationId"] = OPERATION_ID_PREFIX + moved["operationId"]
    moved["tags"] = [TAG_PREFIX + tag for tag in moved.get("tags", ())]
    if "security" in moved:
        moved["security"] = _host_security(moved["security"], scheme_names)
    return moved


def _host_security(
    requirements: list[dict[str, list[str]]], scheme_names: Mapping[str, str]
) -> list[dict[str, list[str]]]:
    """The auth document's alternatives, `bearer` or `oauth2` (or none), as the one scheme,
    and its other schemes by the names they got in the host's document."""
    names = {**scheme_names, _AUTH_OAUTH2: SECURITY_SCHEME}
    result: list[dict[str, list[str]]] = []
    for requirement in requirements:
        if _AUTH_BEARER in requirement:
            continue
        renamed = {names.get(name, name): scopes for name, scopes in requirement.items()}
        if renamed not in result:
            result.append(renamed)
    return result


def _place_schemes(host: dict[str, Any], auth: Mapping[str, Any]) -> dict[str, str]:
    """Add the auth document's schemes but its two for the access token to the host's;
    returns the name each got. A host's scheme is never replaced: a different one by the
    same name has ours take another (the same one, as after an earlier merge, is ours)."""
    names: dict[str, str] = {}
    for name, scheme in auth.items():
        if name in (_AUTH_BEARER, _AUTH_OAUTH2):
            continue
        placed, counter = name, 1
        while placed in host and host[placed] != scheme:
            counter += 1
            placed = RENAMED_SCHEME_PREFIX + name + ("" if counter == 2 else str(counter - 1))
        host.setdefault(placed, copy.deepcopy(scheme))
        names[name] = placed
    return names


def _place_schemas(host: dict[str, Any], auth: Mapping[str, Any]) -> dict[str, str]:
    """Add the auth schemas to the host's; returns the name each got.

    A name is kept when the host does not use it, or uses it for the very same schema
    (as after an earlier merge). Renaming one schema changes the refs of those that point
    to it, which may make them differ from the host's in turn: hence the loop.
    """
    renames = {name: name for name in auth}
    changed = True
    while changed:
        changed = False
        for name, schema in auth.items():
            if renames[name] != name or name not in host:
                continue
            if host[name] != _with_refs(schema, renames):
                renames[name] = _free_name(RENAMED_SCHEMA_PREFIX + name, host, renames)
                changed = True
    for name, schema in auth.items():
        host.setdefault(renames[name], _with_refs(schema, renames))
    return renames


def _free_name(wanted: str, host: Mapping[str, Any], renames: Mapping[str, str]) -> str:
    taken = {*host, *renames, *renames.values()}
    name, counter = wanted, 1
    while name in taken:
        counter += 1
        name = f"{wanted}{counter}"
    return name


def _with_refs(value: Any, renames: Mapping[str, str]) -> Any:
    """A deep copy of `value` with its schema `$ref`s pointing at the renamed schemas."""
    if isinstance(value, dict):
        copied = {key: _with_refs(item, renames) for key, item in value.items()}
        ref = copied.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
            name = ref[len(_SCHEMA_REF) :]
            copied["$ref"] = _SCHEMA_REF + renames.get(name, name)
        return copied
    if isinstance(value, list):
        return [_with_refs(item, renames) for item in value]
    return value


def _declare_refusals(
    paths: Mapping[str, Any], problem: dict[str, str], recent: Mapping[tuple[str, str], int]
) -> None:
    """Add to the host's operations that require SECURITY_SCHEME the problem answers its
    check gives (`host_auth`), each with the codes it may carry: 400 (the Authorization
    header sent twice), 401 (`reauthentication_required` too where `recent` has the
    operation), 503 and, where scopes are required, 403; a status the host declares for
    itself keeps what it says, and gains the problem media type and the headers where it
    lacks them."""
    for path, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict):  # a path item's `parameters`, `summary`, ...
                continue
            requirements = [r for r in operation.get("security", ()) if SECURITY_SCHEME in r]
            if requirements:
                scopes = any(requirement[SECURITY_SCHEME] for requirement in requirements)
                _declare(operation, problem, scopes, recent.get((path, method)))


def _declare(
    operation: dict[str, Any], problem: dict[str, str], scopes: bool, max_age: int | None
) -> None:
    responses = operation.setdefault("responses", {})
    for status, codes in guarded_route_codes(scopes, max_age is not None).items():
        schema = with_codes(problem, codes)
        made = bearer_request_refusal(schema) if status == 400 else error_response(status, schema)
        if status == 401 and max_age is not None:
            asking_recent(made, max_age)
        place_refusal(responses, status, schema, made)


def _scopes_required(paths: Mapping[str, Any]) -> set[str]:
    """The scopes operations require of SECURITY_SCHEME, to be declared in its flow."""
    found: set[str] = set()
    for operation in _operations(paths):
        for requirement in operation.get("security", ()):
            found.update(requirement.get(SECURITY_SCHEME, ()))
    return found


def _operations(paths: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict):  # not a path item's `parameters`, `summary`, ...
                yield operation
