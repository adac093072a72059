"""predict: each row scored by the champion of its segment, on the executors."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from engine import registry
from engine.catalog import Catalog
from engine.errors import ArtifactError, UsageError
from engine.predict import predict
from engine.training.artifacts import load_artifact
from engine.training import train_models
from engine.projection import design_matrix
from engine.training_sets import build_training_sets
from tests.test_training_data import day, make_project, model_yaml, shop_rows, write_features


@pytest.fixture(scope="module")
def project(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    cfg = make_project(root, [
        model_yaml("late", label="late", task="classification", estimator="xgboost.XGBClassifier", metric="auc",
                   features=["x", "noise", "city"], grid={"max_depth": [2]}, params={"n_estimators": 15},
                   segment_by="region"),
        model_yaml("minutes", estimator="sklearn.HistGradientBoostingRegressor", features=["x", "city"],
                   grid={"max_iter": [15]}),
    ])
    write_features(spark, cfg, shop_rows([day(i) for i in range(14)], per_region=15))
    models = list(cfg.models.values())
    sets = build_training_sets(spark, cfg, models, day(13), "p", {})
    assert {o.status for o in train_models(spark, cfg, models, day(13), "p", sets, None)} == {"champion"}
    # new rows to score: a segment without a champion (west), a category never seen (d)
    new = shop_rows([day(20)], per_region=7, seed=9, regions=("north", "south", "west"))
    new.loc[new.index[:3], "city"] = "d"
    path = str(root / "incoming")
    spark.createDataFrame(new.drop(columns=["y", "late"])).write.parquet(path)
    return cfg, new, path, root


def _expected(spark, cfg, model_id, rows: pd.DataFrame) -> pd.Series:
    out = pd.Series(np.nan, index=rows.index)
    for c in registry.champions(spark, cfg, model_id):
        model, meta = registry.load_model(Catalog.of(cfg), c)
        part = rows if c.segment == "all" else rows[rows.region == c.segment]
        X = design_matrix(part, meta.features, meta.feature_types, meta.kind, meta.categories)
        out[part.index] = model.predict_proba(X)[:, 1] if meta.task == "classification" else model.predict(X)
    return out


def test_each_segment_scored_by_its_champion(spark, project):
    cfg, new, path, root = project
    out = str(root / "scored_late")
    assert predict(spark, cfg, "late", path, out) == len(new)
    got = pd.read_parquet(out).set_index("order_id").loc[new.order_id]
    expected = _expected(spark, cfg, "late", new).to_numpy()
    scored = new.region.isin(["north", "south"]).to_numpy()
    assert np.allclose(got.prediction.to_numpy()[scored], expected[scored])
    assert got.prediction[~scored].isna().all() and got.model_version[~scored].isna().all()
    assert set(got.model_version[scored]) == {"v20260314"}
    assert list(got.columns[-2:]) == ["prediction", "model_version"] and "city" in got.columns


def test_unsegmented_regressor_into_delta(spark, project):
    from engine import tables

    cfg, new, path, root = project
    out = str(root / "scored_minutes")
    assert predict(spark, cfg, "minutes", path, out, output_format="delta") == len(new)
    got = tables.read(spark, out).toPandas().set_index("order_id").loc[new.order_id]
    assert np.allclose(got.prediction.to_numpy(), _expected(spark, cfg, "minutes", new).to_numpy())
    # a Delta input works the same, and re-running replaces the output
    assert predict(spark, cfg, "minutes", Catalog.of(cfg).features("shop"), out, output_format="delta") == 14 * 30
    assert tables.read(spark, out).count() == 14 * 30


def test_bad_input_and_tampered_champion_fail_loudly(spark, project, tmp_path):
    cfg, new, path, root = project
    thin = str(tmp_path / "thin")
    spark.createDataFrame(new[["order_id", "region", "x"]]).write.parquet(thin)
    with pytest.raises(UsageError, match=r"lacks column\(s\) \['city', 'noise'\]"):
        predict(spark, cfg, "late", thin, str(tmp_path / "o1"))
    with pytest.raises(Exception, match="no champion"):
        predict(spark, cfg, "nope", path, str(tmp_path / "o2"))

    champ = registry.champions(spark, cfg, "minutes")[0]
    model_file = f"{Catalog.of(cfg).under(champ.artifact_uri)}/model.skops"
    backup = tmp_path / "backup.skops"
    shutil.copy(model_file, backup)
    try:
        with open(model_file, "ab") as f:
            f.write(b"x")
        with pytest.raises(Exception, match=f"artifact file {model_file}: sha256 mismatch"):
            predict(spark, cfg, "minutes", path, str(tmp_path / "o3"))
    finally:
        shutil.copy(backup, model_file)
    with pytest.raises(ArtifactError):
        load_artifact(str(tmp_path), None)


def test_training_and_predict_see_identical_feature_vectors(spark):
    """The same feature rows give the same design-matrix rows through training_sets (maps in
    the table, read back as the training job does) and through predict's projection: dates,
    timestamps, booleans, ints, nulls, categoricals and a null segment included."""
    import datetime as dt
    import json

    from engine.predict import feature_frame, projected
    from engine.projection import NULL_SEGMENT, Projection, categories_of, map_value
    from engine.records import Window
    from engine.training_sets import Plan, project

    d0 = dt.date(2026, 3, 1)
    ts = dt.datetime(2026, 3, 1, 12, 30)
    rows = [  # id, ds, seg, d, b, t, i, x, c, y
        (1, d0, "north", dt.date(2026, 1, 2), True, ts, 3, 1.5, "a", 1.0),
        (2, d0, None, None, False, None, None, None, None, 0.0),
        (3, d0 + dt.timedelta(days=1), "south", dt.date(1969, 12, 31), None, ts, -7, -0.25, "b", 1.0),
        (4, d0 + dt.timedelta(days=1), None, dt.date(2026, 3, 1), True, ts, 0, 2.0, "c", 0.0),
    ]
    df = spark.createDataFrame(rows, "id int, ds date, seg string, d date, b boolean, t timestamp, i int, "
                                     "x double, c string, y double")
    features = ["d", "b", "t", "i", "x", "c"]
    projection = Projection.of_schema(features, "seg", df.schema)
    assert dict(projection.feature_types) == {**{f: "numeric" for f in features[:-1]}, "c": "categorical"}

    window = Window(d0, d0, d0 + dt.timedelta(days=1), d0 + dt.timedelta(days=1))
    trained = project(df, ["id"], [Plan("m", "y", projection, window, window.days)])
    trained = trained.select("row_key", "segment", *[map_value(n, projection.feature_types[n]).alias(n)
                                                     for n in features]).toPandas()
    trained.index = [json.loads(k)["id"] for k in trained.row_key]
    served = projected(df, projection).toPandas()
    served.index = served["id"].to_list()
    served_values = feature_frame(served, projection)
    assert sorted(trained.index) == sorted(served.index) == [1, 2, 3, 4]
    assert trained.segment.to_dict() == served._segment.to_dict() == {
        1: "north", 2: NULL_SEGMENT, 3: "south", 4: NULL_SEGMENT}

    categories = categories_of(trained, features, projection.feature_types)
    for kind in ("xgboost", "sklearn"):
        a = design_matrix(trained.loc[[1, 2, 3, 4], features], features, projection.feature_types, kind, categories)
        b = design_matrix(served_values.loc[[1, 2, 3, 4]], features, projection.feature_types, kind, categories)
        pd.testing.assert_frame_equal(a, b)
    X = design_matrix(served_values.loc[[1, 2, 3, 4]], features, projection.feature_types, "sklearn")
    assert X.loc[1, "d"] == (dt.date(2026, 1, 2) - dt.date(1970, 1, 1)).days and X.loc[3, "d"] == -1.0
    assert (X.loc[1, "b"], X.loc[2, "b"], np.isnan(X.loc[3, "b"])) == (1.0, 0.0, True)
    assert X.loc[2, ["d", "t", "i", "x"]].isna().all() and X.loc[2, "c"] == "__missing__"
    assert X.loc[1, "t"] == spark.sql("select cast(timestamp'2026-03-01 12:30:00' as double)").first()[0]
