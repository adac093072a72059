"""A demo night on each storage backend (delta-rs and delta-spark, one SparkSession with
Delta's jars), and lakehouses moving between them: written by one, checkpointed and
vacuumed, continued by the other, read back by delta-rs without Spark."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pytest

from engine import pipeline, registry, tables
from engine.catalog import Catalog
from engine.config import load_config
from engine.demo import generate
from tests.conftest import on

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 16)  # the module night; the demo source has one more day for the next one
NEXT = END + dt.timedelta(days=1)
DAYS = 16
PROJECT = """\
name: backends
lakehouse: ./lakehouse
sources:
  orders: {format: parquet, path: ./lakehouse/raw/orders}
  weather: {format: delta, path: ./lakehouse/raw/weather}
reports: {nightly: false}
plugins: [retrain_demo]
"""
MODEL = """\
model_id: late_delivery
feature_set: orders
features: [distance_km, courier_load, items, amount, hour_of_day, promised_minutes, temp_c]
label: late
task: classification
estimator: xgboost.XGBClassifier
params: {n_estimators: 10, learning_rate: 0.3, max_depth: 3}
train_window_days: 8
eval_window_days: 3
refit: false
metric: auc
slo: {min: 0.5}
promotion: {min_delta: 0.005}
min_rows: 100
max_quarantined_share: 0.8
"""
# What each backend's commits say in commitInfo.engineInfo.
ENGINE = {"delta-rs": "delta-rs", "delta-spark": "Delta-Lake"}
TABLES = ("features/orders", "training_sets", "registry", "runs", "validation/partitions", "validation/summaries")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends_source")
    generate(str(root / "lakehouse"), NEXT, days=DAYS + 1, seed=11)
    return root / "lakehouse"


def project(root: Path, lakehouse: Path):
    conf = root / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "project.yaml").write_text(PROJECT)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    (conf / "models" / "late_delivery.yaml").write_text(MODEL)
    shutil.copytree(lakehouse, root / "lakehouse")
    return load_config(conf)


@pytest.fixture(scope="module", params=["delta-rs", "delta-spark"])
def night(request, spark, source, tmp_path_factory):
    """The night of END from raw data on one backend (timed), then a re-run of it."""
    name = request.param
    cfg = project(tmp_path_factory.mktemp(f"night-{name}"), source)
    with on(spark, name):
        started = time.monotonic()
        [summary] = pipeline.run(spark, cfg, END)
        seconds = time.monotonic() - started
        print(f"\ndemo night on {name}: {seconds:.1f} s ({DAYS} days of orders, 1 model)")
        before = state(spark, cfg)
        [again] = pipeline.run(spark, cfg, END)
        after = state(spark, cfg)
    return name, cfg, summary, again, before, after


def state(spark, cfg):
    """Every table's version and rows (sorted), through the session's backend."""
    out = {}
    for name in TABLES:
        path = Catalog.of(cfg).path(name)
        if tables.exists(path, spark):
            rows = tables.read(spark, path).collect()
            out[name] = (tables.version(path, spark), sorted(map(repr, rows)))
    return out


def engines(path: str) -> set[str]:
    """Which writers committed to a table (from its JSON commits)."""
    found = set()
    for commit in sorted((Path(path) / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info:
                text = json.dumps(info)
                found |= {name for name, mark in ENGINE.items() if mark in text}
    return found


def test_demo_night_features_validation_training_registry(spark, night):
    name, cfg, summary, _, _, _ = night
    assert summary.status in ("success", "blocked"), summary
    lake = Catalog.of(cfg)
    with on(spark, name):
        assert len(tables.partition_values(lake.features("orders"), spark=spark)) == DAYS
        statuses = {r["status"] for r in tables.read_rows(lake.validation_partitions, spark=spark).to_pylist()}
        assert statuses <= {"valid", "quarantined"} and "valid" in statuses
        assert tables.partition_values(lake.training_sets, "model_id", spark=spark) == ["late_delivery"]
        [model] = summary.models
        assert model.status == "champion", summary.models
        [champion] = registry.champions(spark, cfg, "late_delivery")
        assert champion.lineage.training_sets_version == tables.version(lake.training_sets, spark)
        registry.load_model(lake, champion)  # the artifact verifies against its sha256
    for table in ("features/orders", "training_sets", "registry", "runs"):
        assert engines(lake.path(table)) == {name}, table  # written by this backend only


def test_rerun_of_a_processed_night_changes_nothing(night):
    _, _, _, again, before, after = night
    assert again.status == "skipped"
    assert after == before


def test_lakehouse_moves_to_the_other_backend_after_checkpoints_and_vacuum(spark, night, tmp_path):
    first, done, _, _, _, _ = night
    then = {"delta-rs": "delta-spark", "delta-spark": "delta-rs"}[first]
    cfg = project(tmp_path, Path(done.lakehouse))  # a copy of the night `first` wrote
    lake = Catalog.of(cfg)
    from deltalake import DeltaTable

    with on(spark, first):
        for t in TABLES:  # keep no removed file: vacuum deletes what compaction just removed
            DeltaTable(lake.path(t)).alter.set_table_properties(
                {"delta.deletedFileRetentionDuration": "interval 0 seconds", "delta.checkpointInterval": "2"})
        done = [tables.maintain(lake.path(t), checkpoint_every=1, max_files=1, spark=spark) for t in TABLES]
        assert sum(d.vacuumed for d in done) > 0 and sum(d.compacted for d in done) > 0
    assert any((Path(lake.path(t)) / "_delta_log").glob("*.checkpoint.parquet") for t in TABLES)
    with on(spark, then):
        [summary] = pipeline.run(spark, cfg, NEXT)
        assert summary.status in ("success", "blocked"), summary
        assert len(tables.partition_values(lake.features("orders"), spark=spark)) == DAYS + 1
        for t in ("features/orders", "runs"):  # and the other backend maintains what it continued
            tables.maintain(lake.path(t), checkpoint_every=1, max_files=1, spark=spark)
        [champion] = registry.champions(spark, cfg, "late_delivery")
        registry.load_model(lake, champion)
    for table in ("features/orders", "registry", "runs"):
        assert engines(lake.path(table)) == {first, then}, table
    # and delta-rs alone (no Spark: what `status` and `report` use) reads every table
    for t in TABLES:
        assert DeltaTable(lake.path(t)).to_pyarrow_table().num_rows > 0, t
    runs = tables.read_rows(lake.runs).to_pylist()
    assert {r["logical_date"] for r in runs if r["stage"] == "run"} == {END, NEXT}
