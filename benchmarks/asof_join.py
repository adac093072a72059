"""Benchmark: an as-of join over 120 days vs 60 days in one job (issue 11: linear in days).

The join is engine.features.as_of_join (keys + a time bucket of max_lag_hours, so a row meets
only the right rows of its own and the previous bucket). Orders (--rows per day, 4 regions)
join hourly weather per region. Each size runs --repeats times, alternating; prints medians,
the 120 ÷ 60 ratio (linear: 2.0) and the load average. A script that prints figures.

    .venv/bin/python benchmarks/asof_join.py [--rows 2000] [--repeats 3] [--master local[2]]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
REGIONS = ["north", "south", "east", "west"]


def frames(spark, days: int, rows: int):
    from pyspark.sql import functions as F

    orders = (spark.range(days * rows)
              .withColumn("order_id", F.col("id"))
              .withColumn("region", F.element_at(F.array(*[F.lit(r) for r in REGIONS]), (F.col("id") % 4 + 1).cast("int")))
              .withColumn("event_ts", F.lit(BASE) + F.make_dt_interval(
                  secs=(F.col("id") * 86400.0 / rows + 3600).cast("decimal(18,6)")))
              .withColumn("ds", F.to_date("event_ts")))
    weather = (spark.range(days * 24 * len(REGIONS))
               .withColumn("region", F.element_at(F.array(*[F.lit(r) for r in REGIONS]), (F.col("id") % 4 + 1).cast("int")))
               .withColumn("obs_ts", F.lit(BASE) + F.make_dt_interval(hours=(F.col("id") / 4).cast("int")))
               .withColumn("temp_c", F.col("id").cast("double") / 10))
    return orders.select("order_id", "region", "event_ts", "ds"), weather


def run_once(spark, days: int, rows: int) -> float:
    from engine.config import AsOfJoin
    from engine.features import as_of_join

    join = AsOfJoin(source="weather", keys=["region"], time="obs_ts", max_lag_hours=3, columns={"temp": "temp_c"})
    orders, weather = frames(spark, days, rows)
    out = as_of_join(join, orders, weather, ["order_id"], "event_ts")
    clock = time.perf_counter()
    out.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="orders per day")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from engine.spark import get_spark

    spark = get_spark("bench-asof", master=args.master, conf={"spark.ui.enabled": "false",
                                                              "spark.sql.shuffle.partitions": "4"})
    run_once(spark, 10, args.rows)  # warm up
    times: dict[int, list[float]] = {60: [], 120: []}
    for _ in range(args.repeats):
        for days in (60, 120):
            times[days].append(run_once(spark, days, args.rows))
    m60, m120 = statistics.median(times[60]), statistics.median(times[120])
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"as-of join, {args.rows} orders/day, hourly weather, 4 regions, max_lag 3 h")
    print(f"  60 days:  median {m60:.2f} s  ({', '.join(f'{t:.2f}' for t in times[60])})")
    print(f"  120 days: median {m120:.2f} s  ({', '.join(f'{t:.2f}' for t in times[120])})")
    print(f"  ratio 120 / 60 days: {m120 / m60:.2f} (linear: 2.0)   load average {load}")
    from report import emit

    emit("as-of join", rows=args.rows, ratio=round(m120 / m60, 3))
    spark.stop()


if __name__ == "__main__":
    main()
