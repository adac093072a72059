"""One machine-readable line per benchmark: `make bench` (benchmarks/bench.py) collects them.

A benchmark prints its figures for people as before and, at the end, `emit(name, ...)`:
one line `BENCH-RESULT {"benchmark": name, ...figures, "load": [1, 5, 15 min]}` on stdout."""
from __future__ import annotations

import json
import os

MARK = "BENCH-RESULT "


def emit(benchmark: str, **figures) -> None:
    print(MARK + json.dumps({"benchmark": benchmark, **figures, "load": [round(x, 2) for x in os.getloadavg()]}),
          flush=True)
