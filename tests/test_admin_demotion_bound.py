"""How soon a demotion made on one instance holds on another: the auth app's admin
endpoints read the caller's record and refuse the old token at once; a host route's
`requires("admin")` judges the token, which the demotion's revocation refuses once the
instance has synced it (within twice S3AUTH_REVOCATION_SYNC_SECONDS, as any revocation)."""

from __future__ import annotations

import pytest
from support import Clock, make_clocked_service
from test_admin_rule import host
from test_app import PASSWORD, assert_problem, bearer, client_for, login
from test_middleware_blacklist import until_synced

from s3auth_asgi import BlacklistMiddleware

pytestmark = pytest.mark.anyio


async def test_a_demotion_holds_at_once_here_and_by_the_sync_at_host_routes() -> None:
    clock = Clock()
    writer = make_clocked_service(clock=clock)
    reader = make_clocked_service(clock=clock, store=writer.store)
    app = host(reader)  # `requires("admin")` at /console, the auth app at /auth
    app.app = BlacklistMiddleware(app.app, reader)
    async with client_for(app) as client:
        ops = await writer.create_user("ops", "ops@example.com", PASSWORD, is_admin=True)
        token = bearer(await login(client, "ops"))
        assert (await client.get("/console", headers=token)).status_code == 200

        await writer.update_user(ops.id, is_admin=False)  # another instance, or the CLI
        listing = await client.get("/auth/admin/users", headers=token)
        assert_problem(listing, 403, "insufficient_scope")
        # The host route goes by the token until this instance reads the revocation.
        assert (await client.get("/console", headers=token)).status_code == 200
        clock.advance(reader.blacklist.sync_seconds)
        await client.get("/console", headers=token)  # starts the sync
        await until_synced(reader)
        assert_problem(await client.get("/console", headers=token), 401, "token_revoked")
