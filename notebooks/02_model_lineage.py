# Databricks notebook source
# MAGIC %md
# MAGIC # Model lineage
# MAGIC
# MAGIC 1. **Registry**: every version of a model, per segment, with its status and metrics.
# MAGIC 2. **Lineage**: a model version's registry row names the exact `training_sets` and feature table
# MAGIC    versions it was built from (plus the validation run, the window and the quarantined days left out).
# MAGIC    We re-read those versions (Delta time travel) and check that they give back exactly the rows the
# MAGIC    model was trained and evaluated on, and verify the artifact's sha256.
# MAGIC 3. **Champion vs challengers** on the latest eval window: every candidate's artifact scored on the
# MAGIC    same rows (the eval split of the model's most recent training set).
# MAGIC
# MAGIC Widgets: **conf**; **model_id** (empty: the first model in the registry); **segment** (empty: the first
# MAGIC segment with a champion); **version** (empty: that segment's champion); **challengers** (how many
# MAGIC other recent versions to compare with the champion).

# COMMAND ----------

dbutils.widgets.text("conf", "../conf", "conf directory")
dbutils.widgets.text("model_id", "", "model (empty: first)")
dbutils.widgets.text("segment", "", "segment (empty: first champion)")
dbutils.widgets.text("version", "", "version (empty: champion)")
dbutils.widgets.text("challengers", "3", "challengers to compare")

# COMMAND ----------

import os
import sys

try:
    import engine  # noqa: F401  (installed as a library, or the repository root is on sys.path)
except ImportError:
    sys.path.insert(0, os.path.dirname(os.getcwd()))  # this notebook's folder is <repo>/notebooks

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from engine import registry, tables, training_sets
from engine.catalog import Catalog
from engine.config import HIGHER_IS_BETTER, load_config
from engine.projection import design_matrix, frame_from_maps
from engine.records import ModelStatus
from engine.training.fit import predict_scores
from engine.training.metrics import score

cfg = load_config(dbutils.widgets.get("conf"))
MODEL = dbutils.widgets.get("model_id").strip()
SEGMENT = dbutils.widgets.get("segment").strip()
VERSION = dbutils.widgets.get("version").strip()
try:
    CHALLENGERS = int(dbutils.widgets.get("challengers").strip() or 0)
except ValueError:
    raise ValueError(f"widget challengers: expected a whole number, got {dbutils.widgets.get('challengers')!r}") from None

cat = Catalog.of(cfg)
print(f"project {cfg.project.name}, lakehouse {cfg.lakehouse}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Registry

# COMMAND ----------

entries = []
if not tables.exists(cat.registry, spark):
    print(f"registry: no table at {cat.registry} yet (no model has been trained; run the pipeline first)")
else:
    entries = registry.entries(spark, cfg)
    known = sorted({e.model_id for e in entries})
    if not MODEL:
        with_champion = sorted({e.model_id for e in entries if e.status == ModelStatus.CHAMPION})
        MODEL = (with_champion or known or [""])[0]
    if MODEL not in known:
        print(f"registry: no rows for model {MODEL!r}; models in the registry: {', '.join(known) or 'none'}")
        entries = []
    else:
        entries = [e for e in entries if e.model_id == MODEL]

model_entries = entries
if model_entries:
    overview = pd.DataFrame([{
        "model_id": e.model_id, "segment": e.segment, "version": e.version, "status": e.status.value,
        "logical_date": e.logical_date, "metric": e.metric, "metric_value": e.metric_value,
        "champion_version": e.champion_version, "champion_value": e.champion_value,
        "n_train": e.n_train, "n_eval": e.n_eval, "training_sets_version": e.training_sets_version,
        "feature_version": e.feature_version, "reason": e.reason,
    } for e in sorted(model_entries, key=lambda e: (e.segment, e.version), reverse=False)])
    print(f"{MODEL}: {len(model_entries)} registry rows, "
          f"{sum(1 for e in model_entries if e.status == ModelStatus.CHAMPION)} champions")
    display(overview)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Lineage of one model version

# COMMAND ----------

target = None
if model_entries:
    champions = sorted((e for e in model_entries if e.status == ModelStatus.CHAMPION), key=lambda e: e.segment)
    segment = SEGMENT or (champions[0].segment if champions else model_entries[0].segment)
    pair = [e for e in model_entries if e.segment == segment]
    if not pair:
        print(f"{MODEL}: no segment {segment!r}; segments: {', '.join(sorted({e.segment for e in model_entries}))}")
    elif VERSION:
        target = next((e for e in pair if e.version == VERSION), None)
        if target is None:
            print(f"{MODEL}/{segment}: no version {VERSION!r}; versions: {', '.join(e.version for e in pair)}")
    else:
        with_artifact = [e for e in pair if e.artifact_uri]
        target = next((e for e in pair if e.status == ModelStatus.CHAMPION), None) or (
            max(with_artifact, key=lambda e: e.version) if with_artifact else None)
        if target is None:
            print(f"{MODEL}/{segment}: no version has an artifact (every one failed)")
    if target is not None and not target.artifact_uri:
        print(f"{MODEL}/{segment} {target.version} is {target.status.value} and has no artifact: {target.reason}")
        target = None

lin = meta = None
if target is not None:
    meta = registry.lineage(spark, cfg, target.model_id, target.segment, target.version).metadata
    lin = meta.lineage
    display(pd.DataFrame([{
        "model_id": meta.model_id, "segment": meta.segment, "version": meta.version, "status": target.status.value,
        "run_id": lin.run_id,
        "training_sets": f"{cat.under(lin.training_sets)}@v{lin.training_sets_version}",
        "feature_table": f"{cat.under(lin.feature_table)}@v{lin.feature_version}",
        "validation_run_id": lin.validation_run_id,
        "train_window": f"{lin.window.train_start} .. {lin.window.train_end}",
        "eval_window": f"{lin.window.eval_start} .. {lin.window.eval_end}",
        "excluded_days": ", ".join(d.isoformat() for d in lin.excluded_days),
        "refit": meta.refit,
        "artifact_uri": registry.artifact(cat, target), "sha256": target.sha256,
    }]))

# COMMAND ----------

# MAGIC %md
# MAGIC ### Re-read the exact rows
# MAGIC
# MAGIC The recorded `training_sets` version must hold `n_train` + `n_eval` rows of this pair, and
# MAGIC re-deriving them from the recorded feature table version (same window, same exclusions, same
# MAGIC projection) must give the very same rows. Loading the artifact verifies its sha256 first.

# COMMAND ----------


def comparable(df):
    """Rows of a training set with the maps as sorted entry arrays (set operations reject maps)."""
    return df.select("segment", "split", "ds", "row_key", "label",
                     F.array_sort(F.map_entries("features")).alias("features"),
                     F.array_sort(F.map_entries("categories")).alias("categories"))


lineage_checks = None
if lin is not None:
    model_object, _ = registry.load_model(cat, target)  # verifies the sha256
    recorded = comparable(training_sets.training_rows(spark, cat, meta))
    rederived = comparable(training_sets.feature_rows(spark, cat, meta))
    splits = {r["split"]: r["count"] for r in recorded.groupBy("split").count().collect()}
    only_recorded = recorded.exceptAll(rederived).count()
    only_rederived = rederived.exceptAll(recorded).count()
    lineage_checks = pd.DataFrame([
        {"check": f"train rows in training_sets@v{lin.training_sets_version}",
         "found": splits.get("train", 0), "expected": target.n_train},
        {"check": f"eval rows in training_sets@v{lin.training_sets_version}",
         "found": splits.get("eval", 0), "expected": target.n_eval},
        {"check": f"rows not re-derived from {lin.feature_table}@v{lin.feature_version}",
         "found": only_recorded, "expected": 0},
        {"check": f"re-derived rows not in training_sets@v{lin.training_sets_version}",
         "found": only_rederived, "expected": 0},
        {"check": "artifact sha256 verified", "found": 1, "expected": 1},
    ])
    lineage_checks["ok"] = lineage_checks["found"] == lineage_checks["expected"]
    print("lineage verified" if lineage_checks["ok"].all() else "LINEAGE MISMATCH: see the checks below")
    display(lineage_checks)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Champion vs challengers on the latest eval window
# MAGIC
# MAGIC The latest eval window is the eval split of this model's most recent training set (the newest
# MAGIC registry row of the segment that has one). The champion and the most recent other versions with an
# MAGIC artifact (challengers, rejected and retired ones) are all scored on those rows, here on the driver.
# MAGIC
# MAGIC A version's artifact was fit on its window up to `fit_until` (its eval_end when it was refit): on those
# MAGIC days its `window_value` is in-sample. `unseen_value` scores it on the rows after `fit_until` only. The
# MAGIC promotion gate compares the champion and the new model on the rows the champion did not train on (the
# MAGIC new model by its fit on the train split, not by the refit artifact); its numbers are shown last.

# COMMAND ----------

comparison = None
if target is not None:
    pair = [e for e in model_entries if e.segment == target.segment]
    built = [e for e in pair if e.training_sets_version is not None and e.run_id]
    window = max(built, key=lambda e: (e.logical_date, e.version))  # the target itself is one of them
    eval_rows = (tables.read(spark, cat.under(window.training_sets_path), version=window.training_sets_version,
                             partitions=[window.model_id], column="model_id")
                 .where((F.col("segment") == window.segment) & (F.col("run_id") == window.run_id)
                        & (F.col("split") == "eval"))
                 .select("ds", "label", "features", "categories")
                 .toPandas())
    y = pd.to_numeric(eval_rows["label"]).to_numpy(dtype=float)
    champion = next((e for e in pair if e.status == ModelStatus.CHAMPION), None)
    others = sorted((e for e in pair if e.status != ModelStatus.CHAMPION and e.artifact_uri),
                    key=lambda e: e.version, reverse=True)[:max(CHALLENGERS, 0)]
    candidates = ([champion] if champion is not None and champion.artifact_uri else []) + others
    rows = []
    for e in candidates:
        model_object, candidate = registry.load_model(cat, e)
        frame = frame_from_maps(eval_rows["features"], eval_rows["categories"], candidate.feature_types)
        X = design_matrix(frame, candidate.features, candidate.feature_types, candidate.kind, candidate.categories)
        predicted = predict_scores(model_object, candidate.task, X)
        fit_until = e.eval_end if e.refit else e.train_end  # the last day its artifact was fit on
        unseen = (eval_rows["ds"] > fit_until).to_numpy()
        rows.append({
            "version": e.version, "status": e.status.value, "metric": e.metric,
            "window_value": score(e.metric, y, predicted),
            "fit_until": fit_until, "unseen_rows": int(unseen.sum()),
            "unseen_value": score(e.metric, y[unseen], predicted[unseen]) if unseen.any() else None,
            "recorded_value": e.metric_value, "recorded_window": f"{e.eval_start} .. {e.eval_end}",
            "params": str(e.params),
        })
    if not rows:
        print(f"{MODEL}/{target.segment}: no version with an artifact to compare")
    else:
        comparison = pd.DataFrame(rows)
        higher = HIGHER_IS_BETTER[rows[0]["metric"]]
        best = comparison["window_value"].max() if higher else comparison["window_value"].min()
        comparison["best_on_window"] = comparison["window_value"] == best
        if champion is not None:
            base = comparison.loc[comparison["version"] == champion.version, "window_value"].iloc[0]
            comparison["vs_champion"] = comparison["window_value"] - base
        print(f"{MODEL}/{target.segment}: {len(eval_rows)} eval rows of {window.eval_start} .. {window.eval_end} "
              f"(training_sets@v{window.training_sets_version})")
        display(comparison)
        if window.champion_version:
            print(f"the gate on this window: {window.version} {window.status.value}: {window.reason}")
            display(pd.DataFrame([{
                "version": window.version, "status": window.status.value, "gate_value": window.gate_value,
                "champion_version": window.champion_version, "champion_value": window.champion_value,
                "gate_rows": window.gate_rows, "reason": window.reason,
            }]))
