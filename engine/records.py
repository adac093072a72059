"""Typed records of the training side: one vocabulary of model statuses, the training window,
a model's lineage and an artifact's metadata. Registry rows (engine/registry.py) are built
from the same types. Dates are `datetime.date`; JSON files hold ISO strings.

Paths in records (`Lineage.training_sets`, `Lineage.feature_table`, a registry row's
`artifact_uri`) are RELATIVE to the lakehouse root, so a copied or restored lakehouse uses its
own tables and artifacts; `engine.catalog.Catalog.under` turns them into URIs.
"""
from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class ModelStatus(str, enum.Enum):
    """The one vocabulary of a (model, segment, version): registry rows and run outcomes."""

    CHAMPION = "champion"  # serves the pair (at most one per pair); a run outcome: promoted
    CHALLENGER = "challenger"  # trained, not put through the gate
    REJECTED = "rejected"  # trained, missed the SLO or did not beat the champion by min_delta
    RETIRED = "retired"  # a former champion, replaced by a newer one
    FAILED = "failed"  # could not be trained (the reason says why)
    WAITING = "waiting"  # not enough history in its window yet (cold start); not a failure
    SKIPPED = "skipped"  # not built tonight (e.g. too many quarantined days); outcome only

    def __str__(self) -> str:
        return self.value


SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Window:
    """A model's training window for one logical date (inclusive dates)."""

    train_start: dt.date
    train_end: dt.date
    eval_start: dt.date
    eval_end: dt.date  # = the label cutoff: logical date - label delay_days

    @property
    def days(self) -> list[dt.date]:
        n = (self.eval_end - self.train_start).days + 1
        return [self.train_start + dt.timedelta(days=i) for i in range(n)]

    def split(self, day: dt.date) -> str | None:
        if self.train_start <= day <= self.train_end:
            return "train"
        if self.eval_start <= day <= self.eval_end:
            return "eval"
        return None


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@dataclass(frozen=True)
class Lineage:
    """Where a model's training rows came from: exact Delta versions, window, exclusions.
    Table paths are relative to the lakehouse root (e.g. 'training_sets', 'features/shop')."""

    run_id: str
    training_sets: str
    training_sets_version: int
    feature_set: str
    feature_table: str
    feature_version: int
    validation_run_id: str | None
    window: Window
    excluded_days: tuple[dt.date, ...] = ()
    entity: tuple[str, ...] = ()

    @property
    def used_days(self) -> list[dt.date]:
        excluded = set(self.excluded_days)
        return [d for d in self.window.days if d not in excluded]

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "window"}
        out.update({k: v.isoformat() for k, v in asdict(self.window).items()})
        out["excluded_days"] = [d.isoformat() for d in self.excluded_days]
        out["entity"] = list(self.entity)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Lineage":
        window = Window(*(_date(data[k]) for k in ("train_start", "train_end", "eval_start", "eval_end")))
        return cls(
            run_id=data["run_id"], training_sets=data["training_sets"],
            training_sets_version=int(data["training_sets_version"]), feature_set=data["feature_set"],
            feature_table=data["feature_table"], feature_version=int(data["feature_version"]),
            validation_run_id=data.get("validation_run_id"), window=window,
            excluded_days=tuple(_date(d) for d in data.get("excluded_days") or ()),
            entity=tuple(data.get("entity") or ()),
        )


@dataclass(frozen=True)
class ArtifactMetadata:
    """metadata.json of an artifact folder: what the model is, how it was chosen, where its
    rows came from, and the model file's sha256."""

    model_id: str
    segment: str
    version: str
    run_id: str
    logical_date: dt.date
    trained_at: dt.datetime | None
    estimator: str
    task: str  # classification | regression
    label: str
    segment_by: str | None
    features: tuple[str, ...]
    feature_types: dict[str, str]  # feature -> numeric | categorical
    categories: dict[str, list[str]]  # categorical feature -> the categories seen in training
    params: dict[str, Any]
    metric: str
    refit: bool
    lineage: Lineage
    kind: str = ""  # xgboost | sklearn (set by save_artifact)
    file: str = ""  # the model file's name in the folder (set by save_artifact)
    sha256: str = ""  # of the model file (set by save_artifact)
    grid: list[dict[str, Any]] = field(default_factory=list)  # [{params, value}] on the eval window
    train_metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_eval: int = 0

    @property
    def fit_until(self) -> dt.date:
        """The last day the artifact was fit on."""
        return self.lineage.window.eval_end if self.refit else self.lineage.window.train_end

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["logical_date"] = self.logical_date.isoformat()
        out["trained_at"] = self.trained_at.isoformat() if self.trained_at else None
        out["features"] = list(self.features)
        out["lineage"] = self.lineage.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ArtifactMetadata":
        """Raises KeyError/ValueError/TypeError on a malformed document (the caller names the file)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["logical_date"] = _date(data["logical_date"])
        values["trained_at"] = dt.datetime.fromisoformat(data["trained_at"]) if data.get("trained_at") else None
        values["features"] = tuple(data["features"])
        values["categories"] = dict(data.get("categories") or {})
        values["lineage"] = Lineage.from_json(data["lineage"])
        return cls(**values)

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, default=str).encode()
