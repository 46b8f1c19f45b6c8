"""Query strings of the pages (the user list, the audit trails): a parameter given twice,
and an integer written any other way than in ASCII decimal digits, are `422
validation_error`s that name the parameter, refused before the store is read; what the
OpenAPI document says of them agrees."""

from __future__ import annotations

import httpx
import pytest
from conftest import make_service
from support import at_most_syncs
from test_app import PASSWORD, assert_problem, bearer, checked_client, login, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app

Headers = dict[str, str]

pytestmark = pytest.mark.anyio

NOT_DIGITS = ["1e3", "+5", "-0", " 5", "5 ", "5.0", "\u0665", "0x10", "1_0", ""]
"""Numbers as some lenient reader takes them (`int()`, `float()`, a lax decoder), which no
integer of the document's `type: integer` is written as."""


async def pages(client: httpx.AsyncClient, service: S3AuthService) -> tuple[list[str], Headers]:
    """The paged paths, and an administrator's credentials to read them."""
    alice = (await register(client, "alice"))["id"]
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    root = bearer(await login(client, "root"))
    return ["/admin/users", "/me/events", f"/admin/users/{alice}/events"], root


async def test_a_query_parameter_twice_is_a_validation_error_naming_it() -> None:
    service = make_service()
    async with checked_client(service, rate_limit=False) as client:
        paths, root = await pages(client, service)
        for page in paths:
            service.store.reset_counts()
            twice = await client.get(f"/auth{page}?limit=1&limit=2", headers=root)
            problem = assert_problem(twice, 422, "validation_error")
            assert problem["title"] == "Invalid input", problem
            assert problem["detail"] == "The query parameter 'limit' is given more than once"
            # Refused before the page's account or objects are read.
            assert at_most_syncs(service.store.requests), (page, service.store.requests)


async def test_an_integer_query_parameter_takes_ascii_decimal_digits_only() -> None:
    service = make_service()
    async with checked_client(service, rate_limit=False) as client:
        paths, root = await pages(client, service)
        for page in paths:
            service.store.reset_counts()
            for value in NOT_DIGITS:
                answer = await client.get(f"/auth{page}", params={"limit": value}, headers=root)
                problem = assert_problem(answer, 422, "validation_error")
                assert problem["detail"] == (
                    "Invalid query parameter: Expected an integer in ASCII decimal digits "
                    "- at `$.limit`"
                ), (page, value)
            # Refused before the page's account or objects are read.
            assert at_most_syncs(service.store.requests), (page, service.store.requests)


async def test_an_integer_may_have_leading_zeros_and_not_too_many_digits() -> None:
    service = make_service()
    async with checked_client(service, rate_limit=False) as client:
        await register(client, "alice")
        await register(client, "bob")
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        root = bearer(await login(client, "root"))
        for value in ("01", "0" * 5000 + "1"):
            page = await client.get("/auth/admin/users", params={"limit": value}, headers=root)
            assert page.status_code == 200, page.text
            assert len(page.json()["users"]) == 1
            assert page.json()["next_cursor"] is not None
        for value in ("1001", "9" * 20, "9" * 5000):
            answer = await client.get("/auth/admin/users", params={"limit": value}, headers=root)
            problem = assert_problem(answer, 422, "validation_error")
            assert problem["detail"].endswith("- at `$.limit`"), problem


def test_the_document_declares_query_faults_as_422_only() -> None:
    document = create_auth_app(make_service(), rate_limit=False).openapi
    assert document is not None
    paths = document.for_mount("/auth")["paths"]
    for path in ("/admin/users", "/me/events", "/admin/users/{user_id}/events"):
        responses = paths[path]["get"]["responses"]
        assert "query" not in responses["400"]["description"], path
        assert "a query parameter given twice" in responses["422"]["description"], path
        (limit,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
        assert limit["schema"]["type"] == "integer"
