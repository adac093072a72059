"""Log trained models to MLflow (optional: `mlflow.tracking_uri` in project.yaml).

Each (model, segment) trained by a retrain run becomes one MLflow run in the experiment
`<prefix>/<model_id>`, named `<model_id>/<segment>/<version>`:
  params   the estimator's chosen parameters, the estimator, task, metric, windows, refit
  metrics  train_<m> and eval_<m> for every recorded metric, gate_<metric> (this model on the
           rows compared with the champion), gate_champion_<metric>, gate_rows, n_train, n_eval
  tags     retrain.* : run id, model, segment, version, status, reason, logical date and the
           lineage (training_sets path and Delta version, feature table and Delta version,
           validation run, excluded days), the artifact URI and the model file's sha256
  files    model/ : the artifact folder as the engine wrote it (model.ubj or model.skops and
           metadata.json — never pickle) plus sha256.json, each file's sha256
A failed pair is a FAILED run with its reason and no files. Every trained pair is a version of
the registered model `<model_id>.<segment>` (the segment as its artifact folder name); a
promotion (registry status champion) points that model's `champion` alias at it.

Logging the same retrain run again is a no-op for pairs already logged (found by tag), so a
retried call never duplicates runs. MLflow is imported only here, and only when used.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable

from engine import catalog
from engine.errors import TrackingError
from engine.registry import RegistryEntry

log = logging.getLogger("retrain")

CHAMPION_ALIAS = "champion"
ARTIFACT_DIR = "model"
TAG = "retrain."


@dataclass(frozen=True)
class LoggedModel:
    model_id: str
    segment: str
    version: str  # the retrain version (v<date>)
    status: str  # registry status: champion | rejected | challenger | failed
    mlflow_run_id: str
    registered_model: str | None  # None for a failed pair (nothing to register)
    model_version: str | None
    champion: bool  # the champion alias points at it


def registered_model_name(model_id: str, segment: str) -> str:
    """`<model_id>.<segment>`, the segment encoded as its artifact folder (no '/' or ':')."""
    return f"{model_id}.{catalog.segment_folder(segment)}"


def _ms(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp() * 1000)


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and value == value and abs(value) != float("inf")


def run_params(e: RegistryEntry) -> dict[str, str]:
    params = {str(k): json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in sorted(e.params.items())}
    for key in ("estimator", "task", "metric", "refit", "train_start", "train_end", "eval_start", "eval_end"):
        value = getattr(e, key)
        if value is not None:
            params[f"{TAG}{key}"] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return params


def run_metrics(e: RegistryEntry) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for prefix, values in (("train_", e.train_metrics), ("eval_", e.eval_metrics)):
        for name, value in values.items():
            if _finite(value):
                metrics[prefix + name] = float(value)
    if e.metric:
        if _finite(e.gate_value):
            metrics[f"gate_{e.metric}"] = float(e.gate_value)
        if _finite(e.champion_value):
            metrics[f"gate_champion_{e.metric}"] = float(e.champion_value)
    for name in ("gate_rows", "n_train", "n_eval"):
        value = getattr(e, name)
        if _finite(value):
            metrics[name] = float(value)
    return metrics


def run_tags(e: RegistryEntry, retrain_run_id: str) -> dict[str, str]:
    tags = {
        "run_id": retrain_run_id, "model_id": e.model_id, "segment": e.segment, "version": e.version,
        "status": e.status, "reason": e.reason, "logical_date": e.logical_date,
        "training_sets_path": e.training_sets_path, "training_sets_version": e.training_sets_version,
        "feature_set": e.feature_set, "feature_table": e.feature_table, "feature_version": e.feature_version,
        "validation_run_id": e.validation_run_id, "artifact_uri": e.artifact_uri, "sha256": e.sha256,
        "excluded_days": json.dumps([d.isoformat() for d in e.excluded_days]),
    }
    out = {TAG + k: (v.isoformat() if isinstance(v, dt.date) else str(v)) for k, v in tags.items() if v is not None}
    out["mlflow.runName"] = f"{e.model_id}/{e.segment}/{e.version}"
    return out


def _download_artifact(e: RegistryEntry, into: str) -> dict[str, str]:
    """Copy the artifact folder's files into `into`; return {file: sha256}. The model file's
    sha256 must be the registry's (a mismatch raises TrackingError naming the file)."""
    filesystem, base = catalog.filesystem(e.artifact_uri)
    import pyarrow.fs as pafs

    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=False, allow_not_found=True))
    files = sorted(i.path for i in infos if i.type == pafs.FileType.File and ".tmp-" not in i.base_name)
    if not files:
        raise TrackingError(f"artifact {e.artifact_uri} of {e.model_id}/{e.segment}/{e.version}: no files to log")
    digests = {}
    for path in files:
        with filesystem.open_input_stream(path) as f:
            data = f.read()
        name = path.rsplit("/", 1)[-1]
        digests[name] = hashlib.sha256(data).hexdigest()
        with open(os.path.join(into, name), "wb") as out:
            out.write(data)
    if e.sha256 and e.sha256 not in digests.values():
        raise TrackingError(f"artifact {e.artifact_uri}: no file has the registry's sha256 {e.sha256} "
                            f"(found {digests}); not logging a model that differs from the registry")
    with open(os.path.join(into, "sha256.json"), "w") as out:
        json.dump(digests, out, indent=2, sort_keys=True)
    return digests


def _experiment_id(client, name: str, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def _logged_runs(client, experiment_id: str, retrain_run_id: str) -> dict[tuple[str, str], object]:
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{TAG}run_id` = '{retrain_run_id}'",
                              max_results=10000)
    return {(r.data.tags.get(f"{TAG}model_id"), r.data.tags.get(f"{TAG}segment")): r for r in runs
            if r.info.status in ("FINISHED", "FAILED")}


def _ensure_registered_model(client, name: str, e: RegistryEntry) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={f"{TAG}model_id": e.model_id, f"{TAG}segment": e.segment},
                                       description=f"retrain model {e.model_id}, segment {e.segment!r}")


def _model_version_of(client, name: str, version: str):
    """The MLflow model version registered for the retrain version, or None."""
    found = [mv for mv in client.search_model_versions(f"name = '{name}'")
             if mv.tags.get(f"{TAG}version") == version]
    return max(found, key=lambda mv: int(mv.version)) if found else None


def _log_one(client, e: RegistryEntry, experiment_id: str, retrain_run_id: str):
    run = client.create_run(experiment_id, start_time=_ms(e.trained_at or e.updated_at),
                            tags=run_tags(e, retrain_run_id), run_name=f"{e.model_id}/{e.segment}/{e.version}")
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param, RunTag

        timestamp = _ms(e.trained_at or e.updated_at) or _ms(dt.datetime.now(dt.timezone.utc))
        params = [Param(k, v) for k, v in run_params(e).items()]
        metrics = [Metric(k, v, timestamp, 0) for k, v in run_metrics(e).items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        if e.artifact_uri and e.status != "failed":
            with tempfile.TemporaryDirectory(prefix="retrain-mlflow-") as tmp:
                digests = _download_artifact(e, tmp)
                client.log_artifacts(run_id, tmp, artifact_path=ARTIFACT_DIR)
            client.log_batch(run_id, tags=[RunTag(f"{TAG}sha256.{name}", d) for name, d in digests.items()])
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FAILED" if e.status == "failed" else "FINISHED",
                          end_time=_ms(e.updated_at))
    return client.get_run(run_id)


def log_models(tracking_uri: str, entries: Iterable[RegistryEntry], *, retrain_run_id: str,
               registry_uri: str | None = None, experiment_prefix: str = "retrain",
               artifact_location: str | None = None) -> list[LoggedModel]:
    """Log the registry rows that retrain run `retrain_run_id` trained (pass the rows it
    committed; rows of other runs only move the champion alias) and return what was logged.

    `artifact_location` is used when an experiment is created (default: the tracking
    server's). Raises TrackingError when MLflow cannot be reached or refuses a write."""
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as e:
        raise TrackingError("mlflow.tracking_uri is set but MLflow is not installed "
                            "(pip install 'retrain[mlflow]', i.e. mlflow-skinny)") from e
    entries = list(entries)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    logged: list[LoggedModel] = []
    try:
        for model_id in sorted({e.model_id for e in entries}):
            experiment_id = _experiment_id(client, f"{experiment_prefix}/{model_id}", artifact_location)
            done = _logged_runs(client, experiment_id, retrain_run_id)
            for e in sorted((e for e in entries if e.model_id == model_id), key=lambda e: e.segment):
                name = registered_model_name(e.model_id, e.segment)
                if e.run_id == retrain_run_id and e.status != "retired":
                    run = done.get((e.model_id, e.segment)) or _log_one(client, e, experiment_id, retrain_run_id)
                    mv = None
                    if e.status != "failed" and e.artifact_uri:
                        _ensure_registered_model(client, name, e)
                        mv = _model_version_of(client, name, e.version)
                        if mv is None or mv.run_id != run.info.run_id:
                            mv = client.create_model_version(
                                name, source=f"{run.info.artifact_uri}/{ARTIFACT_DIR}", run_id=run.info.run_id,
                                tags={f"{TAG}version": e.version, f"{TAG}status": e.status,
                                      f"{TAG}sha256": e.sha256 or "", f"{TAG}run_id": retrain_run_id},
                                description=e.reason)
                    champion = e.status == "champion" and mv is not None
                    if champion:
                        client.set_registered_model_alias(name, CHAMPION_ALIAS, mv.version)
                    logged.append(LoggedModel(e.model_id, e.segment, e.version, e.status, run.info.run_id,
                                              name if mv else None, mv.version if mv else None, champion))
                elif e.status == "champion":  # a champion again (a re-run lost): move the alias back
                    mv = _model_version_of(client, name, e.version)
                    if mv is None:
                        log.warning("mlflow: %s version %s was never logged; champion alias left as is", name, e.version)
                    else:
                        client.set_registered_model_alias(name, CHAMPION_ALIAS, mv.version)
    except MlflowException as e:
        raise TrackingError(f"MLflow at {tracking_uri}: {e.message if hasattr(e, 'message') else e}") from e
    return logged
