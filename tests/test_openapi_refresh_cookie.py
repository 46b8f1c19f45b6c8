"""In browser mode `/refresh` takes the refresh token from the `s3auth_refresh` cookie:
the auth app's document declares that cookie as an `apiKey` security scheme on the
operations that take it, and the FastAPI and Litestar host documents carry the scheme over
(renamed where the host has another of that name); without browser mode there is none."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from fastapi import FastAPI
from litestar import Litestar
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.host_document import merge_auth_document
from s3auth_asgi.app.litestar import S3AuthPlugin

COOKIE_SCHEME = {"type": "apiKey", "in": "cookie", "name": "s3auth_refresh"}


def auth_document(browser: bool) -> dict[str, Any]:
    service = make_service(refresh_cookie=browser)
    return create_auth_app(service, rate_limit=False).openapi.for_mount("/auth")


def cookie_schemes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schemes = document["components"]["securitySchemes"]
    return {
        name: scheme
        for name, scheme in schemes.items()
        if {k: scheme.get(k) for k in COOKIE_SCHEME} == COOKIE_SCHEME
    }


def taking(document: dict[str, Any], scheme: str) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if any(scheme in requirement for requirement in operation.get("security", ()))
    }


def test_browser_mode_declares_the_refresh_cookie() -> None:
    document = auth_document(browser=True)
    validate(document, cls=OpenAPIV31SpecValidator)
    [name] = cookie_schemes(document)
    assert taking(document, name) == {("post", "/refresh")}
    # Or the token in the body: no scheme at all.
    assert document["paths"]["/refresh"]["post"]["security"] == [{name: []}, {}]


def test_without_browser_mode_there_is_no_cookie_scheme() -> None:
    document = auth_document(browser=False)
    assert cookie_schemes(document) == {}
    assert "security" not in document["paths"]["/refresh"]["post"]


def fastapi_document() -> dict[str, Any]:
    app = FastAPI()
    include_auth(app, make_service(refresh_cookie=True), rate_limit=False)
    return app.openapi()


def litestar_document() -> dict[str, Any]:
    plugin = S3AuthPlugin(make_service(refresh_cookie=True), rate_limit=False)
    schema: dict[str, Any] = Litestar([], plugins=[plugin]).openapi_schema.to_schema()
    return schema


@pytest.mark.parametrize("host", [fastapi_document, litestar_document], ids=["fastapi", "litestar"])
def test_host_documents_carry_the_cookie_scheme_over(host: Any) -> None:
    document = host()
    validate(document, cls=OpenAPIV31SpecValidator)
    [name] = cookie_schemes(document)
    assert taking(document, name) == {("post", "/auth/refresh")}


def test_a_host_scheme_of_the_same_name_is_kept_and_the_cookie_renamed() -> None:
    auth = auth_document(browser=True)
    [name] = cookie_schemes(auth)
    theirs = {"type": "apiKey", "in": "header", "name": "X-Key"}
    host = {
        "openapi": "3.1.0",
        "info": {"title": "host", "version": "1"},
        "paths": {},
        "components": {"securitySchemes": {name: theirs}},
    }
    merged = merge_auth_document(host, auth, prefix="/auth")
    validate(merged, cls=OpenAPIV31SpecValidator)
    assert merged["components"]["securitySchemes"][name] == theirs
    [renamed] = cookie_schemes(merged)
    assert renamed != name
    assert taking(merged, renamed) == {("post", "/auth/refresh")}
    # Merged again (as a host that merges on every request would): nothing new.
    assert merge_auth_document(merged, auth, prefix="/auth") == merged
