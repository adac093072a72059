"""The model registry (Delta table `registry`, one row per model_id, segment, version),
artifact loading, and lineage.

Statuses:
  champion    the model that serves the pair (at most one per pair)
  challenger  trained but not put through the gate (train_models(..., gate=False))
  rejected    trained, but missed the SLO or did not beat the champion by min_delta
  retired     a former champion, replaced by a newer one
  failed      the pair could not be trained (reason says why)

Lineage: every row names the exact training_sets version and feature table version it was
built from (plus the validation run and the window); `lineage(...)` re-reads those versions.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

from engine import catalog, tables
from engine.config import Config, ModelConfig
from engine.errors import ArtifactError, RetrainError
from engine.training.artifacts import load_artifact, read_metadata

TABLE = "registry"
KEYS = ["model_id", "segment", "version"]
STATUSES = ("champion", "challenger", "rejected", "retired", "failed")

SCHEMA = catalog.REGISTRY.schema
_JSON_DICTS = ("train_metrics", "eval_metrics", "params")


@dataclass
class RegistryEntry:
    model_id: str
    segment: str
    version: str
    run_id: str
    logical_date: dt.date
    status: str
    reason: str | None = None
    estimator: str | None = None
    task: str | None = None
    metric: str | None = None
    metric_value: float | None = None
    train_value: float | None = None
    champion_version: str | None = None
    champion_value: float | None = None
    gate_value: float | None = None
    gate_rows: int | None = None
    train_metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    artifact_uri: str | None = None
    sha256: str | None = None
    training_sets_path: str | None = None
    training_sets_version: int | None = None
    feature_set: str | None = None
    feature_table: str | None = None
    feature_version: int | None = None
    validation_run_id: str | None = None
    train_start: dt.date | None = None
    train_end: dt.date | None = None
    eval_start: dt.date | None = None
    eval_end: dt.date | None = None
    excluded_days: list[dt.date] = field(default_factory=list)
    n_train: int | None = None
    n_eval: int | None = None
    refit: bool | None = None
    trained_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.model_id, self.segment

    def age_days(self, today: dt.date | None = None) -> int | None:
        """Days since it was trained (None if it never was)."""
        if self.trained_at is None:
            return None
        return ((today or dt.datetime.now(dt.timezone.utc).date()) - self.trained_at.date()).days

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _JSON_DICTS:
            out[name] = json.dumps(out[name], sort_keys=True, default=str)
        out["excluded_days"] = json.dumps([d.isoformat() for d in self.excluded_days])
        for name in ("metric_value", "train_value", "champion_value", "gate_value"):
            if out[name] is not None and isinstance(out[name], float) and math.isnan(out[name]):
                out[name] = None
        return out

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "RegistryEntry":
        data = {f.name: row.get(f.name) for f in fields(cls)}
        for name in _JSON_DICTS:
            data[name] = json.loads(data[name]) if data[name] else {}
        data["excluded_days"] = [dt.date.fromisoformat(d) for d in json.loads(data["excluded_days"] or "[]")]
        return cls(**data)


def to_table(entries: list[RegistryEntry]) -> pa.Table:
    return pa.Table.from_pylist([e.row() for e in entries], schema=SCHEMA)


# --------------------------------------------------------------------------- reading


def path(cfg: Config) -> str:
    return cfg.table(TABLE)


def entries(spark, cfg: Config, model_id: str | None = None, version: int | None = None) -> list[RegistryEntry]:
    """Every registry row (optionally of one model, optionally as of a table version)."""
    rows = tables.read_rows(path(cfg), version, spark=spark)
    if rows is None:
        return []
    out = [RegistryEntry.from_row(r) for r in rows.to_pylist()]
    if model_id is not None:
        out = [e for e in out if e.model_id == model_id]
    return sorted(out, key=lambda e: (e.model_id, e.segment, e.version))


def champions(spark, cfg: Config, model_id: str | None = None) -> list[RegistryEntry]:
    """The champion of every (model, segment) pair, sorted by model and segment."""
    return [e for e in entries(spark, cfg, model_id) if e.status == "champion"]


def entry(spark, cfg: Config, model_id: str, segment: str, version: str) -> RegistryEntry:
    for e in entries(spark, cfg, model_id):
        if e.segment == segment and e.version == version:
            return e
    raise RetrainError(f"registry {path(cfg)}: no row for model {model_id!r}, segment {segment!r}, version {version!r}")


def commit(spark, cfg: Config, changed: list[RegistryEntry]) -> int | None:
    """Insert or replace rows by (model_id, segment, version): one Delta commit."""
    if not changed:
        return tables.version(path(cfg), spark)
    return tables.upsert_rows(spark, path(cfg), to_table(changed), keys=KEYS)


# --------------------------------------------------------------------------- artifacts


def load_model(uri: str, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, metadata) from an artifact folder; the model file's sha256 is verified first
    (against metadata.json, and against `expected_sha256` when given, e.g. the registry's).
    A mismatch raises ArtifactError naming the file."""
    return load_artifact(uri, expected_sha256)


# --------------------------------------------------------------------------- lineage


@dataclass(frozen=True)
class Lineage:
    """Where a model's training rows came from: exact Delta versions, window, exclusions."""

    model_id: str
    segment: str
    version: str
    run_id: str
    training_sets_path: str
    training_sets_version: int
    feature_set: str
    feature_table: str
    feature_version: int
    validation_run_id: str | None
    train_start: dt.date
    train_end: dt.date
    eval_start: dt.date
    eval_end: dt.date
    excluded_days: tuple[dt.date, ...]
    refit: bool
    metadata: dict[str, Any]  # the artifact's metadata.json

    def training_rows(self, spark, split: str | None = None):
        """This pair's rows in the recorded training_sets version (split: train | eval | None)."""
        from pyspark.sql import functions as F

        df = tables.read(spark, self.training_sets_path, version=self.training_sets_version,
                         partitions=[self.model_id], column="model_id")
        df = df.where((F.col("segment") == self.segment) & (F.col("run_id") == self.run_id))
        return df.where(F.col("split") == split) if split else df

    def fitted_rows(self, spark):
        """The rows the final model was fit on: train + eval when refit, else train."""
        return self.training_rows(spark, None if self.refit else "train")

    def feature_rows(self, spark):
        """The same rows, re-derived from the recorded feature table version with the same
        window, exclusions and projection (columns as in training_sets, without run_id)."""
        from pyspark.sql import functions as F

        from engine.training_sets import Window, project

        meta = self.metadata
        window = Window(self.train_start, self.train_end, self.eval_start, self.eval_end)
        excluded = set(self.excluded_days)
        used = [d for d in window.days if d not in excluded]
        model = ModelConfig(
            model_id=self.model_id, feature_set=self.feature_set, features=meta["features"], label=meta["label"],
            task=meta["task"], estimator=meta["estimator"], segment_by=meta.get("segment_by"),
            train_window_days=len(window.days), eval_window_days=(self.eval_end - self.eval_start).days + 1,
            metric=meta["metric"],
        )
        source = tables.read(spark, self.feature_table, version=self.feature_version, partitions=used)
        rows = project(source, list(meta["lineage"]["entity"]), [(model, window, used)])
        return rows.where(F.col("segment") == self.segment)


def lineage(spark, cfg: Config, model_id: str, segment: str, version: str) -> Lineage:
    """The lineage of one registry row (it must have an artifact)."""
    e = entry(spark, cfg, model_id, segment, version)
    if not e.artifact_uri:
        raise ArtifactError(f"model {model_id} segment {segment} version {version} has no artifact ({e.status}: {e.reason})")
    meta = read_metadata(e.artifact_uri)
    return Lineage(
        model_id=e.model_id, segment=e.segment, version=e.version, run_id=e.run_id,
        training_sets_path=e.training_sets_path, training_sets_version=int(e.training_sets_version),
        feature_set=e.feature_set, feature_table=e.feature_table, feature_version=int(e.feature_version),
        validation_run_id=e.validation_run_id, train_start=e.train_start, train_end=e.train_end,
        eval_start=e.eval_start, eval_end=e.eval_end, excluded_days=tuple(e.excluded_days),
        refit=bool(e.refit), metadata=meta,
    )
