# Databricks notebook source
# MAGIC %md
# MAGIC # Validation explorer
# MAGIC
# MAGIC What validation (MAP 2) found in the feature partitions:
# MAGIC
# MAGIC 1. **Quarantined partitions** and the reasons (the failed blocking expectations), plus released ones.
# MAGIC 2. **Failing expectations by column**: which expectation failed on which column, on how many partitions.
# MAGIC 3. **A column's profile over `ds`**: row count, nulls, distinct values, mean and quantiles per partition.
# MAGIC
# MAGIC Everything comes from the lakehouse tables `validation/partitions`, `validation/results` and
# MAGIC `validation/profiles`; the latest validation of each partition is the one its status names.
# MAGIC
# MAGIC Widgets: **conf** (the conf directory; relative paths resolve against this notebook's folder),
# MAGIC **table** (a validated table), **column** (whose profile history to show), **days** (only the
# MAGIC last N validated days; 0 = all).

# COMMAND ----------

dbutils.widgets.text("conf", "../conf", "conf directory")
dbutils.widgets.text("table", "features/orders", "validated table")
dbutils.widgets.text("column", "amount", "profile column")
dbutils.widgets.text("days", "0", "last N days (0 = all)")

# COMMAND ----------

import os
import sys

try:
    import engine  # noqa: F401  (installed as a library, or the repository root is on sys.path)
except ImportError:
    sys.path.insert(0, os.path.dirname(os.getcwd()))  # this notebook's folder is <repo>/notebooks

import pandas as pd
from pyspark.sql import functions as F

from engine import catalog, tables
from engine.config import load_config
from engine.validation import partition_statuses

cfg = load_config(dbutils.widgets.get("conf"))
TABLE = dbutils.widgets.get("table").strip()
COLUMN = dbutils.widgets.get("column").strip()
try:
    DAYS = int(dbutils.widgets.get("days").strip() or 0)
except ValueError:
    raise ValueError(f"widget days: expected a whole number of days, got {dbutils.widgets.get('days')!r}") from None


def absent(name: str) -> bool:
    """True (and says so) when the lakehouse table `name` does not exist yet."""
    path = catalog.Catalog.of(cfg).path(name)
    if tables.exists(path, spark):
        return False
    print(f"{name}: no table at {path} yet (run the pipeline first, e.g. with notebooks/03_run_pipeline)")
    return True


print(f"project {cfg.project.name}, lakehouse {cfg.lakehouse}, table {TABLE}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Partition statuses: quarantined and released partitions, with reasons

# COMMAND ----------

statuses = [] if absent("validation/partitions") else partition_statuses(spark, cfg, TABLE)
if statuses and DAYS > 0:
    last = max(s.ds for s in statuses)
    statuses = [s for s in statuses if (last - s.ds).days < DAYS]

if not statuses:
    print(f"{TABLE}: no validated partitions")
else:
    n_quarantined = sum(1 for s in statuses if s.status == "quarantined")
    n_released = sum(1 for s in statuses if s.released_by)
    print(f"{TABLE}: {len(statuses)} partitions validated ({statuses[0].ds} .. {statuses[-1].ds}), "
          f"{n_quarantined} quarantined, {n_released} released")
    flagged = pd.DataFrame(
        [{
            "ds": s.ds,
            "status": s.status,
            "columns": ", ".join(sorted({r.column or "(table)" for r in s.reasons if r.severity == "block"})),
            "reasons": "\n".join(r.message for r in s.reasons if r.severity == "block"),
            "warnings": "\n".join(r.message for r in s.reasons if r.severity != "block"),
            "released_by": s.released_by,
            "release_reason": s.release_reason,
            "validation_run_id": s.run_id,
        } for s in statuses if s.status == "quarantined" or s.released_by],
        columns=["ds", "status", "columns", "reasons", "warnings", "released_by", "release_reason",
                 "validation_run_id"],
    )
    if flagged.empty:
        print("no quarantined or released partitions")
    else:
        display(flagged)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Failing expectations by column
# MAGIC
# MAGIC From each partition's latest validation: per column and expectation, how many partitions failed
# MAGIC it, which ones, the worst unexpected share and one message.

# COMMAND ----------

latest = None
if statuses:
    # The validation run that set each partition's current status.
    latest = spark.createDataFrame([(s.ds, s.run_id, s.status) for s in statuses],
                                   "ds date, run_id string, status string")

if latest is not None and not absent("validation/results"):
    results = (tables.read(spark, catalog.Catalog.of(cfg).validation_results)
               .where(F.col("table") == TABLE)
               .join(latest.select("ds", "run_id"), ["ds", "run_id"]))
    failing = (results.where(~F.col("success"))
               .groupBy(F.coalesce(F.col("column"), F.lit("(table)")).alias("column"), "expectation_type", "severity")
               .agg(F.countDistinct("ds").alias("failing_partitions"),
                    F.concat_ws(", ", F.array_sort(F.collect_set(F.col("ds").cast("string")))).alias("ds"),
                    F.max("unexpected_percent").alias("max_unexpected_percent"),
                    F.min("message").alias("example_message"))
               .orderBy(F.desc("failing_partitions"), "column", "expectation_type"))
    if failing.isEmpty():
        print(f"{TABLE}: every expectation passed on every validated partition")
    else:
        display(failing)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Profile history of one column
# MAGIC
# MAGIC One row per partition (its latest validation's profile). `mean_robust_z` is how far the day's
# MAGIC mean is from the median day, in robust standard deviations (median absolute deviation): a unit
# MAGIC change or a stale copy stands out at once.

# COMMAND ----------

if latest is not None and not absent("validation/profiles"):
    profiles = tables.read(spark, catalog.Catalog.of(cfg).validation_profiles).where(F.col("table") == TABLE)
    profiled = sorted(r["column"] for r in profiles.select("column").distinct().collect())
    if COLUMN not in profiled:
        print(f"{TABLE}: column {COLUMN!r} has no profile; profiled columns: {', '.join(profiled) or 'none'}")
    else:
        history = (profiles.where(F.col("column") == COLUMN)
                   .join(latest, ["ds", "run_id"])
                   .select("ds", "status", "dtype", "row_count", "null_fraction", "distinct_count", "min", "max",
                           "mean", "stddev", "p05", "p25", "p50", "p75", "p95", "top_values")
                   .orderBy("ds")
                   .toPandas())
        means = pd.to_numeric(history["mean"], errors="coerce")
        deviation = (means - means.median()).abs()
        mad = deviation.median()
        history["mean_robust_z"] = (0.6745 * (means - means.median()) / mad).round(2) if mad and mad > 0 else None
        print(f"{TABLE}.{COLUMN}: {len(history)} partitions profiled")
        display(history)
