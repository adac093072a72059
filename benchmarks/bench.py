"""`make bench`: every benchmark at a size that fits ~15 minutes on 2 cores, one after the
other (each alternates its own compared commands), then ONE table of every ratio with the
load average, written as JSON to benchmarks/results/<commit>.json.

    .venv/bin/python benchmarks/bench.py [--only P1,P2] [--out DIR]

A ratio the project has no benchmark for yet is listed as not measured, never guessed."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from report import MARK  # noqa: E402

# (key, command): each benchmark script at its make-bench size
RUNS = [
    ("P1", ["validation.py", "--partitions", "10", "--rows", "50000", "--repeats", "3"]),
    ("P2-200", ["many_models.py", "--models", "4", "--segments", "50", "--rows", "2000", "--trees", "30",
                "--repeat", "2"]),
    ("P2-2000", ["many_models.py", "--models", "4", "--segments", "500", "--rows", "300", "--trees", "10",
                 "--repeat", "1"]),
    ("P4", ["delta_log.py", "--nights", "30", "365"]),
    ("ASOF", ["asof_join.py", "--rows", "2000", "--repeats", "3"]),
    # P3 and REDUCE: one script, one result (three nights and four REDUCE builds)
    ("P3-REDUCE", ["models_scale.py", "--models", "10", "100", "--days", "10", "--rows", "1000", "--repeat", "2"]),
    ("P5", ["night.py", "--days", "31", "--end", "2026-10-21", "--repeat", "2"]),
]
NOT_MEASURED: list[tuple[str, str]] = []  # (measure, why): a ratio without a benchmark yet


def rows_of(key: str, r: dict) -> list[tuple[str, float, str, bool]]:
    """(measure, figure, target, met) of one benchmark's result."""
    if key == "P1":
        return [("P1 validation exact ÷ one scan", r["exact"], "≤ 2", r["exact"] <= 2),
                ("P1 validation approximate ÷ one scan", r["approx"], "≤ 1.3", r["approx"] <= 1.3)]
    if key.startswith("P2"):
        n = r["pairs"]
        return [(f"P2 many models ÷ ideal, {n} pairs", r["ratio"], "≤ 1.5", r["ratio"] <= 1.5),
                (f"P2 overhead per pair, {n} pairs (ms)", r["overhead_ms_per_pair"], "≤ 10",
                 r["overhead_ms_per_pair"] <= 10)]
    if key == "P4":
        return [("P4 small-table read after 365 ÷ 30 nights (maintained, worse of two)", r["ratio"], "≤ 1.1",
                 r["ratio"] <= 1.1)]
    if key == "ASOF":
        return [("as-of join 120 ÷ 60 days", r["ratio"], "≈ 2 (linear)", r["ratio"] <= 2.2)]
    if key == "P3-REDUCE":
        small, large = r["models"]
        return [(f"P3 Spark jobs of a night, {large} ÷ {small} models", r["p3"], "≤ 1.2", r["p3"] <= 1.2),
                (f"REDUCE {large} ÷ {small} models (wall time)", r["reduce"], "≤ 10", r["reduce"] <= 10)]
    if key == "P5":
        return [("P5 one night ÷ its floor (scan + same fits, one process)", r["ratio"], "≤ 5", r["ratio"] <= 5)]
    return []


def commit() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return (sha or "unknown") + ("-dirty" if dirty else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated keys: " + ",".join(k for k, _ in RUNS))
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    results, table, failed = {}, [], []
    started = time.time()
    load_start = os.getloadavg()
    for key, cmd in RUNS:
        if only and key not in only:
            continue
        print(f"== {key}: {' '.join(cmd)}", flush=True)
        clock = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        found = [json.loads(line[len(MARK):]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
        print("\n".join(line for line in proc.stdout.splitlines()
                        if not line.startswith(MARK) and "WARN" not in line)[-3000:], flush=True)
        if proc.returncode != 0 or not found:
            failed.append(key)
            print(f"   {key} failed (exit {proc.returncode})", flush=True)
            continue
        results[key] = {**found[-1], "seconds": round(time.perf_counter() - clock, 1)}
        table += rows_of(key, results[key])
    load_end = os.getloadavg()
    print()
    print(f"{'measure':<62} {'figure':>8}  {'target':<13} met")
    for measure, figure, target, met in table:
        print(f"{measure:<62} {figure:>8.2f}  {target:<13} {'yes' if met else 'NO'}")
    for measure, why in NOT_MEASURED:
        print(f"{measure:<62} {'—':>8}  {'':<13} not measured: {why}")
    print(f"load average: start {' '.join(f'{x:.2f}' for x in load_start)}, end "
          f"{' '.join(f'{x:.2f}' for x in load_end)}; {os.cpu_count()} cores; {time.time() - started:.0f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{commit()}.json"
    path.write_text(json.dumps({
        "commit": commit(), "cores": os.cpu_count(), "load_start": load_start, "load_end": load_end,
        "seconds": round(time.time() - started), "results": results,
        "table": [{"measure": m, "figure": f, "target": t, "met": ok} for m, f, t, ok in table],
        "not_measured": [{"measure": m, "why": w} for m, w in NOT_MEASURED], "failed": failed,
    }, indent=2) + "\n")
    print(f"written: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
