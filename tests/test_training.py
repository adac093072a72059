"""TRAIN: selection on the latest window, isolation of failing pairs, the promotion gate,
artifacts, one Spark job for all pairs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from engine import registry
from engine.catalog import Catalog
from engine.config import load_config
from engine.training import model_version, train_models
from engine.records import ModelStatus
from engine.training.gate import decide
from engine.training.train import assign_tasks, slot_keys
from engine.training_sets import build_training_sets
from tests.test_training_data import day, make_project, model_yaml, shop_rows, write_features


def run(spark, cfg, date, run_id, excluded=None, **kw):
    models = list(cfg.models.values())
    sets = build_training_sets(spark, cfg, models, date, run_id, excluded or {})
    return sets, {(o.model_id, o.segment): o for o in train_models(spark, cfg, models, date, run_id, sets, "val-1", **kw)}


def by_key(entries):
    return {(e.model_id, e.segment, e.version): e for e in entries}


# --------------------------------------------------------------------------- selection


def test_params_chosen_on_the_latest_window_not_the_fold_average(spark, tmp_path):
    """The relation y = 3x breaks in the latest days (y is flat there). Light regularisation
    wins every older fold, so a fold average picks it; the engine scores on the latest eval
    window only and picks the heavy one."""
    rng = np.random.default_rng(1)

    def y_fn(x, d):
        if d >= day(10):
            return 1.5 + rng.normal(0, 0.05, len(x))
        return 3 * x + rng.normal(0, 0.05, len(x))

    cfg = make_project(tmp_path, [model_yaml("drift", features=["x"], grid={"alpha": [0.01, 1e6]}, refit=False)])
    pdf = shop_rows([day(i) for i in range(14)], y_fn=y_fn)
    write_features(spark, cfg, pdf)
    sets, out = run(spark, cfg, day(13), "sel")  # eval window: days 10..12, train 3..9
    assert out[("drift", "all")].status == "champion"
    e = registry.champions(spark, cfg, "drift")[0]
    assert e.params == {"alpha": 1e6}

    # What a fold average over the window would pick: time folds of 3 days, each fit on the
    # days before it, MAE averaged over the folds.
    from sklearn.linear_model import Ridge

    window = pdf[(pdf.ds >= day(3)) & (pdf.ds <= day(12))]
    folds = [(day(4), day(6)), (day(7), day(9)), (day(10), day(12))]
    avg = {}
    for alpha in (0.01, 1e6):
        maes = []
        for lo, hi in folds:
            fit = window[window.ds < lo]
            test = window[(window.ds >= lo) & (window.ds <= hi)]
            pred = Ridge(alpha=alpha).fit(fit[["x"]], fit.y).predict(test[["x"]])
            maes.append(np.mean(np.abs(test.y - pred)))
        avg[alpha] = np.mean(maes)
    assert avg[0.01] < avg[1e6]  # the fold average prefers the light one...
    grid = {g["params"]["alpha"]: g["value"] for g in
            registry.load_model(Catalog.of(cfg), e)[1].grid}
    assert grid[1e6] < grid[0.01]  # ...the latest window prefers the heavy one
    assert e.metric_value == pytest.approx(grid[1e6])


# --------------------------------------------------------------------------- isolation


def test_a_failing_pair_fails_alone_with_its_reason(spark, tmp_path):
    cfg = make_project(tmp_path, [
        model_yaml("clf", label="late", task="classification", estimator="sklearn.LogisticRegression", grid={},
                   metric="auc", segment_by="region", features=["x"], min_rows=30),
        model_yaml("reg", segment_by="region", features=["x", "noise"], min_rows=30),
    ])
    regions = ("north", "south", "east", "west")
    pdf = shop_rows([day(i) for i in range(14)], per_region=12, regions=regions)
    pdf.loc[pdf.region == "south", "late"] = 0  # one label class
    pdf = pdf[(pdf.region != "east") | (pdf.index % 6 == 0)]  # 2 rows a day: too few
    pdf.loc[(pdf.region == "west") & (pdf.ds == day(5)), "noise"] = np.inf  # non-finite feature
    write_features(spark, cfg, pdf)

    _, out = run(spark, cfg, day(13), "iso")
    status = {k: o.status for k, o in out.items()}
    assert status == {
        ("clf", "north"): "champion", ("clf", "south"): "failed", ("clf", "east"): "failed",
        ("clf", "west"): "champion",
        ("reg", "north"): "champion", ("reg", "south"): "champion", ("reg", "east"): "failed",
        ("reg", "west"): "failed",
    }
    assert out[("clf", "south")].reason == "one label class in the train split (all 0)"
    # a full window that is too thin fails; a window that the data has not filled yet waits
    assert out[("clf", "east")].reason == "14 training rows in 2026-03-03..2026-03-09 < min_rows 30"
    assert out[("reg", "west")].reason == "feature 'noise' has 12 infinite value(s)"
    rows = by_key(registry.entries(spark, cfg))
    failed = rows[("reg", "west", model_version(day(13)))]
    assert failed.status == "failed" and failed.reason == out[("reg", "west")].reason and failed.artifact_uri is None
    assert rows[("reg", "north", model_version(day(13)))].status == "champion"


# --------------------------------------------------------------------------- the gate


def test_promotion_gate_both_ways(spark, tmp_path):
    def configure(**kw):
        return make_project(tmp_path, [model_yaml("m", features=["x"], grid={}, **kw)])

    cfg = configure(params={"alpha": 1e6})  # a poor model (predicts about the mean)
    write_features(spark, cfg, shop_rows([day(i) for i in range(20)], regions=("north",)))

    _, out = run(spark, cfg, day(14), "d14")
    assert out[("m", "all")].status == "champion" and out[("m", "all")].reason.startswith("first model")
    v14, v15, v16, v17 = (model_version(day(i)) for i in (14, 15, 16, 17))

    cfg = configure(params={"alpha": 0.01})  # a good one: beats the champion
    _, out = run(spark, cfg, day(15), "d15")
    o = out[("m", "all")]
    assert o.status == "champion" and o.value < o.champion_value
    rows = by_key(registry.entries(spark, cfg))
    assert rows[("m", "all", v15)].status == "champion" and rows[("m", "all", v15)].champion_version == v14
    assert rows[("m", "all", v14)].status == "retired" and f"replaced by {v15}" in rows[("m", "all", v14)].reason

    cfg = configure(params={"alpha": 1e6})  # worse than the champion: rejected with both numbers
    _, out = run(spark, cfg, day(16), "d16")
    o = out[("m", "all")]
    assert o.status == "rejected" and o.value > o.champion_value
    assert f"mae {o.value:.4f} vs champion {v15} {o.champion_value:.4f}" in o.reason
    rows = by_key(registry.entries(spark, cfg))
    assert rows[("m", "all", v16)].status == "rejected" and rows[("m", "all", v16)].champion_value == o.champion_value
    assert [e.version for e in registry.champions(spark, cfg, "m")] == [v15]

    # Both were scored on the same rows of the latest eval window (days 13..15): those the
    # champion, refit through its eval_end (day 14), was not trained on, i.e. day 15.
    champ, new = rows[("m", "all", v15)], rows[("m", "all", v16)]
    assert (champ.eval_end, new.eval_start, new.eval_end) == (day(14), day(13), day(15))
    model, meta = registry.load_model(Catalog.of(cfg), champ)
    window = shop_rows([day(i) for i in range(20)], regions=("north",))
    unseen = window[window.ds == day(15)]
    assert new.gate_rows == len(unseen) == 20
    assert np.mean(np.abs(unseen.y - model.predict(unseen[["x"]]))) == pytest.approx(o.champion_value)
    assert "on the 20 eval rows after 2026-03-15, which the champion was not trained on" in o.reason
    assert new.gate_value == pytest.approx(o.value) and new.metric_value != pytest.approx(o.value)

    # Re-running a date replaces its rows; a re-run that loses gives the crown back.
    cfg = configure(params={"alpha": 0.01})
    _, out = run(spark, cfg, day(15), "d15-again")
    assert out[("m", "all")].status == "champion" and out[("m", "all")].champion_value is not None
    cfg = configure(params={"alpha": 1e6}, promotion={"min_delta": 0.01})
    _, out = run(spark, cfg, day(15), "d15-third")
    assert out[("m", "all")].status == "rejected"
    rows = registry.entries(spark, cfg, "m")
    assert len([e for e in rows if e.version == v15]) == 1
    assert [e.version for e in registry.champions(spark, cfg, "m")] == [v14]


def test_gate_decisions():
    from engine.config import ModelConfig

    m = ModelConfig(model_id="m", feature_set="s", features=["x"], label="y", task="classification",
                    estimator="xgboost.XGBClassifier", train_window_days=10, eval_window_days=3, metric="auc",
                    slo={"min": 0.7}, promotion={"min_delta": 0.01})
    assert decide(m, value=0.75).status == ModelStatus.CHAMPION
    assert decide(m, value=0.65).status == ModelStatus.REJECTED
    assert decide(m, value=math.nan).status == ModelStatus.REJECTED
    assert decide(m, value=0.795, champion_version="v1", champion_value=0.79).status == "rejected"  # < min_delta
    assert decide(m, value=0.81, champion_version="v1", champion_value=0.79).status == "champion"
    assert decide(m, value=0.78, champion_version="v1", champion_value=0.79).status == "rejected"
    broken = decide(m, value=0.75, champion_version="v1", champion_problem="ArtifactError: sha256 mismatch")
    assert broken.status == "champion" and "could not be scored" in broken.reason
    failed = decide(m, value=None, untrained=ModelStatus.FAILED, reason="one label class")
    assert (failed.status, failed.reason) == (ModelStatus.FAILED, "one label class")
    assert decide(m, value=None, untrained=ModelStatus.WAITING, reason="waiting").status == ModelStatus.WAITING
    assert decide(m, value=0.9, gate=False).status == "challenger"
    # the SLO is judged on the whole eval window, the comparison on the shared rows
    d = decide(m, value=0.75, champion_version="v1", champion_value=0.70, compared=0.68,
               basis="the 40 eval rows after 2026-03-10")
    assert d.status == "rejected"
    assert d.reason == ("auc 0.6800 vs champion v1 0.7000 on the 40 eval rows after 2026-03-10: "
                        "does not beat it by min_delta 0.01 (gain -0.0200)")
    assert decide(m, value=0.65, champion_version="v1", champion_value=0.50, compared=0.9).status == "rejected"


# --------------------------------------------------------------------------- artifacts


def test_artifacts_native_formats_and_metadata(spark, tmp_path):
    cfg = make_project(tmp_path, [
        model_yaml("xgb", label="late", task="classification", estimator="xgboost.XGBClassifier", metric="auc",
                   features=["x", "noise", "city"], grid={"max_depth": [2, 3]}, params={"n_estimators": 20}),
        model_yaml("hgb", estimator="sklearn.HistGradientBoostingRegressor", features=["x", "city"],
                   grid={"max_iter": [20]}, segment_by="region"),
    ])
    write_features(spark, cfg, shop_rows([day(i) for i in range(14)]))
    sets, out = run(spark, cfg, day(13), "art")
    assert {o.status for o in out.values()} == {"champion"}
    cat = Catalog.of(cfg)
    for e in registry.champions(spark, cfg):
        assert e.artifact_uri == f"artifacts/{e.model_id}/{e.segment}/{model_version(day(13))}"  # relative
        folder = Path(cat.under(e.artifact_uri))
        files = sorted(p.name for p in folder.iterdir())
        assert files == (["metadata.json", "model.ubj"] if e.model_id == "xgb" else ["metadata.json", "model.skops"])
        meta = json.loads((folder / "metadata.json").read_text())
        import hashlib

        assert meta["sha256"] == e.sha256 == hashlib.sha256((folder / meta["file"]).read_bytes()).hexdigest()
        assert meta["lineage"]["training_sets_version"] == sets.version == e.training_sets_version
        assert meta["lineage"]["feature_version"] == sets.feature_versions["shop"] == e.feature_version
        assert meta["lineage"]["validation_run_id"] == "val-1" == e.validation_run_id
        assert meta["eval_metrics"][e.metric] == pytest.approx(e.metric_value)
        assert set(meta["train_metrics"]) == ({"auc", "logloss", "accuracy", "f1"} if e.task == "classification"
                                               else {"rmse", "mae", "r2"})
        assert e.n_train > 0 and e.n_eval > 0 and e.age_days(e.trained_at.date()) == 0
    xgb = registry.champions(spark, cfg, "xgb")[0]
    model, meta = registry.load_model(cat, xgb)
    assert meta.categories == {"city": ["a", "b", "c"]} and xgb.params["max_depth"] in (2, 3)
    assert type(model).__name__ == "XGBClassifier"

    # Re-training the same rows gives the same model, byte for byte (rows are put in a fixed
    # order before fitting; random_state defaults to 0); the re-run replaces the version.
    models = list(cfg.models.values())
    train_models(spark, cfg, models, day(13), "art-again", sets, "val-1")
    again = registry.entries(spark, cfg, "xgb")
    assert len(again) == 1 and again[0].sha256 == xgb.sha256 and again[0].run_id == "art-again"


def test_one_spark_job_trains_every_pair(spark, tmp_path):
    cfg = make_project(tmp_path, [model_yaml(f"m{i}", segment_by="region", features=["x"]) for i in range(4)])
    write_features(spark, cfg, shop_rows([day(i) for i in range(14)], per_region=6))
    models = list(cfg.models.values())
    sets = build_training_sets(spark, cfg, models, day(13), "jobs", {})
    sc = spark.sparkContext
    sc.setJobGroup("train-jobs", "train")
    try:
        out = train_models(spark, cfg, models, day(13), "jobs", sets, None)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert len(out) == 8 and {o.status for o in out} == {"champion"}
    assert len(sc.statusTracker().getJobIdsForGroup("train-jobs")) == 1


def test_pairs_are_placed_on_planned_tasks(spark):
    keys = slot_keys(8)
    got = spark.createDataFrame([(k,) for k in keys], "k int").select(F.expr("pmod(hash(k), 8)")).collect()
    assert [r[0] for r in got] == list(range(8))
    tasks = assign_tasks({("a", "1"): 100, ("a", "2"): 60, ("a", "3"): 50, ("b", "1"): 10}, 2)
    assert tasks[("a", "1")] != tasks[("a", "2")] and tasks[("a", "2")] == tasks[("a", "3")]


def test_registered_estimator_trains_on_executors(spark, tmp_path):
    from sklearn.linear_model import Lasso

    from engine.training.estimators import ESTIMATORS, register_estimator

    register_estimator("custom.Lasso", "regression", lambda **p: Lasso(**p))
    try:
        cfg = make_project(tmp_path, [model_yaml("lasso", estimator="custom.Lasso", grid={"alpha": [0.001]})])
        write_features(spark, cfg, shop_rows([day(i) for i in range(14)], per_region=5))
        _, out = run(spark, cfg, day(13), "custom")
        assert out[("lasso", "all")].status == "champion"
    finally:
        ESTIMATORS.pop("custom.Lasso")
    with pytest.raises(Exception, match="unknown estimator 'custom.Lasso'"):
        load_config(cfg.root)


def test_cold_start_pairs_wait_instead_of_failing(spark, tmp_path):
    cfg = make_project(tmp_path, [model_yaml("m", features=["x"], min_rows=30)])
    write_features(spark, cfg, shop_rows([day(i) for i in range(7, 14)], per_region=3, regions=("north",)))
    _, out = run(spark, cfg, day(13), "cold")  # window 2026-03-04..2026-03-13; data from 2026-03-08
    o = out[("m", "all")]
    assert o.status == "waiting" and o.reason == "waiting for history: 9 training rows in 2026-03-04..2026-03-10 < min_rows 30"
    [row] = registry.entries(spark, cfg)
    assert row.status is ModelStatus.WAITING and row.artifact_uri is None and row.reason == o.reason


def test_skipped_models_are_reported(spark, tmp_path):
    cfg = make_project(tmp_path, [model_yaml("m")])
    write_features(spark, cfg, shop_rows([day(i) for i in range(14)], per_region=3))
    lost = {day(i) for i in range(4, 9)}
    _, out = run(spark, cfg, day(13), "skip", {"shop": lost})
    assert out[("m", "*")].status == "skipped" and "quarantined" in out[("m", "*")].reason
    assert registry.entries(spark, cfg) == []


def test_metrics_match_scikit_learn():
    from sklearn import metrics as skm

    from engine.training.metrics import score

    rng = np.random.default_rng(3)
    y = (rng.random(300) > 0.6).astype(float)
    p = np.round(np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1), 2)  # rounded: ties
    assert score("auc", y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert score("logloss", y, p) == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert score("accuracy", y, p) == pytest.approx(skm.accuracy_score(y, p >= 0.5))
    assert score("f1", y, p) == pytest.approx(skm.f1_score(y, p >= 0.5))
    t = rng.normal(size=200)
    q = t + rng.normal(scale=0.5, size=200)
    assert score("rmse", t, q) == pytest.approx(np.sqrt(skm.mean_squared_error(t, q)))
    assert score("mae", t, q) == pytest.approx(skm.mean_absolute_error(t, q))
    assert score("r2", t, q) == pytest.approx(skm.r2_score(t, q))
    assert math.isnan(score("auc", np.ones(5), np.linspace(0, 1, 5)))


def test_pair_timeout_is_checked_between_fits(tmp_path):
    import pandas as pd

    from engine.config import ModelConfig
    from engine.records import Lineage, Window
    from engine.training.estimators import get_estimator
    from engine.training.fit import ModelPlan, fit_pair

    m = ModelConfig(model_id="m", feature_set="s", features=["x"], label="y", task="regression",
                    estimator="sklearn.Ridge", grid={"alpha": [0.1, 1.0, 10.0]}, train_window_days=4,
                    eval_window_days=1, metric="mae", min_rows=5)
    window = Window(day(0), day(2), day(3), day(3))
    lineage = Lineage("r", "training_sets", 0, "s", "features/s", 0, None, window)
    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"split": ["train"] * 30 + ["eval"] * 10, "x": rng.uniform(size=40)})
    pdf["label"] = 2 * pdf.x

    def plan(timeout):
        return ModelPlan(m, get_estimator(m.estimator), {"x": "numeric"}, "v1", "r", day(4),
                         Catalog(str(tmp_path / "lakehouse")), lineage, timeout_seconds=timeout)

    late = fit_pair(pdf, "all", plan(0.0), None)
    assert (late.status, late.reason) == ("failed", "exceeded the per-pair training timeout of 0 s after 0 of 3 grid points")
    assert late.artifact_uri is None
    ok = fit_pair(pdf, "all", plan(600.0), None)
    assert ok.status == "challenger" and ok.artifact_uri == "artifacts/m/all/v1"
    assert (tmp_path / "lakehouse" / "artifacts" / "m" / "all" / "v1" / "metadata.json").exists()
    short = fit_pair(pdf[pdf.split == "eval"], "all", plan(600.0), None)  # cold start: no train rows yet
    assert short.status == "waiting" and short.reason.startswith("waiting for history: 0 training rows in")


def test_equal_sklearn_models_serialize_to_equal_bytes():
    """skops names files after object ids and stamps times; the engine's artifacts do not, so
    re-running a night reproduces its artifacts (and their sha256) exactly."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from engine.training.artifacts import deserialize, serialize

    X = np.random.default_rng(0).random((300, 3))
    first, second = (HistGradientBoostingRegressor(random_state=0).fit(X, X[:, 0]) for _ in range(2))
    data = serialize(first, "sklearn")
    assert data == serialize(second, "sklearn")
    assert np.allclose(deserialize(data, "sklearn", "regression", "mem").predict(X), first.predict(X))
