"""The one way every benchmark measures, judges and reports.

Method: the contenders of a comparison run in one process, interleaved round by round in a
rotating order, so that whatever else the machine does (other processes, frequency changes)
falls on all of them alike. A round times a batch of calls of each; the figure is the median
over the rounds, with the 25th and 75th percentiles beside it. In-process figures are CPU
time of this process (`time.process_time_ns`), which leaves out the time it spends
descheduled on a shared machine. Ratios and overheads are taken round by round (the
contenders of one round saw the same conditions) and then summarised the same way.

A bench module joins the harness by being named `benchmarks/bench_<name>.py` and defining

    TITLE = "One line saying what is compared"

    def run(bench: Bench) -> None:
        section = bench.section("name", "Title", method="how it is measured")
        samples = interleave({"ours": ours, "peer": peer}, rounds=bench.rounds(15),
                             batch=bench.size(10_000, smoke=50))
        section.row("ours / peer", samples.ratio("ours", "peer"), "x", at_most(1.0))

    def main() -> int:
        return standalone(run)

A runner given to `interleave` is called with a batch size and makes that many calls in its
own tight loop (a shared per-call wrapper would blur the comparison); it may be a plain
function or a coroutine function. `bench.smoke` is set for the smoke run (tiny sizes, a few
rounds, targets shown but never judged); `bench.size` and `bench.rounds` pick by mode. A row
is judged on its median against its target; a missed target makes `python -m benchmarks`
exit non-zero. `section.skip(reason)` records why a section could not run (a peer that
would not install, a tool that is missing): skipped is reported, never counted as met.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Runner = Callable[[int], Awaitable[object] | object]
"""Makes `n` calls of the thing measured; the harness times the whole batch."""

Clock = Callable[[], int]


@dataclass(frozen=True)
class Stats:
    """Median and quartiles of one figure over the rounds."""

    median: float
    p25: float
    p75: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("no samples")
        if len(ordered) == 1:
            return cls(ordered[0], ordered[0], ordered[0], 1)
        q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        return cls(q2, q1, q3, len(ordered))

    def scaled(self, factor: float) -> Stats:
        return Stats(self.median * factor, self.p25 * factor, self.p75 * factor, self.n)


@dataclass(frozen=True)
class Target:
    """`op` `value`: the median must be at least (>=) or at most (<=) `value`."""

    op: Literal[">=", "<="]
    value: float

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.op == ">=" else figure <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def number(value: float) -> str:
    """Three significant figures, but thousands written out (4,390 rather than 4.39e+03)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def at_least(value: float) -> Target:
    return Target(">=", value)


def at_most(value: float) -> Target:
    return Target("<=", value)


@dataclass
class Samples:
    """Per-call figures of each contender, one per round (ns, or what the runner reports)."""

    per_call: dict[str, list[float]]

    def stats(self, name: str, scale: float = 1.0) -> Stats:
        return Stats.of(self.per_call[name]).scaled(scale)

    def minus(self, name: str, base: str, scale: float = 1.0) -> Stats:
        """`name` less `base`, round by round: the cost `name` adds to `base`."""
        pairs = zip(self.per_call[name], self.per_call[base], strict=True)
        return Stats.of(a - b for a, b in pairs).scaled(scale)

    def ratio(self, name: str, other: str, base: str | None = None) -> Stats:
        """`name` / `other` round by round; with `base`, of what each adds to `base`."""
        ratios = []
        for i, (a, b) in enumerate(zip(self.per_call[name], self.per_call[other], strict=True)):
            if base is not None:
                a, b = a - self.per_call[base][i], b - self.per_call[base][i]
            ratios.append(a / b if b > 0 else float("inf"))
        return Stats.of(ratios)


def interleave(
    runners: Mapping[str, Runner],
    *,
    rounds: int,
    batch: int | Mapping[str, int],
    prepare: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
    clock: Clock = time.process_time_ns,
    warm_up: bool = True,
) -> Samples:
    """Time `rounds` batches of every runner, in turns, the order rotating each round; the
    result is nanoseconds per call (of `clock`: CPU time by default).

    A coroutine runner runs on an event loop of its own, and so does its `prepare` step:
    what a contender leaves running in the background (a peer's expiry task, a snapshot
    sync) then runs only during its own batches and is counted as its cost, never another's.
    The garbage collector runs between batches and not during one, so no contender pays for
    another's garbage."""
    names = list(runners)
    sizes = {name: batch if isinstance(batch, int) else batch[name] for name in names}
    loops = {name: asyncio.new_event_loop() for name in names}
    per_call: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name, step in (prepare or {}).items():
            loops[name].run_until_complete(step())
        if warm_up:
            for name in names:
                _call(loops[name], runners[name], max(1, sizes[name] // 10))
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                gc.collect()
                gc.disable()
                try:
                    start = clock()
                    _call(loops[name], runners[name], sizes[name])
                    elapsed = clock() - start
                finally:
                    gc.enable()
                per_call[name].append(elapsed / sizes[name])
    finally:
        for loop in loops.values():
            _close(loop)
    return Samples(per_call)


def _call(loop: asyncio.AbstractEventLoop, runner: Runner, n: int) -> None:
    result = runner(n)
    if inspect.isawaitable(result):
        loop.run_until_complete(result)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()


@dataclass
class Row:
    section: str
    name: str
    unit: str
    median: float
    p25: float
    p75: float
    n: int
    target: str | None = None
    met: bool | None = None
    """None when there is no target, or in a smoke run (judged never)."""
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    method: str
    smoke: bool
    rows: list[Row] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def row(
        self,
        name: str,
        figure: Stats | float,
        unit: str,
        target: Target | None = None,
        note: str = "",
    ) -> Row:
        stats = figure if isinstance(figure, Stats) else Stats(figure, figure, figure, 1)
        met = None if target is None or self.smoke else target.met(stats.median)
        row = Row(
            self.key,
            name,
            unit,
            stats.median,
            stats.p25,
            stats.p75,
            stats.n,
            None if target is None else str(target),
            met,
            note,
        )
        self.rows.append(row)
        verdict = "" if target is None else f"  target {target}: " + _verdict(met)
        spread = f" [{number(stats.p25)}–{number(stats.p75)}]" if stats.n > 1 else ""
        print(f"  {name:58s} {number(stats.median):>10s} {unit:6s}{spread}{verdict}", flush=True)
        return row

    def skip(self, reason: str) -> None:
        self.skipped = reason
        print(f"  skipped: {reason}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  ({text})", flush=True)


def _verdict(met: bool | None) -> str:
    return "not judged (smoke)" if met is None else ("met" if met else "MISSED")


@dataclass
class Bench:
    """What a bench module's `run` is given: the mode, and where its results go."""

    smoke: bool = False
    sections: list[Section] = field(default_factory=list)

    def section(self, key: str, title: str, method: str) -> Section:
        section = Section(key, title, method, self.smoke)
        self.sections.append(section)
        print(f"\n--- {title}", flush=True)
        return section

    def size(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full

    def rounds(self, full: int = 15, smoke: int = 3) -> int:
        return smoke if self.smoke else full

    @property
    def missed(self) -> list[Row]:
        return [row for section in self.sections for row in section.rows if row.met is False]

    def add_from_json(self, report: dict[str, Any]) -> None:
        """Take the sections a bench run in another process reported (`as_json`)."""
        for s in report["sections"]:
            rows = [Row(**row) for row in s["rows"]]
            self.sections.append(
                Section(
                    s["key"], s["title"], s["method"], self.smoke, rows, s["skipped"], s["notes"]
                )
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "sections": [
                {
                    "key": s.key,
                    "title": s.title,
                    "method": s.method,
                    "skipped": s.skipped,
                    "notes": s.notes,
                    "rows": [row.__dict__ for row in s.rows],
                }
                for s in self.sections
            ]
        }


def standalone(run: Callable[[Bench], None], argv: list[str] | None = None) -> int:
    """`python -m benchmarks.bench_x [--smoke]`: one module alone, judged, nothing written."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    bench = Bench(smoke="--smoke" in args)
    run(bench)
    for row in bench.missed:
        print(f"MISSED: {row.section}: {row.name} = {row.median:.3g} {row.unit} ({row.target})")
    return 1 if bench.missed else 0
