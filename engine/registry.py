"""The model registry (Delta table `registry`, one row per model_id, segment, version),
artifact loading, and lineage.

Statuses: engine.records.ModelStatus (champion, challenger, rejected, retired, failed,
waiting) -- the same vocabulary as a run's model outcomes.

Paths in rows (`artifact_uri`, `training_sets_path`, `feature_table`) are relative to the
lakehouse root, so a copied or restored lakehouse loads its own artifacts (sha256-verified);
rows written before that hold absolute paths, which are used as given.

Lineage: every row names the exact training_sets version and feature table version it was
built from (plus the validation run and the window); `lineage(...)` returns it with the
artifact's metadata, and engine.training_sets re-reads those versions.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

from engine import catalog, tables
from engine.catalog import Catalog
from engine.config import Config
from engine.errors import ArtifactError, RetrainError
from engine.records import ArtifactMetadata, Lineage, ModelStatus, Window
from engine.training.artifacts import load_artifact, read_metadata

SCHEMA = catalog.REGISTRY.schema
KEYS = list(catalog.REGISTRY.keys)
_JSON_DICTS = ("train_metrics", "eval_metrics", "params")


@dataclass
class RegistryEntry:
    model_id: str
    segment: str
    version: str
    run_id: str
    logical_date: dt.date
    status: ModelStatus
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
    artifact_uri: str | None = None  # relative to the lakehouse root
    sha256: str | None = None
    training_sets_path: str | None = None  # relative to the lakehouse root
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

    def __post_init__(self) -> None:
        self.status = ModelStatus(self.status)

    @property
    def key(self) -> tuple[str, str]:
        return self.model_id, self.segment

    @property
    def lineage(self) -> Lineage | None:
        """The row's lineage (None for a pair that never got a training set); `entity` is in
        the artifact's metadata."""
        if self.training_sets_version is None or self.train_start is None:
            return None
        return Lineage(
            run_id=self.run_id, training_sets=self.training_sets_path, training_sets_version=self.training_sets_version,
            feature_set=self.feature_set, feature_table=self.feature_table, feature_version=self.feature_version,
            validation_run_id=self.validation_run_id,
            window=Window(self.train_start, self.train_end, self.eval_start, self.eval_end),
            excluded_days=tuple(self.excluded_days),
        )

    def age_days(self, today: dt.date | None = None) -> int | None:
        """Days since it was trained (None if it never was)."""
        if self.trained_at is None:
            return None
        return ((today or dt.datetime.now(dt.timezone.utc).date()) - self.trained_at.date()).days

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
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


def entries(spark, cfg: Config, model_id: str | None = None, version: int | None = None) -> list[RegistryEntry]:
    """Every registry row (optionally of one model, optionally as of a table version)."""
    rows = tables.read_rows(Catalog.of(cfg).registry, version, spark=spark)
    if rows is None:
        return []
    out = [RegistryEntry.from_row(r) for r in rows.to_pylist()]
    if model_id is not None:
        out = [e for e in out if e.model_id == model_id]
    return sorted(out, key=lambda e: (e.model_id, e.segment, e.version))


def champions(spark, cfg: Config, model_id: str | None = None) -> list[RegistryEntry]:
    """The champion of every (model, segment) pair, sorted by model and segment."""
    return [e for e in entries(spark, cfg, model_id) if e.status == ModelStatus.CHAMPION]


def entry(spark, cfg: Config, model_id: str, segment: str, version: str) -> RegistryEntry:
    for e in entries(spark, cfg, model_id):
        if e.segment == segment and e.version == version:
            return e
    raise RetrainError(f"registry {Catalog.of(cfg).registry}: no row for model {model_id!r}, segment {segment!r}, "
                       f"version {version!r}")


def commit(spark, cfg: Config, changed: list[RegistryEntry]) -> int | None:
    """Insert or replace rows by (model_id, segment, version): one Delta commit."""
    path = Catalog.of(cfg).registry
    if not changed:
        return tables.version(path, spark)
    return tables.upsert_rows(spark, path, to_table(changed), keys=KEYS)


# --------------------------------------------------------------------------- artifacts


def artifact(cat: Catalog, e: RegistryEntry) -> str:
    """The artifact folder of a row in this lakehouse."""
    if not e.artifact_uri:
        raise ArtifactError(f"model {e.model_id} segment {e.segment} version {e.version} has no artifact "
                            f"({e.status.value}: {e.reason})")
    return cat.under(e.artifact_uri)


def load_model(cat: Catalog, e: RegistryEntry) -> tuple[Any, ArtifactMetadata]:
    """(model, metadata) of a row's artifact in this lakehouse, after verifying the model
    file's sha256 against metadata.json and the registry row; a mismatch raises ArtifactError
    naming the file."""
    return load_artifact(artifact(cat, e), e.sha256)


# --------------------------------------------------------------------------- lineage


@dataclass(frozen=True)
class ModelLineage:
    """A registry row with its artifact's metadata: where its rows came from (Lineage, with
    the entity) and how to project them (metadata.features / feature_types / segment_by)."""

    entry: RegistryEntry
    metadata: ArtifactMetadata

    @property
    def lineage(self) -> Lineage:
        return self.metadata.lineage


def lineage(spark, cfg: Config, model_id: str, segment: str, version: str) -> ModelLineage:
    """The lineage of one registry row (it must have an artifact)."""
    e = entry(spark, cfg, model_id, segment, version)
    return ModelLineage(e, read_metadata(artifact(Catalog.of(cfg), e)))
