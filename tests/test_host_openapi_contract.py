"""The hosts' documents, the auth operations merged in, true to the answers: schemathesis
generates requests from the document FastAPI serves under `include_auth` and the one
Litestar serves with `S3AuthPlugin` (valid and invalid) and checks that no answer is a 5xx
or strays from the documented statuses, content types and schemas, the host's own
operations on the scheme (their 401 and 403 problems) included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import anyio.from_thread
import pytest
import schemathesis
from conftest import make_service
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from litestar import Litestar, get, post
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from test_app import client_for
from test_app_openapi import Harness

from s3auth_asgi import AuthenticatedUser, S3AuthService
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ANONYMOUS = "/items"
"""The host operation called without a token: its 401 is checked against the document."""


def fastapi_host(service: S3AuthService) -> FastAPI:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    @app.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> dict[str, str]:
        return {"admin": user.username}

    @app.post("/reports", dependencies=[require_scopes("reports")])
    async def reports() -> dict[str, bool]:
        return {"written": True}

    return app


def litestar_host(service: S3AuthService) -> Litestar:
    @get("/items", guards=[requires_scopes()])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    @get("/admin", guards=[requires_scopes("admin")])
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @post("/reports", guards=[requires_scopes("reports")])
    async def reports() -> dict[str, bool]:
        return {"written": True}

    return Litestar([items, admin, reports], plugins=[S3AuthPlugin(service, rate_limit=False)])


FASTAPI_DOCUMENT = fastapi_host(make_service()).openapi()
LITESTAR_DOCUMENT = litestar_host(make_service()).openapi_schema.to_schema()


@pytest.mark.parametrize(
    "document", [FASTAPI_DOCUMENT, LITESTAR_DOCUMENT], ids=["fastapi", "litestar"]
)
def test_the_documents_are_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document, cls=OpenAPIV31SpecValidator)
    refusals = document["paths"]["/reports"]["post"]["responses"]
    assert {"401", "403", "503"} <= set(refusals)


class HostHarness(Harness):
    """The harness of the auth app's own contract test, serving a host instead."""

    def __init__(
        self, portal: anyio.from_thread.BlockingPortal, build: Callable[[S3AuthService], Any]
    ) -> None:
        super().__init__(portal)
        self.client = client_for(build(self.service))

    def check(self, case: Any) -> None:
        token = {} if case.path == ANONYMOUS else {"Authorization": f"Bearer {self.fresh_token()}"}
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=token)
        case.validate_response(self.send(kwargs), checks=CHECKS)


@pytest.fixture(scope="module")
def portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        yield portal


@pytest.fixture(scope="module")
def fastapi_harness(portal: anyio.from_thread.BlockingPortal) -> HostHarness:
    return HostHarness(portal, fastapi_host)


@pytest.fixture(scope="module")
def litestar_harness(portal: anyio.from_thread.BlockingPortal) -> HostHarness:
    return HostHarness(portal, litestar_host)


EXAMPLES = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))


@schemathesis.openapi.from_dict(FASTAPI_DOCUMENT).parametrize()
@EXAMPLES
def test_fastapi_answers_as_its_document_says(case: Any, fastapi_harness: HostHarness) -> None:
    fastapi_harness.check(case)


@schemathesis.openapi.from_dict(LITESTAR_DOCUMENT).parametrize()
@EXAMPLES
def test_litestar_answers_as_its_document_says(case: Any, litestar_harness: HostHarness) -> None:
    litestar_harness.check(case)
