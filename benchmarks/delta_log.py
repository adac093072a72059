"""Long logs stay cheap: reading a small table after 30 vs 365 nightly commits, with and
without `tables.maintain` run once per night (as the pipeline does over catalog.SMALL_TABLES).

Two kinds of small table, as the engine writes them (delta-rs, no Spark):
  runs       one append per night (8 stage rows)
  registry   one merge (upsert) per night of 5 model rows, keys (model_id, segment, version)

Each table is built night by night (its log files aged one day per night, so log retention
behaves as in a real year; removed-file tombstones, dated by the wall clock, expire at once
instead of after 7 days). Reads are timed after each of the 8 nights up to night 30 and up
to night 365, so the checkpoint and compaction cycles average out. Prints the median
milliseconds of `tables.read_rows` (open the log, read every file) and of `tables.version`
(open the log only), and the ratio 365 nights / 30 nights. Target: <= 1.1 with maintenance.

    PYTHONPATH=. python benchmarks/delta_log.py [--nights 30 365] [--window 8] [--repeat 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time

import pyarrow as pa

from engine import tables

STAGES = ("features", "validation", "training_sets", "train", "registry", "metrics", "report", "run")


def runs_night(night: int) -> pa.Table:
    day = dt.date(2025, 1, 1) + dt.timedelta(days=night)
    return pa.table({"run_id": [f"run-{night}"] * len(STAGES), "logical_date": [day] * len(STAGES),
                     "stage": list(STAGES), "status": ["success"] * len(STAGES),
                     "rows_out": list(range(len(STAGES))), "detail": ["{}"] * len(STAGES)})


def registry_night(night: int) -> pa.Table:
    n = 5
    return pa.table({"model_id": [f"m{i}" for i in range(n)], "segment": ["all"] * n,
                     "version": [f"v{night:04d}"] * n, "status": ["candidate"] * n,
                     "metric_value": [0.5 + night / 1000] * n, "logical_date": [dt.date(2025, 1, 1)] * n})


def age_log(path: str, seconds: float) -> None:
    """One night passes: every log file gets a day older (cleanup_metadata looks at file ages,
    so a year of nights built in a minute must age its log as a real year would)."""
    log = os.path.join(path, "_delta_log")
    for name in os.listdir(log):
        full = os.path.join(log, name)
        st = os.stat(full)
        os.utime(full, (st.st_atime - seconds, st.st_mtime - seconds))


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm the page cache and imports
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def night_costs(kind: str, maintained: bool, short: int, long_: int, window: int, repeat: int, root: str) -> dict:
    """Build one table night by night up to `long_` nights; time reads after each of the last
    `window` nights before `short` and before `long_` (so the phase of the checkpoint and
    compaction cycles averages out). Returns medians and the table's shape at the end."""
    path = os.path.join(root, f"{kind}-{'maintained' if maintained else 'plain'}")
    reads: dict[tuple, list[float]] = {}
    for night in range(1, long_ + 1):
        if kind == "runs":
            tables.write_rows(None, path, runs_night(night))
        else:
            tables.upsert_rows(None, path, registry_night(night), keys=["model_id", "segment", "version"])
        if night == 1:  # tombstones expire by wall clock (deletionTimestamp), which this year of
            # nights cannot age: let them expire at once, as a real checkpoint drops those older
            # than 7 days (delta.deletedFileRetentionDuration)
            tables._delta_table(path).alter.set_table_properties(
                {"delta.deletedFileRetentionDuration": "interval 1 seconds"})
        if maintained:
            tables.maintain(path)
        for age in (short, long_):
            if age - window < night <= age:
                reads.setdefault((age, "rows"), []).append(median_seconds(lambda: tables.read_rows(path), repeat))
                reads.setdefault((age, "log"), []).append(median_seconds(lambda: tables.version(path), repeat))
        age_log(path, 86400)
    files = len(pa.table(tables._delta_table(path).get_add_actions(flatten=True)))
    log = len([f for f in os.listdir(os.path.join(path, "_delta_log")) if f.endswith(".json")])
    return {"medians": {k: statistics.median(v) for k, v in reads.items()}, "files": files, "log": log}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", type=int, nargs=2, default=(30, 365))
    parser.add_argument("--window", type=int, default=8, help="nights measured before each age")
    parser.add_argument("--repeat", type=int, default=5, help="reads per measured night (median)")
    args = parser.parse_args()
    short, long_ = args.nights
    root = tempfile.mkdtemp(prefix="delta_log_bench_")
    print(f"load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    t0 = time.perf_counter()
    print(f"{'table':9} {'maintained':10} {'read':>4}  {short:>4} nights  {long_:>4} nights  ratio  "
          f"files  log json at {long_}")
    ratios = {}
    for kind in ("runs", "registry"):
        for maintained in (False, True):
            got = night_costs(kind, maintained, short, long_, args.window, args.repeat, root)
            for label in ("rows", "log"):
                a, b = got["medians"][short, label], got["medians"][long_, label]
                ratios[f"{kind} {'maintained' if maintained else 'unmaintained'} {label}"] = round(b / a, 3)
                print(f"{kind:9} {'yes' if maintained else 'no':10} {label:>4}  {a * 1000:8.1f} ms  "
                      f"{b * 1000:8.1f} ms  {b / a:5.2f}  {got['files']:5d}  {got['log']:8d}", flush=True)
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}; "
          f"{time.perf_counter() - t0:.0f} s; rows = tables.read_rows (log + every file), "
          f"log = tables.version (log only)")
    from report import emit

    emit("P4 delta log", nights=[short, long_], ratios=ratios,
         ratio=max(v for k, v in ratios.items() if k.endswith(" maintained rows")))


if __name__ == "__main__":
    main()
