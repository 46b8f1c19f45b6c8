"""An argon2 cost below OWASP's least for argon2id is taken (tests run at one to be fast, and
what a host can spare is its operator's call) but warned of, as the app warns of what it
takes and may not be meant: a line when the app is made, and a `[warn]` line of
`s3auth check`. The defaults and the demo are at that least, and warn of nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import DEFAULT_HASHING, FAST_HASHING, SECRET, make_settings
from test_cli import Run, check_warnings

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.cli.check import configuration_warnings
from s3auth_asgi.demo.app import create_demo_app
from s3auth_asgi.demo.config import demo_settings
from s3auth_asgi.settings_checks import OWASP_ARGON2ID, weak_argon2_cost

PAIRS = "m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5, m in KiB, each p=1"
FAST_WARNING = (
    "S3AUTH_ARGON2_MEMORY_KIB=1024 and S3AUTH_ARGON2_TIME_COST=1 are below OWASP's least cost "
    f"for argon2id, every one of its configurations of equal strength ({PAIRS}): the "
    "password hashes of a leaked store are cheaper to guess than it allows; at this time "
    "cost, S3AUTH_ARGON2_MEMORY_KIB=47104 or more meets it"
)


def cost(memory_kib: int, time_cost: int, parallelism: int = 1) -> S3AuthSettings:
    return make_settings(
        argon2_memory_kib=memory_kib, argon2_time_cost=time_cost, argon2_parallelism=parallelism
    )


def test_each_owasp_configuration_is_enough_and_less_memory_than_it_is_not() -> None:
    assert OWASP_ARGON2ID == ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
    assert weak_argon2_cost(make_settings(**FAST_HASHING)) == [FAST_WARNING]
    for memory, time_cost in OWASP_ARGON2ID:
        assert weak_argon2_cost(cost(memory, time_cost)) == []
        assert weak_argon2_cost(cost(memory * 4, time_cost + 10)) == []
        [warning] = weak_argon2_cost(cost(memory - 1, time_cost))
        # What meets it at that time cost is that configuration's memory.
        assert warning.endswith(f"S3AUTH_ARGON2_MEMORY_KIB={memory} or more meets it")
    # Past the last pair's passes, its memory is still the least.
    assert weak_argon2_cost(cost(7168, 1000)) == []
    assert len(weak_argon2_cost(cost(7167, 1000))) == 1
    # Fewer passes are not made up by memory short of the next pair's.
    assert len(weak_argon2_cost(cost(47103, 1))) == len(weak_argon2_cost(cost(19455, 2))) == 1


def test_more_lanes_do_not_make_up_for_less_memory_in_each() -> None:
    """OWASP's configurations are of one lane: spread over more, the same memory lets an
    attacker fill it in a fraction of the time, so each lane is held to a configuration."""
    assert weak_argon2_cost(cost(4 * 19456, 2, parallelism=4)) == []
    assert weak_argon2_cost(cost(65536, 3, parallelism=4)) == []  # pwdlib's recommended()
    [warning] = weak_argon2_cost(cost(19456, 2, parallelism=4))
    assert warning == (
        "S3AUTH_ARGON2_MEMORY_KIB=19456 shared by S3AUTH_ARGON2_PARALLELISM=4 lanes and "
        "S3AUTH_ARGON2_TIME_COST=2 are below OWASP's least cost for argon2id, every one of its "
        f"configurations of equal strength ({PAIRS}): the password hashes of a leaked store "
        "are cheaper to guess than it allows; at this time cost, S3AUTH_ARGON2_MEMORY_KIB=77824 "
        "or more meets it (more lanes do not make up for less memory in each)"
    )


def test_the_app_logs_it_once_when_it_is_made(caplog: pytest.LogCaptureFixture) -> None:
    def made(settings: S3AuthSettings) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
            create_auth_app(S3AuthService(settings))
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert made(make_settings(**FAST_HASHING)) == [FAST_WARNING]
    assert made(make_settings(**DEFAULT_HASHING)) == []


def test_check_shows_it_and_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = {"S3AUTH_ARGON2_MEMORY_KIB": "1024", "S3AUTH_ARGON2_TIME_COST": "1"}
    assert check_warnings(tmp_path, monkeypatch, **fast) == [FAST_WARNING]
    least = {"S3AUTH_ARGON2_TIME_COST": "5", "S3AUTH_ARGON2_MEMORY_KIB": "7168"}
    assert check_warnings(tmp_path, monkeypatch, **least) == []


def test_the_defaults_and_the_demo_warn_of_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    defaults = S3AuthSettings(store_url="memory://", secret_key=SECRET)
    # What tests that count the app's warnings are made with is the default.
    default_cost = (defaults.argon2_memory_kib, defaults.argon2_time_cost)
    assert default_cost == (
        DEFAULT_HASHING["argon2_memory_kib"],
        DEFAULT_HASHING["argon2_time_cost"],
    )
    assert configuration_warnings(defaults) == [] and weak_argon2_cost(defaults) == []
    demo = demo_settings(tmp_path / "demo", {})
    assert (demo.argon2_memory_kib, demo.argon2_time_cost) == (19456, 2)
    assert configuration_warnings(demo) == []
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        create_auth_app(S3AuthService(defaults))
        create_demo_app(S3AuthService(demo))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    for name in ("S3AUTH_ARGON2_MEMORY_KIB", "S3AUTH_ARGON2_TIME_COST"):
        monkeypatch.delenv(name, raising=False)
    run = Run("--demo-dir", str(tmp_path / "demo"), "check")
    assert run.code == 0, run
    assert "[warn]" not in run.out and run.out.splitlines()[-1] == "All checks passed."
