"""Benchmark: the validation evaluation vs one hand-written grouped aggregation (issue 11, P1).

On 10 day partitions x 200 k rows (Delta) and a 14-expectation suite, prints medians over
repeats of, run alternately in one process:
  engine exact    evaluate(): suite with exact distinct counts / uniqueness / median, plus the
                  entity-key check (exact semantics: aggregation + one exact pass)
  hand exact      one hand-written grouped aggregation of the same statistics, approximate
                  (approx_count_distinct, percentile_approx): the single-scan floor
  engine approx   evaluate(): a 14-expectation suite that needs no exact distinct / median
  hand approx     one hand-written grouped aggregation of that suite's statistics
  engine profile  evaluate() of the exact suite with the per-column profile (the nightly case)
  hand profile    the hand-written aggregation with the same approximate profile statistics
and the ratios engine / hand (targets: <= 2 exact, <= 1.3 approx), with the load average.
A script that prints figures, not a test.

    .venv/bin/python benchmarks/validation.py [--partitions 10] [--rows 200000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASE = dt.date(2026, 9, 1)
REGIONS = ["north", "south", "east", "west"]
COMMON = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "order_id", "regex": "^o[0-9]+$"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "region", "value_set": REGIONS}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000, "mostly": 0.99}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 20, "max_value": 200}},
    {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": "amount", "min_value": 1, "max_value": 100}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "discount", "mostly": 0.99}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "discount", "min_value": 0, "max_value": 0.5}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "items", "min_value": 1, "max_value": 10}},
    {"type": "expect_column_max_to_be_between", "kwargs": {"column": "event_lag_days", "max_value": 0}},
]
EXACT_SUITE = {"name": "bench", "expectations": COMMON + [
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "order_id"}},
    {"type": "expect_column_unique_value_count_to_be_between", "kwargs": {"column": "region", "min_value": 4, "max_value": 4}},
    {"type": "expect_column_median_to_be_between", "kwargs": {"column": "amount", "min_value": 10, "max_value": 150}},
]}
APPROX_SUITE = {"name": "bench_approx", "expectations": COMMON + [
    {"type": "expect_column_min_to_be_between", "kwargs": {"column": "items", "min_value": 1}},
    {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "region", "value_set": ["unknown"]}},
    {"type": "expect_column_max_to_be_between", "kwargs": {"column": "amount", "max_value": 1000}},
]}
ENTITY = ["order_id"]


def make_data(spark, partitions: int, rows: int):
    from pyspark.sql import functions as F

    n = partitions * rows
    return (spark.range(n)
            .withColumn("ds", F.date_add(F.lit(BASE), (F.col("id") / rows).cast("int")))
            .withColumn("order_id", F.concat(F.lit("o"), F.col("id").cast("string")))
            .withColumn("region", F.element_at(F.array(*[F.lit(r) for r in REGIONS]),
                                               (F.abs(F.hash("id")) % 4 + 1).cast("int")))
            .withColumn("amount", F.round(F.rand(1) * 145 + 5, 2))
            .withColumn("discount", F.when(F.rand(2) < 0.001, F.lit(None)).otherwise(F.round(F.rand(3) * 0.5, 3)))
            .withColumn("items", (F.rand(4) * 10 + 1).cast("int"))
            .withColumn("distance_km", F.round(F.rand(5) * 24.7 + 0.3, 2))
            .withColumn("event_lag_days", F.lit(0))
            .withColumn("hour_of_day", (F.rand(6) * 24).cast("int"))
            .drop("id"))


def _common(F):
    return [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col("order_id").isNull(), 1)).alias("order_id_nulls"),
        F.count(F.when(~F.col("order_id").rlike("^o[0-9]+$"), 1)).alias("order_id_regex_miss"),
        F.count(F.when(~F.col("region").isin(*REGIONS), 1)).alias("region_not_in_set"),
        F.count(F.when((F.col("amount") < 0) | (F.col("amount") > 1000), 1)).alias("amount_out"),
        F.avg("amount").alias("amount_mean"),
        F.stddev_samp("amount").alias("amount_std"),
        F.count(F.when(F.col("discount").isNull() | F.isnan("discount"), 1)).alias("discount_nulls"),
        F.count(F.when((F.col("discount") < 0) | (F.col("discount") > 0.5), 1)).alias("discount_out"),
        F.count(F.when((F.col("items") < 1) | (F.col("items") > 10), 1)).alias("items_out"),
        F.max("event_lag_days").alias("lag_max"),
    ]


def hand_written_aggregation(df, suite: str = "exact", profile: bool = False):
    """The suite's statistics as one grouped aggregation written by hand, approximate where
    the engine is exact (approx_count_distinct for uniqueness and distinct counts,
    percentile_approx for the median): no verdicts, one scan. profile=True adds the same
    approximate per-column profile the engine computes."""
    from pyspark.sql import functions as F

    aggs = _common(F)
    if suite == "exact":
        aggs += [F.approx_count_distinct("order_id").alias("order_id_distinct"),
                 F.approx_count_distinct("region").alias("region_distinct"),
                 F.percentile_approx("amount", 0.5, 10000).alias("amount_median")]
    else:
        aggs += [F.min("items").alias("items_min"),
                 F.count(F.when(F.col("region").isin("unknown"), 1)).alias("region_in_forbidden"),
                 F.max("amount").alias("amount_max")]
    if profile:
        for field in df.schema.fields:
            c = field.name
            if c == "ds":
                continue
            aggs += [F.count(c).alias(f"{c}_n"), F.approx_count_distinct(c).alias(f"{c}_hll"),
                     F.min(c).alias(f"{c}_min"), F.max(c).alias(f"{c}_max")]
            if field.dataType.typeName() in ("integer", "long", "double"):
                aggs += [F.avg(c).alias(f"{c}_avg"), F.stddev_samp(c).alias(f"{c}_std"),
                         F.percentile_approx(c, [0.05, 0.25, 0.5, 0.75, 0.95], 200).alias(f"{c}_q")]
            if field.dataType.typeName() in ("integer", "long", "string"):
                aggs.append(F.expr(f"approx_top_k({c}, 5, 256)").alias(f"{c}_top"))
    return df.groupBy("ds").agg(*aggs).collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per partition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from engine import catalog, tables
    from engine.spark import get_spark
    from engine.validation.evaluate import evaluate
    from engine.validation.suites import parse_suite

    spark = get_spark("bench-validation", master=args.master, conf={
        "spark.driver.memory": "4g", "spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-validation-"))
    path = catalog.Catalog(str(work / "lakehouse")).features("bench")
    dates = [BASE + dt.timedelta(days=k) for k in range(args.partitions)]
    exact_suite, approx_suite = parse_suite(EXACT_SUITE), parse_suite(APPROX_SUITE)
    assert len(exact_suite.checks) == len(approx_suite.checks) == 14
    print(f"validation benchmark: {args.partitions} partitions x {args.rows:,} rows, 14 expectations, "
          f"master {args.master}, {os.cpu_count()} cores, load {open('/proc/loadavg').read().strip()}", flush=True)
    tables.write(spark, make_data(spark, args.partitions, args.rows), path, mode="overwrite", partition_by=["ds"])
    df = tables.read(spark, path, partitions=dates)

    runs = {
        "engine exact": lambda: evaluate(spark, df, exact_suite, dates, profile=False, entity=ENTITY),
        "hand exact": lambda: hand_written_aggregation(df, "exact"),
        "engine approx": lambda: evaluate(spark, df, approx_suite, dates, profile=False),
        "hand approx": lambda: hand_written_aggregation(df, "approx"),
        "engine profile": lambda: evaluate(spark, df, exact_suite, dates, profile=True, entity=ENTITY),
        "hand profile": lambda: hand_written_aggregation(df, "exact", profile=True),
    }
    for fn in runs.values():  # warm-up: JVM, codegen, GX import
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    last = {}
    for r in range(args.repeats):
        for name, fn in runs.items():  # alternating: every command once per round
            clock = time.perf_counter()
            last[name] = fn()
            times[name].append(time.perf_counter() - clock)
        print(f"  round {r + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()), flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name in ("engine exact", "engine approx", "engine profile"):
        ev = last[name]
        assert all(o.success for d in dates for o in ev.outcomes[d]), name
        print(f"  {name:15s} median {med[name]:6.2f} s  jobs {ev.jobs}  "
              f"({', '.join(f'{k} {v:.2f} s' for k, v in ev.seconds.items())})")
    for name in ("hand exact", "hand approx", "hand profile"):
        print(f"  {name:15s} median {med[name]:6.2f} s")
    print("ratios (engine / hand-written aggregation of the same approximate statistics):")
    print(f"  exact suite + entity check   {med['engine exact'] / med['hand exact']:5.2f}   (target <= 2)")
    print(f"  suite without exact stats    {med['engine approx'] / med['hand approx']:5.2f}   (target <= 1.3)")
    print(f"  exact suite + profile        {med['engine profile'] / med['hand profile']:5.2f}")
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    from report import emit

    emit("P1 validation", partitions=args.partitions, rows=args.rows,
         exact=round(med["engine exact"] / med["hand exact"], 3),
         approx=round(med["engine approx"] / med["hand approx"], 3),
         profile=round(med["engine profile"] / med["hand profile"], 3))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
