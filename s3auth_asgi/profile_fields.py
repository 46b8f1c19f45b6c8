"""The application's own user fields: a `profile` object on each user, declared by the
application as a msgspec Struct or as a JSON-Schema-shaped dict, validated on every write
(registration, `PATCH /me`, `update_user`, `import_user`), capped in size, and shown in the OpenAPI
document in place of the generic object.

    class Profile(msgspec.Struct, forbid_unknown_fields=True):
        company: Annotated[str, msgspec.Meta(max_length=100)]
        newsletter: bool = False

    auth = S3AuthService(settings, profile_fields=Profile)

A dict declares the same with the JSON Schema keywords `type` (string, integer, number,
boolean), `properties`, `required`, `enum`, `minLength`, `maxLength`, `pattern`, `minimum`,
`maximum` and `description`; it is turned into a Struct once, so both are validated alike.
A declaration that can never work is a ConfigurationError naming the field when the service
is made (`check_declaration`): a constraint on a type it does not apply to, an enum msgspec
cannot hold, a default the field refuses, a `required` name that is no property, a
default on a required field.
A `pattern` is checked as the published schema's readers check it, as ECMA-262 does
(`schema_patterns`); a Struct's `Meta(pattern=...)` is msgspec's, Python's `re.search`.
Undeclared fields are refused. A change (`partial`) replaces the fields it names and keeps
the others, and the result is validated as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from .errors import ConfigurationError, S3ValidationError
from .schema_patterns import python_pattern

DEFAULT_MAX_BYTES = 4096
"""The largest profile, as JSON: it is in every read of the user record."""

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
_CONSTRAINTS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minimum": "ge",
    "maximum": "le",
    "description": "description",
}
_KNOWN = {"type", "enum", "default", "pattern", *_CONSTRAINTS}
_ENUMERABLE = (str, int, bool)
"""What an enum may hold: msgspec's Literal holds no float."""
_STRING = ((str,), "type string")
_NUMBER = ((int, float), "type integer or number")
_KEYWORDS: tuple[tuple[str, tuple[tuple[Any, ...], str], type], ...] = (
    ("minLength", _STRING, int),
    ("maxLength", _STRING, int),
    ("minimum", _NUMBER, float),
    ("maximum", _NUMBER, float),
)
"""Each constraint, the types it applies to (not an enum: msgspec takes none on a Literal),
and what its value must be."""


class ProfileFields:
    """The declared fields (none by default: then a profile is refused)."""

    def __init__(
        self,
        declared: type[msgspec.Struct] | Mapping[str, Any] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.patterns: dict[str, tuple[str, re.Pattern[str]]] = {}
        """Each field's declared pattern and the Python one that means the same."""
        if declared is None or isinstance(declared, type):
            self.struct = declared
        elif not isinstance(declared, Mapping):
            raise ConfigurationError("profile_fields must be a msgspec Struct or a JSON Schema")
        else:
            self.struct = struct_from_schema(declared)
            self.patterns = declared_patterns(declared)
        if self.struct is not None and not issubclass(self.struct, msgspec.Struct):
            raise ConfigurationError("profile_fields must be a msgspec Struct or a JSON Schema")
        if self.struct is not None:
            check_declaration(self.struct, self.patterns)
        self.max_bytes = max_bytes

    @property
    def declared(self) -> bool:
        return self.struct is not None

    def clean(self, value: object, *, partial: bool = False) -> dict[str, Any] | None:
        """`value` as stored; S3ValidationError naming what is wrong. `partial`: a change,
        checked whole once merged (`merge`)."""
        if value is None and not partial:
            return self._validated({}) if self.struct is not None else None
        if self.struct is None:
            raise S3ValidationError("profile: this application declares no profile fields")
        if not isinstance(value, dict):
            raise S3ValidationError("profile must be an object")
        return self._validated(value) if not partial else self._sized(dict(value))

    def merge(self, current: dict[str, Any] | None, change: dict[str, Any] | None) -> Any:
        """The stored profile with `change`'s fields replaced, validated whole."""
        if change is None:
            return self.clean(None)
        return self._validated({**(current or {}), **change})

    def _validated(self, value: dict[str, Any]) -> dict[str, Any]:
        assert self.struct is not None
        try:
            parsed = msgspec.convert(value, self.struct)
        except msgspec.ValidationError as exc:
            raise S3ValidationError(f"profile: {exc}") from None
        result: dict[str, Any] = msgspec.to_builtins(parsed)
        for field, (declared, pattern) in self.patterns.items():
            text = result.get(field)
            if isinstance(text, str) and pattern.search(text) is None:
                raise S3ValidationError(
                    f"profile: Expected `str` matching regex {declared!r} - at `$.{field}`"
                )
        return self._sized(result)

    def _sized(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(msgspec.json.encode(value))
        except (TypeError, msgspec.EncodeError):
            raise S3ValidationError("profile must hold JSON values") from None
        if size > self.max_bytes:
            raise S3ValidationError(f"profile is larger than {self.max_bytes} bytes as JSON")
        return value

    def schema(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The profile's JSON Schema and the definitions it refers to (`#/components/schemas/`),
        for the OpenAPI document; None when no fields are declared."""
        if self.struct is None:
            return None
        (reference,), definitions = msgspec.json.schema_components(
            [self.struct], ref_template="#/components/schemas/{name}"
        )
        return reference, definitions


def struct_from_schema(schema: Mapping[str, Any], name: str = "Profile") -> type[msgspec.Struct]:
    """A Struct validating what the JSON-Schema-shaped `schema` (an object of flat fields)
    admits; ConfigurationError for what it cannot express."""
    if schema.get("type", "object") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigurationError("profile_fields: a JSON Schema of type object with properties")
    required = _required(schema)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field, spec in schema["properties"].items():
        try:
            annotated = _field_type(spec)
        except (ConfigurationError, TypeError, ValueError) as error:
            raise ConfigurationError(f"profile_fields.{field}: {error}") from None
        if field in required:
            if "default" in spec:
                # It would never be used: a profile without the field is refused.
                raise ConfigurationError(
                    f"profile_fields.{field}: a default on a required field; drop one of them"
                )
            fields.append((field, annotated))
        else:
            fields.append((field, annotated | None, spec.get("default")))
    struct: type[msgspec.Struct] = msgspec.defstruct(
        name, fields, kw_only=True, forbid_unknown_fields=True
    )
    return struct


def _required(schema: Mapping[str, Any]) -> frozenset[str]:
    """The names `required` lists; ConfigurationError for one that is no property, which,
    taken as it is, would leave the field meant optional (a misspelt name)."""
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ConfigurationError("profile_fields: required must be a list of property names")
    for name in required:
        if name not in schema["properties"]:
            raise ConfigurationError(
                f"profile_fields.{name}: required, but not among the properties "
                f"{sorted(schema['properties'])}"
            )
    return frozenset(required)


def _field_type(spec: Mapping[str, Any]) -> Any:
    """The type of a field declared by `spec`; an error saying which keyword cannot work
    with the others (msgspec would fail with a TypeError where the field is first used)."""
    unknown = set(spec) - _KNOWN
    if unknown:
        raise ConfigurationError(f"unsupported {sorted(unknown)}")
    declared = spec.get("type")
    if declared is not None and not isinstance(declared, str):
        # A field left out of `required` takes null already: ["string", "null"] says no more.
        raise ConfigurationError(f"type must be a single type, one of {list(_TYPES)}")
    if declared is not None and declared not in _TYPES:
        raise ConfigurationError(f"type must be one of {list(_TYPES)}")
    if "enum" in spec:
        enum = spec["enum"]
        if not isinstance(enum, list) or not enum or any(type(v) not in _ENUMERABLE for v in enum):
            raise ConfigurationError(
                "enum must be a non-empty list of strings, integers or booleans"
            )
        if declared is not None and not all(_is_a(v, _TYPES[declared]) for v in enum):
            raise ConfigurationError(f"every value of the enum must be of type {declared}")
        base: Any = Literal.__getitem__(tuple(enum))
    elif declared is not None:
        base = _TYPES[declared]
    else:
        raise ConfigurationError(f"type must be one of {list(_TYPES)}")
    for keyword, (applies, named), values in _KEYWORDS:
        if keyword not in spec:
            continue
        if base not in applies:
            raise ConfigurationError(f"{keyword} applies to {named} only")
        if not _is_a(spec[keyword], values) or (values is int and spec[keyword] < 0):
            raise ConfigurationError(
                f"{keyword} must be {'a non-negative integer' if values is int else 'a number'}"
            )
    meta = {_CONSTRAINTS[k]: v for k, v in spec.items() if k in _CONSTRAINTS}
    if "pattern" in spec:
        if base is not str:
            raise ConfigurationError("a pattern needs type string")
        # Published as declared, checked by `ProfileFields` as it is read there.
        meta["extra_json_schema"] = {"pattern": spec["pattern"]}
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def _is_a(value: object, kind: type) -> bool:
    """Whether JSON's `value` is of `kind` as msgspec reads it: an integer is a number,
    a boolean is no integer."""
    try:
        msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def check_declaration(
    struct: type[msgspec.Struct], patterns: Mapping[str, tuple[str, re.Pattern[str]]]
) -> None:
    """ConfigurationError naming the field, for a declaration that can never work: a type
    msgspec cannot validate (a constraint on a type it does not apply to, an enum msgspec
    cannot hold), or a default that the field itself refuses, which would be stored as it
    is. The one check of both a Struct and a dict, which the service makes when it is made,
    so that neither its `create_user` nor the auth app's document meets a TypeError."""
    for field in msgspec.structs.fields(struct):
        try:
            msgspec.json.Decoder(field.type)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"profile_fields.{field.name}: {error}") from None
        if field.default is not msgspec.NODEFAULT:
            default = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        else:
            continue
        try:
            msgspec.convert(default, field.type)
            if field.name in patterns and isinstance(default, str):
                declared, pattern = patterns[field.name]
                if pattern.search(default) is None:
                    raise ValueError(f"it does not match the pattern {declared!r}")
        except (msgspec.ValidationError, ValueError) as error:
            raise ConfigurationError(
                f"profile_fields.{field.name}: the default {default!r} is not a value of the "
                f"field ({error})"
            ) from None
    try:  # what no field shows alone (a Struct of the application's within one)
        msgspec.json.Decoder(struct)
        msgspec.json.schema_components([struct])
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"profile_fields: {error}") from None


def declared_patterns(schema: Mapping[str, Any]) -> dict[str, tuple[str, re.Pattern[str]]]:
    """Each field's `pattern`, and the Python pattern that finds what ECMA-262 finds with
    it; ConfigurationError for one that has no such translation."""
    patterns = {}
    for field, spec in schema["properties"].items():
        declared = spec.get("pattern")
        if declared is None:
            continue
        if not isinstance(declared, str):
            raise ConfigurationError(f"profile_fields.{field}: a pattern is a string")
        try:
            patterns[field] = (declared, re.compile(python_pattern(declared)))
        except ConfigurationError as error:
            raise ConfigurationError(f"profile_fields.{field}: {error}") from None
    return patterns
