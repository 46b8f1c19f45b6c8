"""The chart of a benchmark report: every target as how far its median is from it, and the
limiter's cost per check against the number of clients."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen needed
import matplotlib.pyplot as plt

LABEL_WIDTH = 56
"""Characters per line of a target's label: longer ones wrap rather than run off the left
edge of the figure (the target, joined by a no-break space, stays on one line)."""
SHOWN = (0.02, 50.0)
"""The margins drawn, the others clipped to them: a log scale has no room for 0 (a count
target missed outright, which must still show as a red bar) or for infinity (a target of no
requests, met)."""


def shown(margin: float) -> float:
    return min(max(margin, SHOWN[0]), SHOWN[1])


def label(row: dict[str, Any]) -> str:
    target = f"({row['target']} {row['unit']})".replace(" ", "\u00a0")  # a no-break space
    return textwrap.fill(f"{row['section']}: {row['name']} {target}", LABEL_WIDTH)


def margin(value: float, op: str, target: float) -> float:
    """How many times over its target a figure is, as "better" reads: 1 is exactly met,
    above 1 met with room, below 1 missed."""
    if op == ">=":
        return value / target if target else float("inf")
    return target / value if value > 0 else float("inf")


def draw(report: dict[str, Any], path: Path) -> None:
    targeted = [
        row
        for section in report["sections"]
        for row in section["rows"]
        if row["target"] is not None
    ]
    scaling = _scaling(report)
    panels = 1 + (scaling is not None)
    height = max(4.0, 0.32 * len(targeted) + 1.5)
    fig, axes = plt.subplots(
        panels,
        1,
        figsize=(11, height + (4.5 if scaling else 0)),
        squeeze=False,
        layout="constrained",  # fits the longest label, where tight_layout clipped one
        gridspec_kw={"height_ratios": [height] + ([4.5] if scaling else [])},
    )
    _targets(axes[0][0], targeted, report)
    if scaling is not None:
        _draw_scaling(axes[1][0], scaling)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _targets(ax: Any, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    labels, values, lows, highs, colours = [], [], [], [], []
    for row in rows:
        op, target = row["target"].split()
        value = margin(row["median"], op, float(target))
        a, b = margin(row["p25"], op, float(target)), margin(row["p75"], op, float(target))
        labels.append(label(row))
        values.append(shown(value))
        lows.append(max(0.0, shown(value) - shown(min(a, b))))
        highs.append(max(0.0, shown(max(a, b)) - shown(value)))
        met = row["met"]
        colours.append("#9e9e9e" if met is None else ("#2e7d32" if met else "#c62828"))
    positions = range(len(rows))
    ax.barh(list(positions), values, xerr=[lows, highs], color=colours, capsize=2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(positions), labels, fontsize=7)
    ax.invert_yaxis()
    machine = report["machine"]
    ax.set_title(
        f"Targets: median / target (1 = just met; green met, red missed; bars p25–p75)\n"
        f"{machine.get('date', '')}, Python {machine.get('python', '')}, "
        f"{machine.get('cpus', '?')} CPUs, {machine.get('cpu', '')}",
        fontsize=9,
    )


def _scaling(report: dict[str, Any]) -> dict[str, dict[int, float]] | None:
    section = next((s for s in report["sections"] if s["key"] == "ratelimit"), None)
    if section is None:
        return None
    lines: dict[str, dict[int, float]] = {}
    for row in section["rows"]:
        match = re.fullmatch(r"([\d,]+) clients, (\S+): (ours|limits)", row["name"])
        if match:
            count = int(match[1].replace(",", ""))
            lines.setdefault(f"{match[3]}, {match[2]}", {})[count] = row["median"]
    return lines or None


def _draw_scaling(ax: Any, lines: dict[str, dict[int, float]]) -> None:
    for name, points in sorted(lines.items()):
        counts = sorted(points)
        style = "-" if name.startswith("ours") else "--"
        ax.plot(counts, [points[c] for c in counts], style, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distinct clients")
    ax.set_ylabel("CPU µs per check (median)")
    ax.set_title("Rate limiter: cost per check against the number of clients", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
