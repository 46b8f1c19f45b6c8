"""A publicly cacheable answer (the JWKS) says it varies by Origin itself: a shared cache
keeps one copy per origin whatever the host's CORS layer adds. Litestar's adds
`Vary: Origin` only beside `Access-Control-Allow-Origin`, so without it a copy cached for a
request without Origin, or from an unlisted one, would be served to a listed page's fetch,
which could then not read the keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import make_service
from litestar import Litestar
from litestar.config.cors import CORSConfig
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Mount
from test_app import client_for

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.app.responses import vary

pytestmark = pytest.mark.anyio

JWKS = "/auth/.well-known/jwks.json"
LISTED = "https://app.example"
ORIGINS: list[dict[str, str]] = [{}, {"Origin": "https://elsewhere.example"}, {"Origin": LISTED}]


def litestar_host() -> Any:
    return Litestar(
        [],
        plugins=[S3AuthPlugin(make_service(), rate_limit=False)],
        cors_config=CORSConfig(allow_origins=[LISTED]),
    )


def starlette_host() -> Any:
    auth = create_auth_app(make_service(), rate_limit=False)
    cors = Middleware(CORSMiddleware, allow_origins=[LISTED])
    return Starlette(routes=[Mount("/auth", app=auth)], middleware=[cors])


def varied_by(response: httpx.Response) -> list[str]:
    """The field names of the answer's one Vary field, lowercased. Recent releases of
    Starlette's CORS layer append their own Origin to any Vary: `Origin, Origin`, which a
    cache reads as Origin, so the tests behind a layer compare them as a set."""
    fields = response.headers.get_list("vary")
    assert len(fields) == 1, f"{response.status_code} with Vary {fields}"
    return [name.strip().lower() for name in fields[0].split(",")]


@pytest.mark.parametrize("host", [litestar_host, starlette_host])
async def test_behind_a_cors_layer_every_answer_of_the_jwks_varies_by_origin(host: Any) -> None:
    async with client_for(host()) as client:
        for origin in ORIGINS:
            fresh = await client.get(JWKS, headers=origin)
            assert fresh.status_code == 200 and "public" in fresh.headers["cache-control"]
            allowed = fresh.headers.get("access-control-allow-origin")
            assert allowed == (LISTED if origin.get("Origin") == LISTED else None)
            assert set(varied_by(fresh)) == {"origin"}, origin
            etag = {"If-None-Match": fresh.headers["etag"]}
            unchanged = await client.get(JWKS, headers={**origin, **etag})
            assert unchanged.status_code == 304
            assert set(varied_by(unchanged)) == {"origin"}, origin
            head = await client.head(JWKS, headers=origin)
            assert set(varied_by(head)) == {"origin"}, origin


async def test_the_auth_app_alone_names_origin_once() -> None:
    async with client_for(
        Starlette(routes=[Mount("/auth", app=create_auth_app(make_service()))])
    ) as client:
        fresh = await client.get(JWKS)
        unchanged = await client.get(JWKS, headers={"If-None-Match": fresh.headers["etag"]})
    assert varied_by(fresh) == ["origin"]
    assert unchanged.status_code == 304 and varied_by(unchanged) == ["origin"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([], "Origin"),
        (["Accept-Encoding"], "Accept-Encoding, Origin"),
        (["Accept-Encoding", "origin"], "Accept-Encoding, origin"),
        (["Accept-Encoding, Origin"], "Accept-Encoding, Origin"),
        (["*"], "*"),
    ],
)
def test_vary_merges_into_one_field_without_repeating_a_name(before: list[str], after: str) -> None:
    response = Response()
    for value in before:
        response.headers.append("Vary", value)
    vary(response, "Origin")
    assert response.headers.getlist("vary") == [after]
