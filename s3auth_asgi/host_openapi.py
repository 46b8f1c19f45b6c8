"""What the middlewares' declarations in a host's OpenAPI document share
(`ratelimit.openapi`, `middleware.openapi`): the operations of a document, the problem
schema placed in it once (in the form of the document's OpenAPI version, 3.0 or 3.1), and
the parts of a response added only where the host's response lacks them. A document is a
plain dict, as every framework makes one, changed in place; a response given as a `$ref`
is the host's to describe and left alone."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import msgspec

from .errors import ConfigurationError
from .openapi_30 import is_openapi_3_0, schema_for_3_0
from .problems import PROBLEM_CONTENT_TYPE, Problem

OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The keys of a path item that are operations (OpenAPI 3.1)."""
SCHEMA_REF = "#/components/schemas/"
PROBLEM_SCHEMA_NAMES = ("Problem", "S3AuthProblem")
"""The names the problem schema is added under, the first free one (or a number added
to the last), unless the document holds the very same schema under any name already."""


def operations(document: MutableMapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each operation of `document`: its path as written, its method in lower case, and
    the operation itself."""
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method in OPERATION_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield path, method, operation


def check_root_path(root_path: str) -> None:
    """What comes before a document's paths in the paths a middleware matches: empty, or
    a path that does not end with `/`."""
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise ConfigurationError(f"root_path {root_path!r} must start and not end with '/'")


def declared(responses: Mapping[Any, Any], status: int) -> Any:
    """The response of `status` in an operation's `responses`, keyed by its text or, as
    YAML makes it (Starlette's docstrings), by a number; None where there is none. Either
    way it is the host's, and one added under the other key would give the document the
    status twice."""
    for key in (str(status), status):
        if key in responses:
            return responses[key]
    return None


def add_problem(
    response: dict[str, Any], schema: dict[str, Any], headers: dict[str, dict[str, Any]]
) -> None:
    """The problem media type, of `schema`, and `headers`, where `response` lacks them;
    a response given as a `$ref` is left alone."""
    if "$ref" not in response:
        response.setdefault("content", {}).setdefault(PROBLEM_CONTENT_TYPE, {"schema": schema})
        add_headers(response, headers)


def place_refusal(
    responses: dict[str, Any], status: int, schema: dict[str, Any], made: dict[str, Any]
) -> None:
    """`made`, a guard's refusal of `status` (a problem of `schema`), in an operation's
    `responses`: as it is where the host declares no answer of that status; where the host
    does (Litestar's 400 of a path parameter), the refusal is a problem all the same, and
    its media type and headers are added to the host's answer."""
    own = declared(responses, status)
    if own is None:
        responses[str(status)] = made
    elif isinstance(own, dict):
        add_problem(own, schema, made.get("headers", {}))


def add_headers(response: dict[str, Any], headers: dict[str, dict[str, Any]]) -> None:
    """`headers` that `response` does not declare yet, by any case of their names."""
    declared = response.setdefault("headers", {})
    present = {name.lower() for name in declared}
    for name, header in headers.items():
        if name.lower() not in present:
            declared[name] = copy.deepcopy(header)


def problem_schema(document: MutableMapping[str, Any]) -> dict[str, str]:
    """A reference to the problem schema in `document`, added where it is missing, in the
    form of the document's OpenAPI version."""
    wanted = problem_definition(is_openapi_3_0(document))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
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
def problem_definition(openapi_3_0: bool = False) -> dict[str, Any]:
    """The JSON Schema of a problem answer, as the auth app's document has it (OpenAPI
    3.1), or in OpenAPI 3.0's form."""
    _, definitions = msgspec.json.schema_components([Problem], ref_template=SCHEMA_REF + "{name}")
    definition: dict[str, Any] = definitions[Problem.__name__]
    return schema_for_3_0(definition) if openapi_3_0 else definition
