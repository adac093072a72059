"""engine.mlflow_log against a real MLflow tracking store (sqlite file + local artifact root):
runs, params, metrics, lineage tags, artifact files with their sha256, and the champion alias
read back through MlflowClient."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pytest

from engine import catalog
from engine.errors import TrackingError
from engine.records import ArtifactMetadata, Lineage, Window
from engine.registry import RegistryEntry
from engine.training.artifacts import save_artifact

mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is a dev dependency (pyproject [dev])")
pytest.importorskip("sqlalchemy", reason="the sqlite tracking store needs sqlalchemy (pyproject [dev])")

from mlflow import MlflowClient  # noqa: E402

from engine.mlflow_log import log_models, registered_model_name  # noqa: E402

DAY1, DAY2 = dt.date(2026, 10, 20), dt.date(2026, 10, 21)


def tiny_model(seed: int):
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    return xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, (x[:, 0] > 0).astype(int))


def entry(lake: catalog.Catalog, segment: str, day: dt.date, status: str, run_id: str, *, auc: float,
          champion: tuple[str, float] | None = None, seed: int = 0) -> RegistryEntry:
    version = f"v{day:%Y%m%d}"
    uri = sha = None
    if status != "failed":
        uri = lake.artifact("late_delivery", segment, version)
    trained = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2), tzinfo=dt.timezone.utc)
    if status != "failed":
        window = Window(day - dt.timedelta(days=27), day - dt.timedelta(days=7), day - dt.timedelta(days=6), day)
        meta = ArtifactMetadata(
            model_id="late_delivery", segment=segment, version=version, run_id=run_id, logical_date=day,
            trained_at=trained, estimator="xgboost.XGBClassifier", task="classification", label="late",
            segment_by="region", features=("f0", "f1", "f2"), feature_types={f"f{i}": "numeric" for i in range(3)},
            categories={}, params={"max_depth": 2, "n_estimators": 3}, metric="auc", refit=True,
            lineage=Lineage(run_id=run_id, training_sets="training_sets", training_sets_version=7,
                            feature_set="orders", feature_table="features/orders", feature_version=12,
                            validation_run_id=f"val-{run_id}", window=window))
        sha = save_artifact(uri, tiny_model(seed), "xgboost", meta).sha256
    return RegistryEntry(
        model_id="late_delivery", segment=segment, version=version, run_id=run_id, logical_date=day,
        status=status, reason=f"{status} on {day}", estimator="xgboost.XGBClassifier", task="classification",
        metric="auc", metric_value=auc, train_value=auc + 0.05,
        champion_version=champion[0] if champion else None, champion_value=champion[1] if champion else None,
        gate_value=auc if champion else None, gate_rows=120 if champion else None,
        train_metrics={"auc": auc + 0.05, "logloss": 0.4}, eval_metrics={"auc": auc, "logloss": 0.5},
        params={"max_depth": 2, "n_estimators": 3}, artifact_uri=uri, sha256=sha,
        training_sets_path=lake.training_sets, training_sets_version=7, feature_set="orders",
        feature_table=lake.features("orders"), feature_version=12, validation_run_id=f"val-{run_id}",
        train_start=day - dt.timedelta(days=27), train_end=day - dt.timedelta(days=7),
        eval_start=day - dt.timedelta(days=6), eval_end=day, excluded_days=[day - dt.timedelta(days=3)],
        n_train=400, n_eval=120, refit=True, trained_at=trained, updated_at=trained,
    )


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One sqlite tracking store for the module (creating its schema takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlartifacts").as_uri()


@pytest.fixture
def store(tracking, tmp_path):
    return (*tracking, catalog.Catalog(str(tmp_path / "lakehouse")))


def test_runs_metrics_lineage_artifacts_and_champion_alias(store):
    uri, artifacts, lake = store
    night1 = [entry(lake, "north", DAY1, "champion", "r1", auc=0.81, seed=1),
              entry(lake, "a/b:c", DAY1, "champion", "r1", auc=0.77, seed=2),
              entry(lake, "east", DAY1, "failed", "r1", auc=float("nan"))]
    logged = log_models(uri, night1, retrain_run_id="r1", artifact_location=artifacts)
    assert [(m.segment, m.status, m.champion) for m in logged] == [
        ("a/b:c", "champion", True), ("east", "failed", False), ("north", "champion", True)]

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("retrain/late_delivery")
    runs = {r.data.tags["retrain.segment"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"north", "a/b:c", "east"}
    north = runs["north"]
    assert north.info.status == "FINISHED" and north.info.run_name == "late_delivery/north/v20261020"
    assert north.data.params["max_depth"] == "2" and north.data.params["retrain.estimator"] == "xgboost.XGBClassifier"
    assert north.data.metrics["eval_auc"] == pytest.approx(0.81)
    assert north.data.metrics["train_auc"] == pytest.approx(0.86)
    assert north.data.metrics["n_train"] == 400 and "gate_auc" not in north.data.metrics  # first model: no gate
    tags = north.data.tags
    assert tags["retrain.run_id"] == "r1" and tags["retrain.training_sets_version"] == "7"
    assert tags["retrain.feature_version"] == "12" and tags["retrain.feature_table"] == lake.features("orders")
    assert tags["retrain.validation_run_id"] == "val-r1" and json.loads(tags["retrain.excluded_days"]) == ["2026-10-17"]
    assert tags["retrain.sha256"] == night1[0].sha256

    files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(north.info.run_id, "model")}
    assert files == {"model.ubj", "metadata.json", "sha256.json"}  # no pickle
    local = client.download_artifacts(north.info.run_id, "model", str(lake.root) + "-dl")
    with open(f"{local}/model.ubj", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == night1[0].sha256
    with open(f"{local}/sha256.json") as f:
        assert json.load(f)["model.ubj"] == night1[0].sha256

    failed = runs["east"]
    assert failed.info.status == "FAILED" and failed.data.tags["retrain.reason"] == "failed on 2026-10-20"
    assert client.list_artifacts(failed.info.run_id) == []
    for segment in ("north", "a/b:c"):
        champion = client.get_model_version_by_alias(registered_model_name("late_delivery", segment), "champion")
        assert champion.run_id == runs[segment].info.run_id and champion.tags["retrain.version"] == "v20261020"

    # Night 2: north's challenger is rejected (alias stays), a/b:c's is promoted (alias moves).
    night2 = [entry(lake, "north", DAY2, "rejected", "r2", auc=0.80, champion=("v20261020", 0.82), seed=3),
              entry(lake, "a/b:c", DAY2, "champion", "r2", auc=0.83, champion=("v20261020", 0.76), seed=4),
              RegistryEntry(**{**night1[1].__dict__, "status": "retired", "updated_at": night1[1].updated_at})]
    log_models(uri, night2, retrain_run_id="r2", artifact_location=artifacts)
    north_name, abc_name = registered_model_name("late_delivery", "north"), registered_model_name("late_delivery", "a/b:c")
    assert client.get_model_version_by_alias(north_name, "champion").tags["retrain.version"] == "v20261020"
    assert client.get_model_version_by_alias(abc_name, "champion").tags["retrain.version"] == "v20261021"
    rejected = [r for r in client.search_runs([experiment.experiment_id], "tags.`retrain.run_id` = 'r2'")
                if r.data.tags["retrain.segment"] == "north"][0]
    assert rejected.data.metrics["gate_auc"] == pytest.approx(0.80)
    assert rejected.data.metrics["gate_champion_auc"] == pytest.approx(0.82)
    assert rejected.data.tags["retrain.status"] == "rejected"
    assert len(client.search_runs([experiment.experiment_id])) == 5  # the retired row is not a new run

    # Logging the same retrain run again adds nothing.
    log_models(uri, night2, retrain_run_id="r2", artifact_location=artifacts)
    assert len(client.search_runs([experiment.experiment_id])) == 5
    assert len(client.search_model_versions(f"name = '{abc_name}'")) == 2


def test_an_artifact_that_differs_from_the_registry_is_refused(store):
    uri, artifacts, lake = store
    e = entry(lake, "north", DAY1, "champion", "r1", auc=0.81, seed=1)
    with open(f"{e.artifact_uri}/model.ubj", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(TrackingError, match=r"no file has the registry's sha256"):
        log_models(uri, [e], retrain_run_id="r1", artifact_location=artifacts, experiment_prefix="tampered")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("tampered/late_delivery").experiment_id])
    assert run.info.status == "FAILED" and client.list_artifacts(run.info.run_id) == []
    versions = client.search_model_versions(f"name = '{registered_model_name('late_delivery', 'north')}'")
    assert all(v.run_id != run.info.run_id for v in versions)  # nothing registered from it


def test_unreachable_tracking_server_is_a_tracking_error(tmp_path):
    lake = catalog.Catalog(str(tmp_path / "lakehouse"))
    e = entry(lake, "north", DAY1, "champion", "r1", auc=0.81)
    import os

    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "3"
    try:
        with pytest.raises(TrackingError, match="MLflow at http://127.0.0.1:9"):
            log_models("http://127.0.0.1:9", [e], retrain_run_id="r1")
    finally:
        os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        os.environ.pop("MLFLOW_HTTP_REQUEST_TIMEOUT")
