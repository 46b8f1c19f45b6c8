"""`python -m benchmarks`: run every benchmark module in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    wanted = set(sys.argv[1:])
    unknown = wanted - set(names)
    if unknown:
        print(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(names)})")
        return 2
    sys.argv = sys.argv[:1]  # the modules parse their own options
    worst = 0
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"\n=== {name}", flush=True)
        worst = max(worst, importlib.import_module(f"benchmarks.{name}").main() or 0)
    return worst  # non-zero when a benchmark missed its target


if __name__ == "__main__":
    raise SystemExit(main())
