"""Writes `s3verless_users.json`: the user objects s3verless 0.1.1 keeps, made by its own code.

Run it with the Python of a virtual environment with s3verless 0.1.1 and moto's server
(`make bench` makes one, `.venv-bench-s3verless`), from the repository's root:

    python tests/data/make_s3verless_users.py > tests/data/s3verless_users.json

It registers users through s3verless's `S3AuthService.create_user` against a moto S3 server,
disables one and makes one an administrator through its model service's `update`, as an
application built on it would, then prints every object left in the bucket, by key, beside
the passwords. Its bcrypt cost is lowered to 4 rounds (its CryptContext, rebuilt with
`bcrypt__rounds=4`: the format is the same, `$2b$04$…`) so that the tests that log these
users in stay fast. Nothing here runs in the test suite: `tests/test_user_import_s3verless.py`
reads the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import sys

BASE_PATH = "s3verless-data/"
BUCKET = "s3verless-app"
ACCOUNTS = [  # username, email, password, full name
    ("john", "john@example.com", "SecurePass123!", "John Doe"),
    ("mary", "Mary.Major@Example.com", "MaryPass1234!", None),
    ("olga", "olga@example.org", "OlgaPass1234!", "Olga Ivanova"),
    ("root", "root@example.com", "RootPass1234!", None),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def write_users(endpoint: str) -> dict[str, object]:
    from aiobotocore.session import get_session
    from passlib.context import CryptContext
    from pydantic import BaseModel

    # It announces its models and its path on stdout, which holds the JSON.
    with contextlib.redirect_stdout(io.StringIO()):
        from s3verless.auth.service import S3AuthService
        from s3verless.core.registry import set_base_s3_path

        set_base_s3_path(BASE_PATH)

    class Standing(BaseModel):
        is_active: bool = True
        is_admin: bool = False

    auth = S3AuthService(secret_key="fixture-secret-key-long-enough-0123456789", bucket_name=BUCKET)
    auth.pwd_context = CryptContext(schemes=["bcrypt"], deprecated="auto", bcrypt__rounds=4)
    session = get_session()
    async with session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        await client.create_bucket(Bucket=BUCKET)
        ids = {}
        for username, email, password, full_name in ACCOUNTS:
            user = await auth.create_user(client, username, email, password, full_name)
            ids[username] = user.id
        await auth.user_service.update(client, ids["olga"], Standing(is_active=False))
        await auth.user_service.update(client, ids["root"], Standing(is_admin=True))
        assert await auth.authenticate_user(client, "john", "SecurePass123!") is not None
        objects = {}
        listed = await client.list_objects_v2(Bucket=BUCKET)
        for item in listed.get("Contents", []):
            got = await client.get_object(Bucket=BUCKET, Key=item["Key"])
            objects[item["Key"]] = (await got["Body"].read()).decode("utf-8")
    passwords = {username: password for username, _, password, _ in ACCOUNTS}
    return {"base_path": BASE_PATH, "passwords": passwords, "objects": objects}


def main() -> None:
    from importlib.metadata import version

    from moto.server import ThreadedMotoServer

    assert version("s3verless") == "0.1.1", version("s3verless")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        made = asyncio.run(write_users(f"http://127.0.0.1:{port}"))
    finally:
        server.stop()
    made["made_by"] = "tests/data/make_s3verless_users.py with s3verless 0.1.1"
    json.dump(made, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
