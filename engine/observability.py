"""Run log: what each run and stage did, as data (Delta table `runs`) and as a summary.

The pipeline records every stage, failed ones too; metrics (engine/metrics.py) and the run
summary are made from the same records.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine import catalog

log = logging.getLogger("retrain")

RUNS_SCHEMA = catalog.RUNS.schema


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_run_id(logical_date: dt.date) -> str:
    return f"{logical_date:%Y%m%d}-{utcnow():%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class StageRecord:
    run_id: str
    logical_date: dt.date
    stage: str
    status: str = "running"
    started_at: dt.datetime = field(default_factory=utcnow)
    ended_at: dt.datetime | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    detail: str | None = None  # short human-readable result, e.g. "3 partitions"
    error: str | None = None
    spark_jobs: int | None = None  # Spark jobs of the stage's job group (run: all of the run's, between stages too)

    @property
    def duration_seconds(self) -> float:
        end = self.ended_at or utcnow()
        return (end - self.started_at).total_seconds()

    @property
    def seconds(self) -> float:
        return round(self.duration_seconds, 3)

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RUNS_SCHEMA.names}


@dataclass
class ModelOutcome:
    """One (model, segment) result of a run, for the summary and the metrics."""

    model_id: str
    segment: str
    status: str  # a records.ModelStatus value: champion | rejected | failed | skipped (whole model, segment "*") | waiting (not enough history yet)
    metric: str | None = None
    value: float | None = None
    champion_value: float | None = None
    version: str | None = None
    reason: str | None = None


@dataclass
class ValidationFailure:
    table: str
    ds: dt.date
    column: str | None
    expectation: str
    severity: str  # block | warn
    message: str


@dataclass
class RunSummary:
    run_id: str
    logical_date: dt.date
    status: str = "running"  # success | blocked | partial | failed | skipped (see run_status)
    started_at: dt.datetime = field(default_factory=utcnow)
    ended_at: dt.datetime | None = None
    stages: list[StageRecord] = field(default_factory=list)
    quarantined: dict[str, list[dt.date]] = field(default_factory=dict)  # table -> ds
    validation_failures: list[ValidationFailure] = field(default_factory=list)
    models: list[ModelOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a feature set without an expectation suite
    processed_as: str | None = None  # status "skipped" (already processed): the night's recorded status

    @property
    def duration_seconds(self) -> float:
        return ((self.ended_at or utcnow()) - self.started_at).total_seconds()

    def count_models(self, status: str) -> int:
        return sum(1 for m in self.models if m.status == status)


def write_stage(spark, runs_path: str, record: StageRecord) -> None:
    """Append one stage row to the `runs` table (one small commit). A signal during the write
    does not interrupt it (engine.signals.deferred); once the process is terminating the row
    is written without Spark, whose JVM a signal to the process group stops too."""
    from engine import signals, tables

    table = pa.Table.from_pylist([record.row()], schema=RUNS_SCHEMA)
    with signals.deferred():
        tables.write_rows(None if signals.terminating() else spark, runs_path, table, mode="append")


# Run statuses of a night that is done: the next run does not redo it (a failed night is retried).
PROCESSED = ("success", "blocked", "partial")
TRAINED = ("champion", "rejected")


def run_status(summary: RunSummary) -> str:
    """The status of a run that finished its stages, from what they did:
    failed   every (model, segment) pair that tried to train failed (nothing was trained)
    partial  some pairs failed to train, others trained
    blocked  data-quality checks held something back (a quarantined partition, a skipped model)
    success  everything due trained, or is rightly waiting for history
    """
    statuses = [m.status for m in summary.models]
    if "failed" in statuses:
        return "partial" if any(s in TRAINED for s in statuses) else "failed"
    if summary.quarantined or "skipped" in statuses:
        return "blocked"
    return "success"


def processed_dates(spark, runs_path: str) -> dict[dt.date, str]:
    """Every processed logical date -> the status its (latest) finished run recorded."""
    from engine import tables

    rows = tables.read_rows(runs_path, spark=spark)
    if rows is None:
        return {}
    finished = sorted((r for r in rows.to_pylist() if r["stage"] == "run" and r["status"] in PROCESSED),
                      key=lambda r: r["ended_at"] or r["started_at"])
    return {r["logical_date"]: r["status"] for r in finished}
