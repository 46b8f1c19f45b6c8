"""A JSON Schema as OpenAPI 3.1 takes it, written as OpenAPI 3.0 does: for what the
declarations add to a host's document that says it is 3.0 (`host_openapi`), and for the
auth app's operations merged into one (`document_for_3_0`), whose validators refuse 3.1's
null type and know neither `const` nor `examples`.

3.0's Schema Object is a subset of JSON Schema with `nullable` in place of the null type;
a `$ref` there replaces the object it is in, so its siblings would be ignored. The
keywords the package's schemas use (msgspec's, and `problems.with_codes`) are mapped;
any other is kept as it is."""

from __future__ import annotations

import copy
import operator
from collections.abc import Mapping
from typing import Any

NULL_3_0 = {"nullable": True, "enum": [None]}
"""3.1's null type (`{"type": "null"}`) as 3.0, which has none, writes it: any type, but
only the value null."""
_SCHEMA_MAPS = ("properties", "patternProperties")
"""Keywords whose value maps names to schemas."""
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMAS = ("items", "additionalProperties", "not")
"""Keywords whose value is one schema (or, for some, a boolean)."""


def is_openapi_3_0(document: Mapping[str, Any]) -> bool:
    """Whether `document` says it is OpenAPI 3.0 (any 3.0.x)."""
    return str(document.get("openapi", "")).startswith("3.0")


def document_for_3_0(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `document` (OpenAPI 3.1) with its Schema Objects in 3.0's form: the
    components' schemas, and those its parameters, request bodies, responses and headers
    hold, in the paths or the components. The rest is copied as it is: a document of the
    package names no other 3.1-only part (webhooks, a license identifier, ...)."""
    made = copy.deepcopy(dict(document))
    components = made.get("components", {})
    schemas = components.get("schemas", {})
    for name, schema in schemas.items():
        schemas[name] = _schema(schema)
    for kind in ("parameters", "headers", "requestBodies", "responses"):
        for holder in components.get(kind, {}).values():
            _holder(holder)
    for item in made.get("paths", {}).values():
        for key, value in item.items():
            if key == "parameters":
                for parameter in value:
                    _holder(parameter)
            elif isinstance(value, dict):  # an operation: not a `summary` or `servers`
                _operation(value)
    return made


def _operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", ()):
        _holder(parameter)
    _holder(operation.get("requestBody", {}))
    for response in operation.get("responses", {}).values():
        _holder(response)


def _holder(holder: dict[str, Any]) -> None:
    """A parameter, header, request body or response, changed in place: its schema, its
    media types' and its headers'. One given as a `$ref` has none of them."""
    if isinstance(holder.get("schema"), dict):
        holder["schema"] = schema_for_3_0(holder["schema"])
    for media in holder.get("content", {}).values():
        _holder(media)
    for header in holder.get("headers", {}).values():
        _holder(header)


def schema_for_3_0(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as OpenAPI 3.0 writes it, a new dict: a null type, listed in `type` or as
    an alternative of `anyOf`/`oneOf`, becomes `nullable` on what it was an alternative
    to (and a value of its `enum`, which 3.0 holds to), and one alone NULL_3_0; `const`
    becomes a one-value `enum`, `examples` its first as `example`, a numeric
    `exclusiveMinimum`/`exclusiveMaximum` a bound with 3.0's boolean, an empty `required`
    none, and a `$ref` with siblings an `allOf` of it. Values (`default`, ...) are kept as
    they are."""
    made: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            made[key] = {name: _schema(each) for name, each in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            made[key] = [_schema(each) for each in value]
        elif key in _SCHEMAS:
            made[key] = _schema(value)
        else:
            made[key] = copy.deepcopy(value)
    _types(made)
    for key in ("anyOf", "oneOf"):
        _alternatives(made, key)
    _values(made)
    _null_in_enum(made)
    if made.get("required") == []:
        del made["required"]  # 3.0 takes a list of at least one name
    if "$ref" in made and len(made) > 1:
        made["allOf"] = [{"$ref": made.pop("$ref")}, *made.get("allOf", [])]
    return made


def _schema(value: Any) -> Any:
    return schema_for_3_0(value) if isinstance(value, dict) else value


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    made = {**schema, "nullable": True}
    _null_in_enum(made)
    return made


def _null_in_enum(made: dict[str, Any]) -> None:
    """3.0's `nullable` admits null only where an `enum` lists it too."""
    values = made.get("enum")
    if made.get("nullable") is True and isinstance(values, list) and None not in values:
        made["enum"] = [*values, None]


def _types(made: dict[str, Any]) -> None:
    """A list of types: 3.0 takes one; and no null type."""
    types = made.get("type")
    if types == "null":
        del made["type"]
        made["nullable"] = True
        made.setdefault("enum", [None])
        return
    if not isinstance(types, list):
        return
    kinds = [kind for kind in types if kind != "null"]
    if len(kinds) < len(types):
        made["nullable"] = True
    if len(kinds) == 1:
        made["type"] = kinds[0]
        return
    del made["type"]
    if kinds:
        each = [
            {"type": kind, **({"nullable": True} if made.get("nullable") else {})} for kind in kinds
        ]
        made.setdefault("allOf", []).append({"anyOf": each})


def _alternatives(made: dict[str, Any], key: str) -> None:
    """The null alternative of `key`: `nullable` on the others, merged into `made` where
    one is left and its keywords are not `made`'s already."""
    given = made.get(key)
    # The alternatives are in 3.0's form already.
    if not isinstance(given, list) or NULL_3_0 not in given:
        return
    rest = [_nullable(each) for each in given if each != NULL_3_0]
    del made[key]
    if len(rest) == 1 and not rest[0].keys() & made.keys():
        made.update(rest[0])
    elif rest:
        made[key] = rest
    else:
        made["nullable"] = True


def _values(made: dict[str, Any]) -> None:
    if "const" in made:
        made["enum"] = [made.pop("const")]
    if "examples" in made:
        examples = made.pop("examples")
        if isinstance(examples, list) and examples:
            made.setdefault("example", examples[0])
    for exclusive, bound, stricter in (
        ("exclusiveMinimum", "minimum", operator.gt),
        ("exclusiveMaximum", "maximum", operator.lt),
    ):
        value = made.get(exclusive)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        del made[exclusive]
        if bound in made and stricter(made[bound], value):
            continue  # the inclusive bound given already admits less
        made[bound], made[exclusive] = value, True
