"""A host's OpenAPI document declares what BearerTokenMiddleware refuses
(`declare_bearer_refusals`): on each operation its rules require a token of, whatever the
path's parameters are, the security requirement with the path's scopes and the 400, 401,
403 and 503 it may answer with, each listing its codes; on those where a token is
optional, the scheme or none, and the refusals of a token sent there; nothing where the
middleware does not look at credentials; and the operations a pattern takes effect on for
some values of their parameters only are reported and left as they are."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import make_service
from declared_answers import listed_codes
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from s3auth_asgi import ConfigurationError
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.middleware import BearerTokenMiddleware
from s3auth_asgi.middleware.openapi import PartlyProtected, declare_bearer_refusals
from s3auth_asgi.path_coverage import PARAMETER
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

PATHS = (
    "/items",
    "/items/{item_id}",
    "/items/{item_id}/photos",
    "/admin/{name}",
    "/mixed/{key}",
    "/health",
    "/open",
)
SETTINGS: dict[str, Any] = {
    "protected": {"/items*": (), "/admin/*": ("admin",), "/mixed/special": ("admin",)},
    "exclude": ("/health", "/items/public/*"),
}
"""`/items/public/...` is excluded below a protected prefix, `/mixed/special` alone of
`/mixed/{key}` needs a token; `/open` is neither: a token is optional there."""
REQUIRED_401 = ["authentication_required", "invalid_token", "token_expired"]
SENT_401 = ["invalid_token", "token_expired"]
"""What a token sent where none is required may be refused with."""
STORE_503 = ["keys_unavailable", "store_unavailable", "corrupt_object", "store_unsafe"]


def document(version: str = "3.1.0") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path in PATHS:
        paths[path] = {"get": {"responses": {"200": {"description": "OK"}}}}
        names = PARAMETER.findall(path)
        if names:
            paths[path]["parameters"] = [
                {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ]
    return {"openapi": version, "info": {"title": "host", "version": "1"}, "paths": paths}


def middleware(**settings: Any) -> BearerTokenMiddleware:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    return BearerTokenMiddleware(app, make_service(), **{**SETTINGS, **settings})


def codes_of(operation: dict[str, Any]) -> dict[str, list[str] | None]:
    return {
        status: listed_codes(answer["content"][PROBLEM_CONTENT_TYPE]["schema"])
        for status, answer in operation["responses"].items()
        if int(status) >= 400 and "content" in answer
    }


def test_each_operation_gets_what_the_middleware_answers_it_with() -> None:
    doc = document()
    partial = declare_bearer_refusals(doc, middleware())
    validate(doc, cls=OpenAPIV31SpecValidator)
    ops = {path: doc["paths"][path]["get"] for path in PATHS}
    required = {"400": ["invalid_request"], "401": REQUIRED_401}
    # The service's keys come from its secret: verifying a token reads nothing.
    assert codes_of(ops["/items"]) == required
    assert codes_of(ops["/items/{item_id}"]) == required
    assert codes_of(ops["/admin/{name}"]) == {**required, "403": ["insufficient_scope"]}
    assert ops["/items"]["security"] == [{"bearer": []}]
    assert ops["/admin/{name}"]["security"] == [{"bearer": ["admin"]}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Optional: the scheme or none (OpenAPI's `{}`), and a token sent may be refused.
    assert ops["/open"]["security"] == [{"bearer": []}, {}]
    assert codes_of(ops["/open"]) == {"400": ["invalid_request"], "401": SENT_401}
    assert ops["/open"]["responses"]["401"]["headers"]["WWW-Authenticate"]
    # Not looked at; and some values only, reported and left as they were.
    for path in ("/health", "/items/{item_id}/photos", "/mixed/{key}"):
        assert ops[path] == {"responses": {"200": {"description": "OK"}}}, path
    assert partial == [
        PartlyProtected("/items/{item_id}/photos", "GET", "/items/public/*"),
        PartlyProtected("/mixed/{key}", "GET", "/mixed/special"),
    ]


def test_declaring_twice_changes_nothing_and_the_hosts_own_answers_stay() -> None:
    doc = document()
    own = {"description": "The host's own"}
    doc["paths"]["/items"]["get"]["responses"]["401"] = own
    # Keyed by a number, as a YAML docstring keys it.
    doc["paths"]["/items"]["get"]["responses"][400] = {"description": "Malformed"}
    doc["paths"]["/admin/{name}"]["get"]["responses"]["403"] = {"$ref": "#/components/x"}
    declare_bearer_refusals(doc, middleware())
    once = copy.deepcopy(doc)
    declare_bearer_refusals(doc, middleware())
    assert doc == once
    responses = doc["paths"]["/items"]["get"]["responses"]
    assert responses["401"] is own and own["description"] == "The host's own"
    assert "400" not in responses
    # What the host says stands; the middleware's refusal of that status is a problem too.
    assert codes_of({"responses": {"401": own}}) == {"401": REQUIRED_401}
    assert "WWW-Authenticate" in own["headers"]
    assert listed_codes(responses[400]["content"][PROBLEM_CONTENT_TYPE]["schema"]) == [
        "invalid_request"
    ]
    assert doc["paths"]["/admin/{name}"]["get"]["responses"]["403"] == {"$ref": "#/components/x"}


def test_the_settings_alone_and_a_root_path_and_methods() -> None:
    doc = document()
    settings = {**SETTINGS, "tokens": make_service(), "protected": {"/v1/items": ()}}
    settings["methods"] = ["POST", "GET"]
    doc["paths"]["/items"]["post"] = {"responses": {"201": {"description": "Made"}}}
    doc["paths"]["/items"]["delete"] = {"responses": {"204": {"description": "Gone"}}}
    assert declare_bearer_refusals(doc, settings, root_path="/v1") == []
    item = doc["paths"]["/items"]
    assert item["get"]["security"] == item["post"]["security"] == [{"bearer": []}]
    # Other methods need no token there.
    assert item["delete"]["security"] == [{"bearer": []}, {}]
    assert codes_of(item["delete"])["401"] == SENT_401
    # A path the rules do not name, seen below /v1.
    assert doc["paths"]["/open"]["get"]["security"] == [{"bearer": []}, {}]


@pytest.mark.parametrize(
    ("tokens", "unavailable"),
    [
        (lambda: make_service(algorithm="ES256"), STORE_503),  # keys kept in the store
        (lambda: JwksVerifier("https://issuer.example/jwks.json"), ["keys_unavailable"]),
    ],
)
def test_a_503_lists_what_reading_the_verifiers_keys_may_fail_with(
    tokens: Any, unavailable: list[str]
) -> None:
    doc = document()
    declare_bearer_refusals(doc, {**SETTINGS, "tokens": tokens()})
    assert codes_of(doc["paths"]["/items"]["get"])["503"] == unavailable
    assert codes_of(doc["paths"]["/open"]["get"])["503"] == unavailable
    assert "Retry-After" in doc["paths"]["/items"]["get"]["responses"]["503"]["headers"]


def test_revocations_add_their_refusal_and_the_stores() -> None:
    doc = document()
    declare_bearer_refusals(doc, middleware(), revocations=True)
    items = codes_of(doc["paths"]["/items"]["get"])
    assert items["401"] == [*REQUIRED_401, "token_revoked"]
    assert items["503"] == ["store_unavailable", "corrupt_object", "store_unsafe"]
    assert codes_of(doc["paths"]["/open"]["get"])["401"] == [*SENT_401, "token_revoked"]


def test_a_scheme_of_the_document_carries_the_requirement() -> None:
    doc = document()
    doc["components"] = {"securitySchemes": {"jwt": {"type": "http", "scheme": "Bearer"}}}
    doc["security"] = [{"key": []}]  # every operation's, unless it says otherwise
    doc["components"]["securitySchemes"]["key"] = {"type": "apiKey", "name": "k", "in": "header"}
    declare_bearer_refusals(doc, middleware())
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert set(doc["components"]["securitySchemes"]) == {"jwt", "key"}
    # Both are needed: the key the host asks for and the middleware's token.
    assert doc["paths"]["/admin/{name}"]["get"]["security"] == [{"key": [], "jwt": ["admin"]}]
    assert "security" not in doc["paths"]["/open"]["get"]  # the host's own stands


def test_the_auth_apps_scheme_declares_the_scopes_its_operations_need() -> None:
    doc = document()
    flow = {"tokenUrl": "/auth/login", "scopes": {"admin": "Administrators"}}
    scheme = {"type": "oauth2", "flows": {"password": flow}}
    doc["components"] = {"securitySchemes": {"s3auth": scheme}}
    declare_bearer_refusals(doc, middleware(protected={"/items*": ("read",)}))
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["paths"]["/items"]["get"]["security"] == [{"s3auth": ["read"]}]
    assert set(flow["scopes"]) == {"admin", "read"}


def test_an_openapi_3_0_document_names_no_scopes_of_an_http_scheme() -> None:
    doc = document("3.0.3")
    declare_bearer_refusals(doc, middleware())
    admin = doc["paths"]["/admin/{name}"]["get"]
    # 3.0 lists scopes for OAuth2 and OpenID Connect alone; the 403 still says it.
    assert admin["security"] == [{"bearer": []}]
    assert codes_of(admin)["403"] == ["insufficient_scope"]


@pytest.mark.parametrize(
    ("given", "root_path"),
    [
        (lambda: object(), ""),
        (lambda: {"protected": ("/x",)}, ""),  # no verifier
        (lambda: {"tokens": "a service"}, ""),
        (lambda: {"tokens": make_service(), "exclude": "/health"}, ""),
        (lambda: {"tokens": make_service()}, "/v1/"),
    ],
)
def test_what_is_not_a_middleware_or_its_settings_is_refused(given: Any, root_path: str) -> None:
    with pytest.raises(ConfigurationError):
        declare_bearer_refusals(document(), given(), root_path=root_path)
