"""Benchmark: validating 30 day partitions of >= 1 M rows each with >= 10 expectations.

Prints, in one run on the same data:
  engine   validate_partitions (one grouped aggregation + value counts, verdicts, profiles,
           results/profiles/statuses tables, GX docs) — and the evaluation alone
  (a)      GX on Spark, partition by partition (what "validate every partition" costs with GX)
  (b)      one hand-written grouped aggregation of the same metrics (the floor)
and the engine's time as ratios to (a) and (b). A script that prints figures, not a test.

    .venv/bin/python benchmarks/validation.py [--partitions 30] [--rows 1000000] [--master local[2]]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASE = dt.date(2026, 9, 1)

SUITE = {
    "name": "bench",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "order_id", "regex": "^o[0-9]+$"}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "region", "value_set": ["north", "south", "east", "west"]}},
        {"type": "expect_column_unique_value_count_to_be_between", "kwargs": {"column": "region", "min_value": 4, "max_value": 4}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000, "mostly": 0.99}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 20, "max_value": 200}},
        {"type": "expect_column_median_to_be_between", "kwargs": {"column": "amount", "min_value": 10, "max_value": 150}},
        {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": "amount", "min_value": 1, "max_value": 100}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "discount", "mostly": 0.99}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "discount", "min_value": 0, "max_value": 0.5}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "items", "min_value": 1, "max_value": 10}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "event_lag_days", "max_value": 0}},
    ],
}


def make_data(spark, partitions: int, rows: int):
    from pyspark.sql import functions as F

    n = partitions * rows
    return (spark.range(n)
            .withColumn("ds", F.date_add(F.lit(BASE), (F.col("id") / rows).cast("int")))
            .withColumn("order_id", F.concat(F.lit("o"), F.col("id").cast("string")))
            .withColumn("region", F.element_at(F.array(*[F.lit(r) for r in ("north", "south", "east", "west")]),
                                               (F.abs(F.hash("id")) % 4 + 1).cast("int")))
            .withColumn("amount", F.round(F.rand(1) * 145 + 5, 2))
            .withColumn("discount", F.when(F.rand(2) < 0.001, F.lit(None)).otherwise(F.round(F.rand(3) * 0.5, 3)))
            .withColumn("items", (F.rand(4) * 10 + 1).cast("int"))
            .withColumn("distance_km", F.round(F.rand(5) * 24.7 + 0.3, 2))
            .withColumn("event_lag_days", F.lit(0))
            .withColumn("hour_of_day", (F.rand(6) * 24).cast("int"))
            .drop("id"))


def hand_written_aggregation(df, exact_distinct: bool = True):
    """The same metrics, written by hand as one grouped aggregation (no verdicts, no profile).

    exact_distinct=True: exact metrics, as the verdicts need them: uniqueness as count vs
    countDistinct, the exact median(). (With percentile_approx next to countDistinct, Spark's
    distinct-aggregation plan keeps a quantile sketch per distinct value: ~15x slower.)
    False: approx_count_distinct and percentile_approx (not the same metrics: the single-pass floor)."""
    from pyspark.sql import functions as F

    distinct = F.countDistinct("order_id") if exact_distinct else F.approx_count_distinct("order_id")
    median = F.median("amount") if exact_distinct else F.percentile_approx("amount", 0.5, 10000)
    return df.groupBy("ds").agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col("order_id").isNull(), 1)).alias("order_id_nulls"),
        distinct.alias("order_id_distinct"),
        F.count(F.when(~F.col("order_id").rlike("^o[0-9]+$"), 1)).alias("order_id_regex_miss"),
        F.count(F.when(~F.col("region").isin("north", "south", "east", "west"), 1)).alias("region_not_in_set"),
        F.approx_count_distinct("region").alias("region_distinct"),
        F.count(F.when((F.col("amount") < 0) | (F.col("amount") > 1000), 1)).alias("amount_out"),
        F.avg("amount").alias("amount_mean"),
        median.alias("amount_median"),
        F.stddev_samp("amount").alias("amount_std"),
        F.count(F.when(F.col("discount").isNull() | F.isnan("discount"), 1)).alias("discount_nulls"),
        F.count(F.when((F.col("discount") < 0) | (F.col("discount") > 0.5), 1)).alias("discount_out"),
        F.count(F.when((F.col("items") < 1) | (F.col("items") > 10), 1)).alias("items_out"),
        F.max("event_lag_days").alias("lag_max"),
    ).collect()


def gx_spark_per_partition(df, dates):
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (context.data_sources.add_spark("bench").add_dataframe_asset("features")
                 .add_batch_definition_whole_dataframe("partition"))
    suite = ExpectationSuite(**json.loads(json.dumps(SUITE)))
    from pyspark.sql import functions as F

    ok = 0
    for d in dates:
        batch = batch_def.get_batch(batch_parameters={"dataframe": df.where(F.col("ds") == F.lit(d))})
        ok += batch.validate(suite).success
    return ok


def timed(label, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - t
    print(f"  {label:66s} {seconds:8.1f} s", flush=True)
    return seconds, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per partition")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-gx", action="store_true", help="skip (a), GX on Spark per partition")
    parser.add_argument("--skip-exact", action="store_true",
                        help="skip (b) with exact metrics (countDistinct + median: slow at scale)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from engine import tables
    from engine.config import load_config
    from engine.spark import get_spark
    from engine.validation import validate_partitions
    from engine.validation.evaluate import evaluate
    from engine.validation.suites import parse_suite

    spark = get_spark("bench-validation", master=args.master, conf={
        "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-validation-"))
    shutil.rmtree(work, ignore_errors=True)
    (work / "conf").mkdir(parents=True)
    shutil.copy(REPO / "conf" / "project.yaml", work / "conf")
    (work / "expectations").mkdir()
    (work / "expectations" / "bench.json").write_text(json.dumps(SUITE))
    cfg = load_config(work / "conf")
    path = cfg.table("features/bench")
    dates = [BASE + dt.timedelta(days=k) for k in range(args.partitions)]
    total = args.partitions * args.rows
    print(f"validation benchmark: {args.partitions} partitions x {args.rows:,} rows = {total:,} rows, "
          f"{len(SUITE['expectations'])} expectations, master {args.master}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("data:")
    timed("write features/bench (Delta, partitioned by ds)", tables.write, spark,
          make_data(spark, args.partitions, args.rows), path, mode="overwrite", partition_by=["ds"])
    df = tables.read(spark, path, partitions=dates)
    suite = parse_suite(SUITE)

    print("warm-up (one partition each; JVM, codegen, GX import):")
    timed("engine evaluation, 1 partition", evaluate, spark, df, suite, dates[:1])
    if not args.skip_gx:
        timed("GX on Spark, 1 partition", gx_spark_per_partition, df, dates[:1])

    print("measured:")
    engine_s, report = timed(f"engine: validate_partitions, {args.partitions} partitions (everything)",
                             validate_partitions, spark, cfg, "bench", dates, "bench-run")
    assert all(s == "valid" for s in report.statuses.values()), report.alerts[:3]
    noprof_s, evaluation = timed("engine: evaluation only, no profile, no writes", evaluate, spark, df, suite, dates,
                                 profile=False)
    floor_s, _ = timed("(b') one grouped aggregation, approximate distinct and median", hand_written_aggregation, df,
                       exact_distinct=False)
    hand_s = None
    if not args.skip_exact:
        hand_s, _ = timed("(b) one grouped aggregation, exact metrics (countDistinct, median)",
                          hand_written_aggregation, df)
    gx_s = None
    if not args.skip_gx:
        gx_s, ok = timed(f"(a) GX on Spark, partition by partition ({args.partitions} runs)",
                         gx_spark_per_partition, df, dates)

    print("ratios (engine time / other; < 1 means the engine is faster):")
    if gx_s:
        print(f"  engine (everything) / (a) GX on Spark per partition      {engine_s / gx_s:6.3f}  "
              f"(GX {gx_s / args.partitions:.2f} s per partition)")
        print(f"  engine, no profile  / (a) GX on Spark per partition      {noprof_s / gx_s:6.3f}")
    if hand_s:
        print(f"  engine (everything) / (b) one aggregation, exact metrics {engine_s / hand_s:6.3f}")
        print(f"  engine, no profile  / (b) one aggregation, exact metrics {noprof_s / hand_s:6.3f}")
    print(f"  engine (everything) / (b') one aggregation, approximate  {engine_s / floor_s:6.2f}")
    print(f"  engine, no profile  / (b') one aggregation, approximate  {noprof_s / floor_s:6.2f}")
    print(f"  Spark jobs in the engine's evaluation: {evaluation.jobs} "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in evaluation.seconds.items())}, no profile); "
          f"expectation types through GX: {evaluation.gx_types or 'none'}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
