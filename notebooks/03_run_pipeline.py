# Databricks notebook source
# MAGIC %md
# MAGIC # Run the pipeline
# MAGIC
# MAGIC The same engine functions the nightly job calls (`jobs/nightly.py`, `retrain run|backfill|validate`):
# MAGIC
# MAGIC | action | what it does | widgets it reads |
# MAGIC |---|---|---|
# MAGIC | `run` | the nightly run for **date** (empty: yesterday, UTC), catching up on missed nights; a date already processed is skipped unless **force** | date, force |
# MAGIC | `backfill` | recompute and re-validate the feature partitions from **start** to **end** in one job (no training) | start, end |
# MAGIC | `validate` | validation alone on the computed partitions from **start** to **end** (or just **date**) | start, end or date |
# MAGIC
# MAGIC Every stage is recorded in the lakehouse table `runs`; the last cells show what this run wrote there.
# MAGIC The lakehouse lock keeps this from running at the same time as the scheduled job.

# COMMAND ----------

dbutils.widgets.text("conf", "../conf", "conf directory")
dbutils.widgets.dropdown("action", "run", ["run", "backfill", "validate"], "action")
dbutils.widgets.text("date", "", "date YYYY-MM-DD (run; empty: yesterday)")
dbutils.widgets.text("start", "", "start YYYY-MM-DD (backfill, validate)")
dbutils.widgets.text("end", "", "end YYYY-MM-DD (backfill, validate)")
dbutils.widgets.dropdown("force", "false", ["false", "true"], "force (run)")

# COMMAND ----------

import datetime as dt
import os
import sys

try:
    import engine  # noqa: F401  (installed as a library, or the repository root is on sys.path)
except ImportError:
    sys.path.insert(0, os.path.dirname(os.getcwd()))  # this notebook's folder is <repo>/notebooks

import pandas as pd
from pyspark.sql import functions as F

from engine import catalog, pipeline, tables
from engine.config import load_config
from engine.errors import UsageError


def widget_date(name: str) -> dt.date | None:
    value = dbutils.widgets.get(name).strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"widget {name}: expected a date YYYY-MM-DD, got {value!r}") from None


cfg = load_config(dbutils.widgets.get("conf"))
ACTION = dbutils.widgets.get("action")
FORCE = dbutils.widgets.get("force") == "true"
DATE, START, END = widget_date("date"), widget_date("start"), widget_date("end")
print(f"project {cfg.project.name}, lakehouse {cfg.lakehouse}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run

# COMMAND ----------


def progress(message, *fraction):
    print(f"  {message}")


if ACTION == "run":
    day = DATE or pipeline.latest_complete_day()
    print(f"run {day}" + (" (force)" if FORCE else ""))
    summaries = pipeline.run(spark, cfg, day, force=FORCE, progress=progress)
elif ACTION == "backfill":
    if START is None or END is None:
        raise UsageError("backfill: set both widgets start and end (YYYY-MM-DD)")
    print(f"backfill {START} .. {END}")
    summaries = [pipeline.backfill(spark, cfg, START, END, progress=progress)]
elif ACTION == "validate":
    first, last = (START, END) if START or END else (DATE, DATE)
    if first is None or last is None:
        raise UsageError("validate: set start and end, or date (YYYY-MM-DD)")
    print(f"validate {first} .. {last}")
    summaries = [pipeline.validate(spark, cfg, first, last, progress=progress)]
else:
    raise UsageError(f"widget action: expected run, backfill or validate, got {ACTION!r}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Summary

# COMMAND ----------

summary_rows = pd.DataFrame([{
    "run_id": s.run_id, "logical_date": s.logical_date, "status": s.status,
    "seconds": round(s.duration_seconds, 1),
    "quarantined": "; ".join(f"{t}: {', '.join(d.isoformat() for d in ds)}" for t, ds in s.quarantined.items()),
    "champion": s.count_models("champion"), "rejected": s.count_models("rejected"),
    "failed_models": s.count_models("failed"), "skipped_models": s.count_models("skipped"),
    "waiting_models": s.count_models("waiting"),
    "warnings": "\n".join(s.warnings), "notes": "\n".join(s.notes),
} for s in summaries])
display(summary_rows)

outcomes = [m for s in summaries for m in s.models]
if outcomes:
    display(pd.DataFrame([{
        "model_id": m.model_id, "segment": m.segment, "result": m.status, "metric": m.metric, "value": m.value,
        "champion_value": m.champion_value, "version": m.version, "reason": m.reason,
    } for m in outcomes]))
for s in summaries:
    for failure in s.validation_failures:
        print(f"{'blocked' if failure.severity == 'block' else 'warning'}: {failure.message}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What this run recorded in `runs`

# COMMAND ----------

run_ids = [s.run_id for s in summaries if s.run_id != "-"]
if not run_ids:
    print("nothing ran: " + "; ".join(n for s in summaries for n in s.notes))
elif not tables.exists(catalog.Catalog.of(cfg).runs, spark):
    print(f"runs: no table at {catalog.Catalog.of(cfg).runs}")
else:
    recorded = (tables.read(spark, catalog.Catalog.of(cfg).runs)
                .where(F.col("run_id").isin(run_ids))
                .withColumn("seconds", F.round(F.col("ended_at").cast("double") - F.col("started_at").cast("double"), 1))
                .orderBy("logical_date", "ended_at")
                .select("run_id", "logical_date", "stage", "status", "seconds", "rows_in", "rows_out", "detail", "error"))
    display(recorded)
