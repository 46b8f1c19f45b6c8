"""Login against the real anchor: s3verless 0.1.1, installed from the package index into its
own virtual environment, and this package, each against a moto S3 server on 127.0.0.1.

    python -m benchmarks.bench_s3verless [--smoke]

`make bench` makes the environment (.venv-bench-s3verless); without it this section is
skipped, saying so. Each side fills its own bucket with the users and then logs the last one
in `rounds` times: s3verless with `authenticate_user` + `create_access_token` (what its login
route does), ours with `authenticate_user` + `create_token_pair` (a session is written).
Reported: store requests per login and wall ms per login, medians (over 15 rounds; 5 at
1,000 users, where one s3verless login takes seconds). The two hash passwords
differently (bcrypt there, argon2id here, at each one's defaults), which is part of a login's
time on both sides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import uuid
from pathlib import Path

from benchmarks.bench_login import PASSWORD, SECRET, populate
from benchmarks.harness import Bench, Stats, at_least, at_most, standalone
from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.storage import ObjectStore

TITLE = "Login against s3verless 0.1.1 itself, on moto"
ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv-bench-s3verless" / "bin" / "python"
ANCHOR = Path(__file__).resolve().parent / "s3verless_anchor.py"
TARGET_REQUESTS = 5


def anchor(users: int, rounds: int) -> dict[str, object]:
    out = subprocess.run(
        [str(VENV_PYTHON), str(ANCHOR), str(users), str(rounds)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ours(endpoint: str, users: int, rounds: int) -> tuple[int, list[float]]:
    import boto3

    bucket = f"ours-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/auth"
    service = S3AuthService(
        S3AuthSettings(store_url=url, secret_key=SECRET), store=ObjectStore.from_url(url)
    )
    await populate(service.store, range(users), await service.passwords.hash(PASSWORD))
    times, requests = [], 0
    for _ in range(rounds):
        service.store.reset_counts()
        start = asyncio.get_running_loop().time()
        user = await service.authenticate_user(f"user-{users - 1}", PASSWORD)
        assert user is not None
        await service.create_token_pair(user)
        times.append((asyncio.get_running_loop().time() - start) * 1000)
        requests = sum(service.store.requests.values())
    return requests, times


def run(bench: Bench) -> None:
    section = bench.section(
        "s3verless",
        "Login against s3verless 0.1.1 itself (moto on 127.0.0.1)",
        "store requests per login and wall ms per login (medians over rounds); s3verless "
        "from the package index in its own virtual environment; each side its own bucket "
        "of users on one moto server; passwords hashed at each side's defaults",
    )
    if bench.smoke:
        section.skip("not in the smoke run: it starts moto and a second interpreter")
        return
    if not VENV_PYTHON.exists():
        section.skip(
            "no .venv-bench-s3verless (`make bench` makes it with s3verless 0.1.1; it "
            "could not be installed here)"
        )
        return
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP")}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        AWS_REGION=os.environ.get("AWS_REGION", "us-east-1"),
        AWS_ALLOW_HTTP="true",
    )
    try:
        for users in (10, 100, 1000):
            # A scanning login of a thousand users takes seconds: fewer rounds there.
            rounds = bench.rounds(15) if users < 1000 else 5
            theirs = anchor(users, rounds)
            our_requests, our_times = asyncio.run(ours(endpoint, users, rounds))
            their_ms = Stats.of(theirs["ms"])  # type: ignore[arg-type]
            our_ms = Stats.of(our_times)
            big = users >= 1000
            section.row(f"{users:,} users: s3verless, requests", theirs["requests"], "req")  # type: ignore[arg-type]
            section.row(
                f"{users:,} users: ours, requests",
                our_requests,
                "req",
                at_most(TARGET_REQUESTS) if big else None,
            )
            section.row(f"{users:,} users: s3verless", their_ms, "ms")
            section.row(f"{users:,} users: ours", our_ms, "ms")
            section.row(
                f"{users:,} users: s3verless / ours, time per login",
                their_ms.median / our_ms.median,
                "x",
                at_least(1.0) if big else None,
            )
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
