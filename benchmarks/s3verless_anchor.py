"""Run by the s3verless virtual environment (`make bench` makes it), not by this package's:
logins with s3verless 0.1.1 itself against a moto S3 server, as its FastAPI login route does
them (`authenticate_user`, then `create_access_token`).

    python benchmarks/s3verless_anchor.py USERS ROUNDS

Prints one JSON object: store requests of the last login and wall ms of each.
"""

import asyncio
import contextlib
import io
import json
import socket
import sys
import time
import uuid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(endpoint: str, users: int, rounds: int) -> dict[str, object]:
    from aiobotocore.session import get_session
    from s3verless.auth.models import S3User
    from s3verless.auth.service import S3AuthService
    from s3verless.core.registry import set_base_s3_path

    with contextlib.redirect_stdout(io.StringIO()):  # it announces the path on stdout
        set_base_s3_path("s3verless-data/")
    bucket = f"anchor-{uuid.uuid4().hex[:8]}"
    auth = S3AuthService(secret_key="anchor-secret-key-long-enough-0123456789", bucket_name=bucket)
    hashed = auth.get_password_hash("SecurePass123!")
    requests = 0

    def count(**_: object) -> None:
        nonlocal requests
        requests += 1

    session = get_session()
    async with session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        await client.create_bucket(Bucket=bucket)
        for i in range(users):
            # Written directly: its create_user lists every user first, which would make
            # filling a thousand users quadratic and measure nothing of a login.
            user = S3User(
                username=f"user-{i}", email=f"user-{i}@example.com", hashed_password=hashed
            )
            await client.put_object(
                Bucket=bucket, Key=S3User.get_s3_key(user.id), Body=user.model_dump_json().encode()
            )
        client.meta.events.register("before-send.s3", count)
        times = []
        for _ in range(rounds):
            requests = 0
            start = time.perf_counter()
            user = await auth.authenticate_user(client, f"user-{users - 1}", "SecurePass123!")
            assert user is not None
            auth.create_access_token({"sub": user.username})
            times.append((time.perf_counter() - start) * 1000)
    return {"requests": requests, "ms": times}


def main() -> None:
    from moto.server import ThreadedMotoServer

    users, rounds = int(sys.argv[1]), int(sys.argv[2])
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        result = asyncio.run(measure(f"http://127.0.0.1:{port}", users, rounds))
    finally:
        server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
