"""The results table of docs/benchmarks.md, written from a report between two markers so the
page always shows the last full run, misses included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import number

START = "<!-- results: start (written by `make bench`) -->"
END = "<!-- results: end -->"


def render(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Run of {machine['date']}: Python {machine['python']}, {machine['cpus']} CPUs "
        f"({machine['cpu'] or 'unknown CPU'}), {machine['platform']}, commit "
        f"{machine['commit'] or 'unknown'}; load average {_load(machine)}; "
        f"{machine['seconds']} s in all.",
        "",
    ]
    for error in report.get("errors", []):
        lines += [f"- **Failed to run**: {error}", ""]
    for section in report["sections"]:
        lines += [f"### {section['title']}", "", f"*{section['method']}*", ""]
        again = section.get("run_again")
        if again:
            lines += [f"Run again alone on {again['date']}, commit {again['commit']}.", ""]
        if section["skipped"]:
            lines += [f"Skipped: {section['skipped']}", ""]
            continue
        lines += ["| figure | median | p25–p75 | target | |", "|---|---:|---:|---|---|"]
        for row in section["rows"]:
            spread = f"{number(row['p25'])}–{number(row['p75'])}" if row["n"] > 1 else ""
            verdict = {True: "met", False: "**missed**", None: ""}[row["met"]]
            target = f"{row['target']} {row['unit']}" if row["target"] else ""
            lines.append(
                f"| {row['name']} | {number(row['median'])} {row['unit']} | {spread} | {target} "
                f"| {verdict} |"
            )
        lines.append("")
        lines += [f"- {note}" for note in section["notes"]]
        if section["notes"]:
            lines.append("")
    return "\n".join(lines)


def _load(machine: dict[str, Any]) -> str:
    start = machine.get("load_average_at_start") or [0]
    end = machine.get("load_average_at_end") or [0]
    return f"{start[0]:.1f} at the start, {end[0]:.1f} at the end"


def update_doc(report: dict[str, Any], doc: Path) -> None:
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n\n{render(report)}\n{END}{tail}")
