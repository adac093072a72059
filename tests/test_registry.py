"""Registry: sha256 verification before every load, lineage to exact Delta versions."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from engine import registry, tables, training_sets
from engine.catalog import Catalog
from engine.errors import ArtifactError
from engine.records import ModelStatus
from engine.training import model_version, train_models
from engine.training.artifacts import load_artifact
from engine.training_sets import build_training_sets
from tests.test_training_data import day, make_project, model_yaml, shop_rows, write_features


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    cfg = make_project(root, [
        model_yaml("reg", segment_by="region", features=["x", "city"], refit=True),
        model_yaml("clf", label="late", task="classification", estimator="xgboost.XGBClassifier", metric="auc",
                   features=["x", "noise"], grid={"max_depth": [2]}, params={"n_estimators": 10}, refit=False),
    ])
    pdf = shop_rows([day(i) for i in range(16)])
    write_features(spark, cfg, pdf)
    models = list(cfg.models.values())
    quarantined = {day(7)}
    sets = build_training_sets(spark, cfg, models, day(14), "lin", {"shop": quarantined})
    train_models(spark, cfg, models, day(14), "lin", sets, "validation-42")
    # Later: a feature partition inside the window is recomputed and a later date is built,
    # so the latest versions of both tables differ from the ones the champions used.
    changed = pdf[pdf.ds == day(9)].assign(x=lambda d: d.x + 1.0)
    write_features(spark, cfg, changed)
    build_training_sets(spark, cfg, models, day(15), "later", {})
    return cfg, sets


def _rows(df):
    cols = ["segment", "split", "ds", "row_key", "label", "features", "categories"]
    return sorted(
        (r["segment"], r["split"], r["ds"], r["row_key"], r["label"], tuple(sorted(r["features"].items())),
         tuple(sorted(r["categories"].items())))
        for r in df.select(*cols).collect()
    )


def test_lineage_reads_back_the_exact_training_rows(spark, trained):
    cfg, sets = trained
    cat = Catalog.of(cfg)
    champions = registry.champions(spark, cfg)
    assert {(c.model_id, c.segment) for c in champions} == {("reg", "north"), ("reg", "south"), ("clf", "all")}
    for c in champions:
        found = registry.lineage(spark, cfg, c.model_id, c.segment, c.version)
        meta, lin = found.metadata, found.lineage
        assert lin.training_sets_version == sets.version < tables.version(sets.path)
        assert lin.feature_version == sets.feature_versions["shop"] < tables.version(cat.features("shop"))
        assert (lin.training_sets, lin.feature_table) == ("training_sets", "features/shop")  # relative to the root
        assert lin.validation_run_id == "validation-42" and lin.excluded_days == (day(7),)
        assert c.lineage == dataclasses.replace(lin, entity=())  # the registry row records the same lineage
        trained_rows = _rows(training_sets.training_rows(spark, cat, meta))
        assert len(trained_rows) == c.n_train + c.n_eval
        assert trained_rows == _rows(training_sets.feature_rows(spark, cat, meta))  # re-derived from the features
        fitted = _rows(training_sets.fitted_rows(spark, cat, meta))
        assert len(fitted) == (c.n_train + c.n_eval if c.refit else c.n_train)
        assert day(7) not in {r[2] for r in trained_rows}

    # Refitting the recorded parameters on the rows lineage gives back reproduces the artifact.
    from engine.projection import design_matrix, frame_from_maps
    from engine.training.estimators import get_estimator
    from engine.training.fit import make_estimator

    for c in registry.champions(spark, cfg, "reg"):
        meta = registry.lineage(spark, cfg, "reg", c.segment, c.version).metadata
        rows = training_sets.fitted_rows(spark, cat, meta).toPandas()
        assert set(rows.split) == {"train", "eval"}  # refit: the whole window
        data = frame_from_maps(rows.features, rows.categories, meta.feature_types)
        X = design_matrix(data, meta.features, meta.feature_types, meta.kind, meta.categories)
        again = make_estimator(get_estimator(meta.estimator), meta.params, meta.feature_types,
                               meta.features).fit(X, rows.label.to_numpy())
        artifact, _ = registry.load_model(cat, c)
        assert np.allclose(again.predict(X), artifact.predict(X))
        other = rows[rows.split == "train"]
        fewer = make_estimator(get_estimator(meta.estimator), meta.params, meta.feature_types,
                               meta.features).fit(X[rows.split.to_numpy() == "train"], other.label.to_numpy())
        assert not np.allclose(fewer.predict(X), artifact.predict(X))

    # The latest feature version gives different rows for the same window: the version matters.
    meta = registry.lineage(spark, cfg, "reg", "north", model_version(day(14))).metadata
    latest = tables.read(spark, cat.features("shop")).where(F.col("ds") == day(9)).where(F.col("region") == "north")
    used = training_sets.training_rows(spark, cat, meta).where(F.col("ds") == day(9))
    x_latest = sorted(r["x"] for r in latest.collect())
    x_used = sorted(r["features"]["x"] for r in used.collect())
    assert len(x_used) == len(x_latest) and x_used != x_latest
    assert x_latest == pytest.approx([v + 1.0 for v in x_used])


def test_sha256_is_verified_before_every_load(spark, trained, tmp_path):
    import shutil

    cfg, _ = trained
    champ = registry.champions(spark, cfg, "clf")[0]
    copy = tmp_path / "artifact"
    shutil.copytree(Catalog.of(cfg).under(champ.artifact_uri), copy)
    model, meta = load_artifact(str(copy), champ.sha256)
    assert meta.sha256 == champ.sha256

    model_file = copy / "model.ubj"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"artifact file {model_file}: sha256 mismatch"):
        load_artifact(str(copy))

    # metadata.json rewritten to match the tampered file: the registry's sha256 still catches it
    meta_file = copy / "metadata.json"
    meta = json.loads(meta_file.read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=rf"artifact file {meta_file}: records sha256"):
        load_artifact(str(copy), champ.sha256)

    with pytest.raises(ArtifactError, match="cannot be read"):
        load_artifact(str(tmp_path / "nowhere"))


class Opaque:
    def __init__(self):
        self.payload = [1, 2, 3]


def _skops_artifact(uri: str, model, estimator: str = "sklearn.Ridge") -> None:
    """A hand-made artifact folder holding `model` as skops (as an attacker would write it)."""
    import hashlib

    import skops.io as sio

    data = sio.dumps(model)
    Path(uri).mkdir(parents=True)
    (Path(uri) / "model.skops").write_bytes(data)
    meta = {"model_id": "m", "segment": "all", "version": "v1", "run_id": "r", "logical_date": "2026-03-01",
            "trained_at": None, "estimator": estimator, "task": "regression", "label": "y",
            "segment_by": None, "features": ["x"], "feature_types": {"x": "numeric"}, "categories": {},
            "params": {}, "metric": "mae", "refit": True, "kind": "sklearn", "file": "model.skops",
            "sha256": hashlib.sha256(data).hexdigest(),
            "lineage": {"run_id": "r", "training_sets": "training_sets", "training_sets_version": 0,
                        "feature_set": "s", "feature_table": "features/s", "feature_version": 0,
                        "validation_run_id": None, "train_start": "2026-03-01", "train_end": "2026-03-05",
                        "eval_start": "2026-03-06", "eval_end": "2026-03-07"}}
    (Path(uri) / "metadata.json").write_text(json.dumps(meta))


def test_skops_trusts_only_the_types_the_engine_writes(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    uri = str(tmp_path / "evil")
    _skops_artifact(uri, Opaque())
    with pytest.raises(ArtifactError, match=rf"artifact file {uri}/model.skops: refuses to load types .*Opaque"):
        load_artifact(uri)
    # a numpy function is inside the old 'numpy.' prefix, but not a type the engine writes
    uri = str(tmp_path / "evil-numpy")
    _skops_artifact(uri, FunctionTransformer(func=np.save))
    with pytest.raises(ArtifactError, match=rf"artifact file {uri}/model.skops: refuses .*\['numpy.save'\]"):
        load_artifact(uri)
    assert not list(Path(tmp_path).rglob("*.npy"))
    # what the engine writes loads: a fitted Ridge and random forest (sklearn.tree._tree.Tree)
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=2, random_state=0).fit([[0.0], [1.0]], [0.0, 1.0])
    uri = str(tmp_path / "forest")
    _skops_artifact(uri, forest, estimator="sklearn.RandomForestRegressor")
    model, meta = load_artifact(uri)
    assert model.predict([[1.0]])[0] == pytest.approx(1.0, abs=0.5) and meta.lineage.feature_set == "s"
    # a type skops trusts is still refused when it is not the estimator the artifact names
    uri = str(tmp_path / "forest-as-ridge")
    _skops_artifact(uri, forest, estimator="sklearn.Ridge")
    with pytest.raises(ArtifactError, match=rf"artifact file {uri}/model.skops: holds a "
                                            r"sklearn\.ensemble\._forest\.RandomForestRegressor, expected "
                                            r"sklearn\.linear_model\._ridge\.Ridge"):
        load_artifact(uri)


def test_champions_and_status_fields(spark, trained):
    cfg, _ = trained
    rows = registry.entries(spark, cfg)
    assert len({(e.model_id, e.segment, e.version) for e in rows}) == len(rows) == 3
    for c in registry.champions(spark, cfg):
        assert c.status is ModelStatus.CHAMPION and c.metric_value is not None and c.trained_at is not None
        assert c.age_days(c.trained_at.date()) == 0 and c.age_days(day(400)) > 0
        assert c.run_id == "lin" and c.logical_date == day(14) and c.reason.startswith("first model")
        assert c.eval_metrics[c.metric] == pytest.approx(c.metric_value)
        assert (c.train_start, c.eval_end) == ((day(4), day(13)) if c.model_id == "reg" else (day(3), day(12)))
    with pytest.raises(Exception, match="no row for model 'reg'"):
        registry.lineage(spark, cfg, "reg", "west", "v1")


def test_a_copied_lakehouse_uses_its_own_artifacts(spark, trained, tmp_path):
    import shutil

    cfg, _ = trained
    original = Path(cfg.lakehouse)
    copy = tmp_path / "restored"
    shutil.copytree(original, copy)
    moved = tmp_path / "original-gone"
    original.rename(moved)  # the original is gone while the copy is used
    try:
        restored = cfg.model_copy(update={"project": cfg.project.model_copy(update={"lakehouse": str(copy)})})
        cat = Catalog.of(restored)
        champions = registry.champions(spark, restored)
        assert len(champions) == 3
        for c in champions:
            assert not c.artifact_uri.startswith("/") and registry.artifact(cat, c).startswith(str(copy))
            model, meta = registry.load_model(cat, c)  # sha256 verified against the copy's registry row
            assert meta.sha256 == c.sha256 and hasattr(model, "predict")
            found = registry.lineage(spark, restored, c.model_id, c.segment, c.version)
            assert len(_rows(training_sets.training_rows(spark, cat, found.metadata))) == c.n_train + c.n_eval
        # a tampered model file in the copy is caught (the copy's own file is what is read)
        champ = champions[0]
        model_file = Path(registry.artifact(cat, champ)) / registry.load_model(cat, champ)[1].file
        model_file.write_bytes(model_file.read_bytes() + b"x")
        with pytest.raises(ArtifactError, match=f"artifact file {model_file}: sha256 mismatch"):
            registry.load_model(cat, champ)
    finally:
        moved.rename(original)
