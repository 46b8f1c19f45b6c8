"""End to end: uvicorn (uvloop, httptools) on 127.0.0.1 under `wrk`, the bare app against our
token middlewares (alone, and behind RateLimitMiddleware) and against Starlette's
AuthenticationMiddleware + joserfc (benchmarks.e2e_app).

    python -m benchmarks.bench_e2e [--smoke]

The seven servers run at once, one process each, on their own ports; the rounds are
interleaved (each round runs wrk against each server in turn, the order rotating), so
load from elsewhere falls on all of them alike. Every request carries the same valid bearer
token. Reported: requests per second and wrk's p50/p99 latency, medians over the rounds,
the req/s ratios round by round, and the server's own CPU time per request (from /proc,
where there is one, with the part spent in the kernel), which the machine's other load
disturbs far less than req/s. Needs
the `wrk` command (Debian's package; `make bench` installs it when it can); without it the
section is skipped, saying so.

Three more servers are controls. The floor puts in front of the same app the least an
authentication middleware does (`e2e_app.LeastAuthentication`: an anonymous caller into the
scope and the current-scope context variable, no header read): its ratio is where any such
middleware starts from on this machine. The work servers add to the floor a loop of a known
cost (`e2e_app.FixedWork`, 0.5 and 2 µs of CPU timed in process): their ratios are what a
middleware of that cost gets here, whatever it does, to read ours against.

Where the machine has two CPUs or more, the servers run on one and wrk on another
(`sched_setaffinity`), as a load test keeps its load generator off the server's CPU: the
servers' figures are then their own work, not how the scheduler happened to share two CPUs
between wrk and them, and the ratio's quartiles lie within a few per cent of its median
instead of 15%.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_middleware import SECRET
from benchmarks.e2e_app import VARIANTS, WORK
from benchmarks.harness import Bench, Stats, at_least, standalone
from s3auth_asgi import S3AuthService, S3AuthSettings

TITLE = "End to end: uvicorn + wrk, bare app against auth middlewares"
TARGET_RATIO = 0.9
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token() -> str:
    service = S3AuthService(S3AuthSettings(secret_key=SECRET, store_url="memory://"))
    return service.tokens.issue_access_token(
        user_id="0" * 32,
        username="bench",
        session_id=f"{int(time.time() * 1000):012x}{0:020x}",
        is_admin=False,
        scopes=["items:read"],
    )[0]


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(the servers' CPUs, wrk's): one CPU for wrk, the rest for the servers; None where
    there is one CPU, or no way to pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """What a child runs before its program, to keep to `cpus`."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def serve(variant: str, port: int, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "S3AUTH_BENCH_VARIANT": variant, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.e2e_app:create"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"]
    command += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(command, env=env, cwd=ROOT, preexec_fn=pinned(cpus))


def wait_until_up(port: int, deadline: float = 20.0) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not start")


def wrk(
    port: int, bearer: str, seconds: int, cpus: set[int] | None = None
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of one wrk run: one thread, 16 connections."""
    out = subprocess.run(
        [
            *("wrk", "-t1", "-c16", f"-d{seconds}s", "--latency"),
            *("-H", f"Authorization: Bearer {bearer}", f"http://127.0.0.1:{port}/api/item"),
        ],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pinned(cpus),
    ).stdout
    if re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"non-2xx answers from port {port}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    return rate, latency(out, "50%"), latency(out, "99%")


def latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU time of a process so far; None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run(bench: Bench) -> None:
    section = bench.section(
        "e2e",
        "End to end: uvicorn (uvloop, httptools) under wrk",
        "seven servers on 127.0.0.1, one process each, on one CPU and wrk on another; ours "
        "is BearerTokenMiddleware + "
        "BlacklistMiddleware (the same work as Starlette's), ours + RateLimitMiddleware adds "
        "the limiter, floor is a middleware that only sets an anonymous user and the "
        "current-scope context variable, work adds to it a loop of 0.5 or 2 µs of CPU (timed "
        "in process); 2-second runs of wrk with 1 thread and 16 connections, "
        "interleaved rounds, the same valid bearer token on every request; req/s and "
        "latency medians over the rounds, ratios round by round; server CPU per request, "
        "and the part of it in the kernel, from /proc",
    )
    if bench.smoke:
        section.skip("not in the smoke run: it starts servers and runs wrk for a minute")
        return
    if shutil.which("wrk") is None:
        section.skip("no `wrk` command (Debian package wrk; `make bench` installs it as root)")
        return
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError as exc:
        section.skip(f"{exc.name} is not installed (the bench extra has it)")
        return
    rounds, seconds = bench.rounds(15), 2
    bearer = token()
    split = cpu_split()
    server_cpus, wrk_cpus = split if split is not None else (None, None)
    if split is None:
        section.note("one CPU (or no way to pin): wrk and the servers share it")
    ports = {variant: free_port() for variant in VARIANTS}
    servers = [serve(variant, port, server_cpus) for variant, port in ports.items()]
    try:
        for port in ports.values():
            wait_until_up(port)
            wrk(port, bearer, 1, wrk_cpus)  # warm up
        figures: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
        cpu: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        pids = dict(zip(VARIANTS, (server.pid for server in servers), strict=True))
        for round_number in range(rounds):
            shift = round_number % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                before = cpu_seconds(pids[variant])
                figures[variant].append(wrk(ports[variant], bearer, seconds, wrk_cpus))
                after = cpu_seconds(pids[variant])
                if before is not None and after is not None:
                    served = figures[variant][-1][0] * seconds
                    cpu[variant].append(
                        (
                            (after[0] - before[0]) / served * 1e6,
                            (after[1] - before[1]) / served * 1e6,
                        )
                    )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
    for variant in VARIANTS:
        section.row(f"{variant}: requests/s", Stats.of(f[0] for f in figures[variant]), "req/s")
        section.row(f"{variant}: p50 latency", Stats.of(f[1] for f in figures[variant]), "ms")
        section.row(f"{variant}: p99 latency", Stats.of(f[2] for f in figures[variant]), "ms")
        if cpu[variant]:
            total = Stats.of(user + system for user, system in cpu[variant])
            section.row(f"{variant}: server CPU per request", total, "µs")
            system = Stats.of(system for _, system in cpu[variant])
            section.row(f"{variant}: of which in the kernel", system, "µs")

    def ratio(name: str, other: str) -> Stats:
        pairs = zip(figures[name], figures[other], strict=True)
        return Stats.of(a[0] / b[0] for a, b in pairs)

    section.row("ours / bare, requests/s", ratio("ours", "bare"), "x", at_least(TARGET_RATIO))
    section.row("ours + RateLimitMiddleware / bare, requests/s", ratio("ours_limited", "bare"), "x")
    section.row("starlette+joserfc / bare, requests/s", ratio("starlette", "bare"), "x")
    section.row("ours / starlette+joserfc, requests/s", ratio("ours", "starlette"), "x")
    section.row("floor / bare, requests/s", ratio("floor", "bare"), "x")
    for work, microseconds in WORK.items():
        section.row(f"work ({microseconds:g} µs) / bare, requests/s", ratio(work, "bare"), "x")


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
