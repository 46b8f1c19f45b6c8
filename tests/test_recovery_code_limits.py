"""Asking for new recovery codes costs ten password hashes: it is limited per account, on
every instance and from every address, and a refusal hashes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, mounted, register
from test_app_totp import first_step, login_with, turn_on

from s3auth_asgi.passwords import PasswordHasher
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PER_ACCOUNT = 3
"""`recovery_codes_account`'s default burst."""


class CountingHasher(PasswordHasher):
    """Counts the hashes made and verified, each a run of argon2id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hashed = 0
        self.verified = 0

    async def hash(self, password: str) -> str:
        self.hashed += 1
        return await super().hash(password)

    async def verify(
        self, password: str, hashed: str | None, *, device_owner: str | None = None
    ) -> tuple[bool, str | None]:
        self.verified += 1
        return await super().verify(password, hashed, device_owner=device_owner)


async def test_new_recovery_codes_are_limited_per_account_and_a_refusal_hashes_nothing() -> None:
    clock = Clock()
    shared = ObjectStore.from_url("memory://")
    services = [
        make_clocked_service(clock=clock, store=shared, rate_limit_store="store") for _ in range(2)
    ]
    apps = [mounted(service, rate_limit=True) for service in services]
    async with client_for(apps[0]) as client:
        await register(client, "alice")
        await register(client, "bob")
        tokens = {}
        for name in ("alice", "bob"):
            seed = await turn_on(client, services[0], name)
            token = await first_step(client, name)
            tokens[name] = await login_with(client, services[0], token, seed, clock)
    hashers = []
    for service in services:
        hasher = service.passwords = CountingHasher.from_settings(service.settings)
        hashers.append(hasher)

    async def ask(i: int, name: str) -> Any:
        # Each from another address, on one instance and then the other.
        async with client_for(apps[i % 2], peer=(f"192.0.2.{i + 1}", 1)) as client:
            return await client.post(
                "/auth/me/totp/recovery-codes",
                json={"current_password": PASSWORD},
                headers=bearer(tokens[name]),
            )

    answers = [await ask(i, "alice") for i in range(PER_ACCOUNT)]
    assert [a.status_code for a in answers] == [200] * PER_ACCOUNT
    assert sum(h.hashed for h in hashers) == 10 * PER_ACCOUNT
    assert sum(h.verified for h in hashers) == PER_ACCOUNT  # the current password
    before = [(h.hashed, h.verified) for h in hashers]
    refused = await ask(PER_ACCOUNT, "alice")
    assert_problem(refused, 429, "rate_limited")
    assert [(h.hashed, h.verified) for h in hashers] == before  # nothing hashed for it
    assert refused.headers["ratelimit-policy"] == '"recovery_codes_account";q=3;w=3600'
    assert int(refused.headers["retry-after"]) >= 1
    # Another account is not held by alice's asking, from the same address.
    assert (await ask(PER_ACCOUNT, "bob")).status_code == 200
    # A while later (GCRA: one more every window / burst), alice may ask once more.
    clock.advance(3600 / PER_ACCOUNT)
    assert (await ask(PER_ACCOUNT + 1, "alice")).status_code == 200
