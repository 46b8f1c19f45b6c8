"""`python -m benchmarks [--smoke] [--out DIR] [bench_x ...]`: every benchmark module in turn.

A full run writes `benchmarks/results/latest.json`, the chart `docs/images/benchmarks.png`
and the results table of docs/benchmarks.md, and exits non-zero when a target was missed.
`--smoke` runs every module at tiny sizes in seconds, judges nothing and writes only under
`--out` (when given): it checks that the harness and every bench still run.

Each module runs in a fresh interpreter of its own (`--sections-to`), so that its figures
cannot depend on what ran before it (a heap another filled, threads or servers another
left running) and a crash stops only that module.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "latest.json"
CHART = ROOT / "docs" / "images" / "benchmarks.png"
DOC = ROOT / "docs" / "benchmarks.md"


def module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "commit": commit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bench modules to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no targets judged")
    parser.add_argument("--out", type=Path, help="where the JSON and chart go")
    parser.add_argument("--sections-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sections_to is not None:
        return run_here(args.names, args.smoke, args.sections_to)
    names = module_names()
    unknown = set(args.names) - set(names)
    if unknown:
        print(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(names)})")
        return 2
    bench = Bench(smoke=args.smoke)
    started, info = time.perf_counter(), machine()
    info["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    failed: list[str] = []
    for name in names:
        if args.names and name not in args.names:
            continue
        print(f"\n=== {name}", flush=True)
        # One broken bench must not hide the others' results.
        error = run_apart(name, bench)
        if error is not None:
            failed.append(f"{name}: {error}")
            print(f"  FAILED: {failed[-1]}", flush=True)
    info["load_average_at_end"] = os.getloadavg()
    info["seconds"] = round(time.perf_counter() - started, 1)
    report = {"machine": info, "smoke": args.smoke, "errors": failed, **bench.as_json()}
    if args.out is not None or not args.smoke:
        write(report, args.out, partial=bool(args.names))
    missed = bench.missed
    print(f"\n{len(missed)} target(s) missed, {len(failed)} bench(es) failed; {info['seconds']} s")
    for row in missed:
        print(f"  MISSED {row.section}: {row.name} = {row.median:.3g} {row.unit} ({row.target})")
    return 1 if missed or failed else 0


def run_apart(name: str, bench: Bench) -> str | None:
    """Run one bench module in a fresh interpreter and take its sections into `bench`; the
    error that stopped it, if one did."""
    with tempfile.TemporaryDirectory() as folder:
        sections = Path(folder) / "sections.json"
        command = [sys.executable, "-m", "benchmarks", name, "--sections-to", str(sections)]
        done = subprocess.run([*command, *(["--smoke"] if bench.smoke else [])], cwd=ROOT)
        try:
            report = json.loads(sections.read_text())
        except (OSError, ValueError):
            return f"it exited with status {done.returncode} and reported nothing"
    bench.add_from_json(report)
    return report["error"]


def run_here(names: list[str], smoke: bool, sections_to: Path) -> int:
    """The child's part of `run_apart`: one module, its sections written as JSON."""
    (name,) = names
    bench = Bench(smoke=smoke)
    error = None
    try:
        importlib.import_module(f"benchmarks.{name}").run(bench)
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    sections_to.write_text(json.dumps({**bench.as_json(), "error": error}, ensure_ascii=False))
    return 0 if error is None else 1


def write(report: dict[str, Any], out: Path | None, *, partial: bool) -> None:
    from benchmarks.chart import draw
    from benchmarks.doc_table import update_doc

    results, chart = (out / "latest.json", out / "benchmarks.png") if out else (RESULTS, CHART)
    if partial and out is None:
        # A run of some modules updates their sections and keeps the others'.
        report = merged(report, results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    draw(report, chart)
    if out is None:
        update_doc(report, DOC)
    print(f"\nwrote {results}, {chart}" + ("" if out else f" and {DOC}"))


def merged(report: dict[str, Any], previous_path: Path) -> dict[str, Any]:
    """The previous full run with the sections of this partial run in their places. The
    run described at the top stays the full one; each section run again says when."""
    try:
        previous = json.loads(previous_path.read_text())
    except (OSError, ValueError):
        return report
    machine = report["machine"]
    again = {"date": machine["date"], "commit": machine["commit"]}
    fresh = {section["key"]: {**section, "run_again": again} for section in report["sections"]}
    sections = [fresh.pop(s["key"], s) for s in previous.get("sections", [])]
    return {
        **previous,
        "sections": sections + list(fresh.values()),
        "errors": [*previous.get("errors", []), *report.get("errors", [])],
    }


if __name__ == "__main__":
    raise SystemExit(main())
