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
    sys.argv = sys.argv[:1]  # the modules parse their own options
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"\n=== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
