"""The benchmark harness and every bench module still run: `python -m benchmarks --smoke`
at tiny sizes, in seconds. Nothing is judged here (speed is the benchmarks' business, never
a test's); the run must finish, write its JSON and chart, and report every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
pytest.importorskip("limits", reason="the bench extra (limits) is not installed")


def test_every_bench_runs_in_the_smoke_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["smoke"] and not report["errors"]
    sections = {section["key"]: section for section in report["sections"]}
    for key in ("ratelimit", "ratelimit_middleware", "ratelimit_store", "middleware", "login"):
        assert sections[key]["rows"], key
    rows = [row for section in report["sections"] for row in section["rows"]]
    assert all(row["met"] is None for row in rows)  # targets shown, never judged
    assert any(row["target"] for row in rows)
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
