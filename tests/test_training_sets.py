"""REDUCE: windows, matured labels only, quarantined days left out, one pass, idempotent."""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from engine import tables
from engine.catalog import Catalog
from engine.training_sets import build_training_sets, model_window
from tests.test_training_data import day, make_project, model_yaml, shop_rows, write_features

D = day(14)  # logical date; features exist for days 0..14


def _jobs(spark, group: str, fn):
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        result = fn()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return result, len(sc.statusTracker().getJobIdsForGroup(group))


@pytest.fixture(scope="module")
def project(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    models = [
        model_yaml("reg"),  # y: delay 1 day, window 10 days, eval 3
        model_yaml("clf", label="late", task="classification", estimator="sklearn.LogisticRegression",
                   grid={}, metric="auc", segment_by="region", features=["x", "city"]),  # delay 2 days
    ]
    cfg = make_project(root, models)
    pdf = shop_rows([day(i) for i in range(15)])
    pdf.loc[(pdf["ds"] == day(8)) & (pdf["region"] == "north") & (pdf.index % 2 == 0), "y"] = None  # unknown outcomes
    version = write_features(spark, cfg, pdf)
    return cfg, pdf, version


def _rows(spark, sets, model_id):
    df = tables.read(spark, sets.path, version=sets.version, partitions=[model_id], column="model_id")
    return df.toPandas()


def test_window_convention():
    from engine.config import ModelConfig

    m = ModelConfig(model_id="m", feature_set="s", features=["x"], label="y", task="regression",
                    estimator="sklearn.Ridge", train_window_days=10, eval_window_days=3, metric="mae")
    w = model_window(m, label_delay_days=2, logical_date=dt.date(2026, 3, 20))
    assert (w.eval_end, w.eval_start) == (dt.date(2026, 3, 18), dt.date(2026, 3, 16))
    assert (w.train_end, w.train_start) == (dt.date(2026, 3, 15), dt.date(2026, 3, 9))
    assert len(w.days) == 10 and w.split(dt.date(2026, 3, 15)) == "train" and w.split(dt.date(2026, 3, 19)) is None


def test_matured_labels_only_and_no_quarantined_day(spark, project):
    cfg, pdf, feature_version = project
    quarantined = {day(6), day(12)}
    sets = build_training_sets(spark, cfg, list(cfg.models.values()), D, "r1", {"shop": quarantined})
    assert sets.skipped == {}
    assert sets.feature_versions == {"shop": feature_version}

    reg = _rows(spark, sets, "reg")
    # y matures 1 day after ds: eval = days 11..13 (not 14), train = days 4..10; 6 and 12 quarantined.
    assert sorted(set(reg.loc[reg.split == "eval", "ds"])) == [day(11), day(13)]
    assert sorted(set(reg.loc[reg.split == "train", "ds"])) == [day(i) for i in (4, 5, 7, 8, 9, 10)]
    assert not set(reg["ds"]) & (quarantined | {day(14)})
    # every row of the used days, except the ones with an unknown (null) label
    used = pdf[pdf.ds.isin(sets.models["reg"].used_days)]
    assert len(reg) == used["y"].notna().sum() == sets.rows["reg"]
    assert (reg.run_id == "r1").all() and (reg.segment == "all").all()
    assert set(reg.row_key) == {f'{{"order_id":"{k}"}}' for k in used.loc[used.y.notna(), "order_id"]}

    clf = _rows(spark, sets, "clf")
    # late matures 2 days after ds: days 13 and 14 are immature.
    assert max(clf.ds) == day(12) - dt.timedelta(days=1)  # 12 is quarantined, so 11
    assert sorted(set(clf.loc[clf.split == "eval", "ds"])) == [day(10), day(11)]
    assert not set(clf["ds"]) & (quarantined | {day(13), day(14)})
    assert set(clf.segment) == {"north", "south"}
    assert sets.models["clf"].segments["north"] == {"train": 6 * 20, "eval": 2 * 20}

    # numeric features in `features`, string features in `categories`; labels as doubles
    row = clf.iloc[0]
    assert set(dict(row.features)) == {"x"} and set(dict(row.categories)) == {"city"}
    src = pdf.set_index("order_id").loc[row.row_key.split('"')[3]]
    assert dict(row.features)["x"] == src.x and dict(row.categories)["city"] == src.city
    assert row.label == float(src.late)


def test_share_of_quarantined_days_skips_a_model(spark, project):
    cfg, _, _ = project
    lost = {day(4), day(5), day(13)}  # 3 of reg's days 4..13 (30% > 20%); 2 of clf's 3..12 (20%, not more)
    sets = build_training_sets(spark, cfg, list(cfg.models.values()), D, "r2", {"shop": lost})
    assert set(sets.skipped) == {"reg"}
    assert "3 of the 10 days" in sets.skipped["reg"] and "30% > max_quarantined_share 20%" in sets.skipped["reg"]
    assert sets.built == ["clf"]

    # a model's own max_quarantined_share overrides the project's
    m = cfg.models["reg"].model_copy(update={"max_quarantined_share": 0.5})
    sets = build_training_sets(spark, cfg, [m], D, "r3", {"shop": lost})
    assert sets.skipped == {} and sets.built == ["reg"]


def test_rerun_is_idempotent_and_leaves_other_models_alone(spark, project):
    cfg, _, _ = project
    models = list(cfg.models.values())
    first = build_training_sets(spark, cfg, models, D, "a", {})
    again = build_training_sets(spark, cfg, models, D, "b", {})
    assert again.version == first.version + 1 and again.rows == first.rows
    latest = tables.read(spark, again.path, version=again.version)
    counts = {r["model_id"]: r["count"] for r in latest.groupBy("model_id").count().collect()}
    assert counts == again.rows  # replaced, not appended
    assert {r[0] for r in latest.select("run_id").distinct().collect()} == {"b"}

    # building only reg replaces reg's partition; clf's rows of run b stay
    only = build_training_sets(spark, cfg, [cfg.models["reg"]], D - dt.timedelta(days=1), "c", {})
    latest = tables.read(spark, only.path, version=only.version)
    runs = {(r[0], r[1]) for r in latest.select("model_id", "run_id").distinct().collect()}
    assert runs == {("reg", "c"), ("clf", "b")}
    # the old version is still readable (lineage)
    old = tables.read(spark, again.path, version=again.version).where(F.col("model_id") == "reg")
    assert old.count() == again.rows["reg"]


def test_spark_jobs_do_not_grow_with_models(spark, project):
    cfg, _, _ = project
    base = cfg.models["reg"]
    many = [base.model_copy(update={"model_id": f"m{i}", "train_window_days": 5 + i}) for i in range(6)]
    one, jobs_one = _jobs(spark, "sets-one", lambda: build_training_sets(spark, cfg, many[:1], D, "j1", {}))
    six, jobs_six = _jobs(spark, "sets-six", lambda: build_training_sets(spark, cfg, many, D, "j6", {}))
    assert len(six.built) == 6 and six.rows["m5"] > six.rows["m0"] > 0
    assert jobs_six == jobs_one <= 3


def test_missing_table_or_column_skips_with_reason(spark, tmp_path):
    cfg = make_project(tmp_path, [model_yaml("reg")])
    sets = build_training_sets(spark, cfg, [cfg.models["reg"]], D, "r", {})
    assert sets.version is None and "does not exist" in sets.skipped["reg"]

    pdf = shop_rows([day(i) for i in range(3)], per_region=2).drop(columns=["noise"])
    df = spark.createDataFrame(pdf, "order_id string, region string, x double, city string, y double, late int, ds date")
    tables.write(spark, df, Catalog.of(cfg).features("shop"), partition_by=["ds"])
    sets = build_training_sets(spark, cfg, [cfg.models["reg"]], day(2), "r", {})
    assert "has no column(s) ['noise']" in sets.skipped["reg"]
