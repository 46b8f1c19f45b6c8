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


def test_a_partial_run_replaces_its_sections_and_keeps_the_full_runs_description(
    tmp_path: Path,
) -> None:
    from benchmarks.__main__ import merged
    from benchmarks.doc_table import render

    def section(key: str, median: float) -> dict[str, object]:
        row = {"name": "figure", "median": median, "p25": median, "p75": median, "n": 1}
        row |= {"unit": "µs", "target": "", "met": None}
        return {
            "key": key,
            "title": key,
            "method": "m",
            "skipped": None,
            "rows": [row],
            "notes": [],
        }

    def machine(date: str, commit: str) -> dict[str, object]:
        return {
            "date": date,
            "commit": commit,
            "python": "3.11",
            "cpus": 2,
            "cpu": "x",
            "platform": "linux",
            "seconds": 800 if commit == "full" else 3,
        }

    full = {"machine": machine("day 1", "full"), "sections": [section("a", 1), section("b", 2)]}
    previous = tmp_path / "latest.json"
    previous.write_text(json.dumps(full))
    partial = {"machine": machine("day 2", "later"), "sections": [section("a", 5)]}
    report = merged(partial, previous)
    assert report["machine"]["commit"] == "full"
    assert [(s["key"], s["rows"][0]["median"]) for s in report["sections"]] == [("a", 5), ("b", 2)]
    page = render(report)
    assert page.startswith("Run of day 1:") and "800 s in all" in page
    assert page.count("Run again alone on day 2, commit later.") == 1
    assert page.index("Run again alone") < page.index("### b")


def test_a_target_missed_outright_is_still_drawn() -> None:
    """A log scale cannot draw 0: a count target missed with nothing (no legitimate login
    admitted) or a target of no requests missed would vanish from the chart."""
    from benchmarks.chart import SHOWN, margin, shown

    assert shown(margin(0, ">=", 1)) == SHOWN[0] > 0
    assert shown(margin(3, "<=", 0)) == SHOWN[0]
    assert shown(margin(0, "<=", 0)) == SHOWN[1]  # no requests, as asked: met
    assert shown(margin(2, ">=", 1)) == 2


def test_a_long_target_label_wraps_and_keeps_every_word() -> None:
    from benchmarks.chart import LABEL_WIDTH, label

    row = {"section": "hash_queue", "unit": "n", "target": ">= 3"}
    row["name"] = "returning users (device cookie) admitted at the first attempt, bounded queue"
    wrapped = label(row)
    lines = wrapped.split("\n")
    assert len(lines) == 2 and all(len(line) <= LABEL_WIDTH for line in lines)
    assert wrapped.split() == f"hash_queue: {row['name']} (>= 3 n)".split()
    assert "\n" not in label({**row, "name": "cache off"})
