"""Writes `store_0_1.json`: a store as s3auth_asgi 0.1 left it, made by 0.1's own code.

Run it with a checkout of 0.1 (commit d59e247) first on the path, from that checkout:

    PYTHONPATH=. python /path/to/tests/data/make_store_0_1.py > tests/data/store_0_1.json

It drives 0.1's auth app and service on a `file://` store in a temporary directory, on a
clock of its own (`t0` and a few seconds past it), and prints every object it left with the
time it was written, beside the passwords and the tokens it handed out. Nothing here runs
in the test suite: `tests/test_upgrade_from_0_1.py` reads the JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pwdlib.hashers.bcrypt import BcryptHasher

import s3auth_asgi
from s3auth_asgi import ObjectStoreRateLimitStore, RateLimiter, S3AuthService, S3AuthSettings
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.models import User
from s3auth_asgi.storage import keys

SECRET = "pH3x0ZbYk1q9W-7vQm2LrT8sNcJd4FgUeAiO5yVhXw6KnRtBz0MlPaSoEuIfDgHq"
ACCOUNTS = [  # username, email, password, full name, as registered through the app
    ("alice", "alice@example.com", "Alice-pass-123", "Alice Liddell"),
    ("bob", "bob@example.com", "Bob-pass-1234", None),
    ("carol", "Carol.Smith@Example.COM", "Carol-pass-123", None),
    ("Émilie", "emilie@example.org", "Emilie-pass-123", "Émilie Zola"),
    ("frank", "frank@example.com", "Frank-pass-123", None),
]


async def write_store(root: Path, t0: float) -> dict[str, Any]:
    offset = [0.0]
    stages = [(time.time(), 0.0)]  # (wall-clock time, offset) at each step of our clock

    def clock() -> float:
        return t0 + offset[0]

    def step(to: float) -> None:
        offset[0] = to
        stages.append((time.time(), to))

    service = S3AuthService(
        S3AuthSettings(secret_key=SECRET, store_url=f"file://{root}"), clock=clock
    )
    shared = ObjectStoreRateLimitStore(service.store, clock=clock)
    limiter = RateLimiter(
        dict(DEFAULT_AUTH_LIMITS), stores=dict.fromkeys(DEFAULT_AUTH_LIMITS, shared)
    )
    app = create_auth_app(service, limiter=limiter)
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, dict[str, str]] = {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def call(method: str, path: str, status: int, token: str = "", **kw: Any) -> Any:
            headers = kw.pop("headers", {})
            if token:
                headers["authorization"] = f"Bearer {token}"
            answer = await client.request(method, path, headers=headers, **kw)
            assert answer.status_code == status, answer.text
            return answer.json() if answer.content else None

        async def login(name: str, identifier: str, device: str) -> None:
            password = users[name]["password"]
            pair = await call(
                "POST",
                "/login",
                200,
                json={"username": identifier, "password": password},
                headers={"user-agent": device},
            )
            tokens[device] = {k: pair[k] for k in ("access_token", "refresh_token")}

        # An administrator made from code (or `s3auth user create --admin`).
        admin_user = await service.create_user(
            "root", "root@example.com", "Admin-pass-123", is_admin=True, scopes=["reports"]
        )
        users["root"] = {"id": admin_user.id, "password": "Admin-pass-123"}
        step(1)
        for name, email, password, full_name in ACCOUNTS:
            body = {"username": name, "email": email, "password": password, "full_name": full_name}
            users[name] = {"id": (await call("POST", "/register", 201, json=body))["id"]}
            users[name]["password"] = password
        # A user imported from another system with its bcrypt hash, which 0.1 verifies.
        dave = await service.create_user("dave", "dave@example.com", "Dave-pass-1234")
        found = await service.store.get(keys.user(dave.id), User)
        assert found is not None
        found.value.hashed_password = BcryptHasher(rounds=10).hash("Dave-pass-1234")
        await service.store.replace(keys.user(dave.id), found.value, found.etag)
        users["dave"] = {"id": dave.id, "password": "Dave-pass-1234"}
        step(2)
        await login("root", "root", "root")
        await login("alice", "alice", "alice-laptop")
        await login("alice", "alice@example.com", "alice-phone")
        await login("bob", "bob", "bob-before-logout-all")
        await login("carol", "carol", "carol")
        await login("Émilie", "ÉMILIE", "emilie")
        await login("root", "root", "root-jti-revoked")
        step(3)
        for _ in range(2):  # wrong passwords: rate-limit state in the store
            await call(
                "POST", "/login", 401, json={"username": "alice", "password": "Wrong-pass-1"}
            )
        step(10)
        old_laptop = tokens["alice-laptop"]
        tokens["alice-laptop-spent"] = old_laptop
        body = {"refresh_token": old_laptop["refresh_token"]}
        pair = await call("POST", "/refresh", 200, json=body)
        tokens["alice-laptop"] = {k: pair[k] for k in ("access_token", "refresh_token")}
        step(12)
        body = {"refresh_token": tokens["alice-phone"]["refresh_token"]}
        await call("POST", "/logout", 204, json=body)
        step(14)
        await call("POST", "/logout-all", 200, tokens["bob-before-logout-all"]["access_token"])
        step(16)
        await login("bob", "bob", "bob")
        step(18)
        admin = tokens["root"]["access_token"]
        carol, frank = users["carol"]["id"], users["frank"]["id"]
        await call("PATCH", f"/admin/users/{carol}", 200, admin, json={"is_active": False})
        await call("DELETE", f"/admin/users/{frank}", 204, admin)
        step(19)
        emilie = tokens["emilie"]["access_token"]
        await call("PATCH", "/me", 200, emilie, json={"email": "emilie.zola@example.org"})
        step(20)
        claims = service.decode_token(tokens["root-jti-revoked"]["access_token"])
        await service.blacklist.add(claims["jti"], claims["exp"])
    objects = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_file() and not key.startswith(".s3auth/"):
            mtime = path.stat().st_mtime
            began, at = max((stage for stage in stages if stage[0] <= mtime), default=stages[0])
            written = round(t0 + at + max(mtime - began, 0), 3)
            objects[key] = {"written": written, "body": path.read_text("utf-8")}
    access = ("alice-laptop", "alice-phone", "bob-before-logout-all", "bob", "carol")
    refresh = (*access, "alice-laptop-spent", "emilie")
    kept = {
        "access": {name: tokens[name]["access_token"] for name in (*access, "root-jti-revoked")},
        "refresh": {name: tokens[name]["refresh_token"] for name in refresh},
    }
    return {"t0": t0, "secret": SECRET, "users": users, "tokens": kept, "objects": objects}


def main() -> None:
    assert s3auth_asgi.__version__ == "0.1.0", s3auth_asgi.__file__
    with tempfile.TemporaryDirectory() as directory:
        made = asyncio.run(write_store(Path(directory), float(int(time.time()))))
    made["made_by"] = f"tests/data/{os.path.basename(__file__)} with s3auth_asgi 0.1 (d59e247)"
    json.dump(made, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
