"""The auth app's OpenAPI document changes only with a deploy: it is answered `no-cache`
(kept, but asked again each time) with an ETag of its bytes, so a client or cache holding
the current copy gets a 304 without the body; and, as the JWKS, `Vary: Origin`, which a
cache in front of a CORS layer needs."""

from __future__ import annotations

import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.routing import Mount
from test_app import client_for

from s3auth_asgi.app import create_auth_app

pytestmark = pytest.mark.anyio


async def test_the_document_is_revalidated_by_its_etag() -> None:
    auth = create_auth_app(make_service())
    host = Starlette(routes=[Mount("/auth", app=auth), Mount("/v2/auth", app=auth)])
    async with client_for(host) as client:
        fresh = await client.get("/auth/openapi.json")
        assert fresh.status_code == 200 and fresh.json()["openapi"].startswith("3.1")
        assert fresh.headers["cache-control"] == "no-cache"
        assert fresh.headers["vary"] == "Origin"
        etag = fresh.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
        again = await client.get("/auth/openapi.json")
        assert again.headers["etag"] == etag and again.content == fresh.content
        for held in (etag, f"W/{etag}", f'"other", {etag}'):
            unchanged = await client.get("/auth/openapi.json", headers={"If-None-Match": held})
            assert (unchanged.status_code, unchanged.content) == (304, b""), held
            assert unchanged.headers["etag"] == etag
            assert unchanged.headers["cache-control"] == "no-cache"
            assert unchanged.headers["vary"] == "Origin"
        stale = await client.get("/auth/openapi.json", headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200 and stale.content == fresh.content
        head = await client.head("/auth/openapi.json")
        assert head.status_code == 200 and head.headers["etag"] == etag
        # Another mount point is another document (its server URL): another ETag.
        elsewhere = await client.get("/v2/auth/openapi.json", headers={"If-None-Match": etag})
        assert elsewhere.status_code == 200 and elsewhere.headers["etag"] != etag


async def test_a_changed_document_has_another_etag() -> None:
    auth = create_auth_app(make_service())
    async with client_for(Starlette(routes=[Mount("/auth", app=auth)])) as client:
        before = (await client.get("/auth/openapi.json")).headers["etag"]
        auth.openapi.extend(lambda document: document["info"].update(title="changed"))
        after = await client.get("/auth/openapi.json", headers={"If-None-Match": before})
    assert after.status_code == 200 and after.json()["info"]["title"] == "changed"
    assert after.headers["etag"] != before
