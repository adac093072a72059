"""What the report shows, read from the lakehouse once into plain Python values.

Tables come through engine.tables and paths through engine.catalog; a table that does not
exist yet is an empty list (a report of a young lakehouse has fewer charts, never an error).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from engine import catalog, tables

PERIOD_DAYS = 28  # default report period, ending at the latest logical date


@dataclass
class ReportData:
    project: str
    lakehouse: str
    start: dt.date
    end: dt.date
    runs: list[dict[str, Any]] = field(default_factory=list)  # rows of `runs`
    results: list[dict[str, Any]] = field(default_factory=list)  # validation/results, latest run per partition
    all_results: list[dict[str, Any]] = field(default_factory=list)  # every run (golden signals)
    profiles: list[dict[str, Any]] = field(default_factory=list)  # validation/profiles, latest run per partition
    summaries: list[dict[str, Any]] = field(default_factory=list)  # validation/summaries (learned checks), if any
    partitions: list[dict[str, Any]] = field(default_factory=list)  # validation/partitions
    registry: list[dict[str, Any]] = field(default_factory=list)
    slo: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # model -> (min, max)

    @property
    def feature_tables(self) -> list[str]:
        names = {r["table"] for r in self.partitions} | {r["table"] for r in self.profiles}
        return sorted(names)


def _rows(spark, path: str) -> list[dict[str, Any]]:
    table = tables.read_rows(path, spark=spark)
    return [] if table is None else table.to_pylist()


def _latest_per_partition(rows: list[dict[str, Any]], latest_run: dict[tuple[str, dt.date], str]) -> list[dict]:
    """Only the rows of the run that gave each (table, ds) its current status."""
    fallback: dict[tuple[str, dt.date], str] = {}
    for r in rows:
        key = (r["table"], r["ds"])
        fallback[key] = max(fallback.get(key, ""), r["run_id"])
    return [r for r in rows if r["run_id"] == latest_run.get((r["table"], r["ds"]), fallback[(r["table"], r["ds"])])]


def load(spark, cfg, *, start: dt.date | None = None, end: dt.date | None = None) -> ReportData:
    lake = catalog.Catalog.of(cfg)
    runs = _rows(spark, lake.runs)
    partitions = _rows(spark, lake.validation_partitions)
    if end is None:
        days = [r["logical_date"] for r in runs] + [r["ds"] for r in partitions]
        end = max(days, default=dt.datetime.now(dt.timezone.utc).date())
    if start is None:
        start = end - dt.timedelta(days=PERIOD_DAYS - 1)
    in_period = lambda d: d is not None and start <= d <= end  # noqa: E731
    latest_run = {(r["table"], r["ds"]): r["run_id"] for r in partitions}
    all_results = [r for r in _rows(spark, lake.validation_results) if in_period(r["ds"])]
    profiles = [r for r in _rows(spark, lake.validation_profiles) if in_period(r["ds"])]
    summaries = []
    if tables.exists(lake.validation_summaries, spark):
        summaries = [r for r in _rows(spark, lake.validation_summaries) if in_period(r["ds"])]
        summaries = _latest_per_partition(summaries, latest_run)
    return ReportData(
        project=cfg.project.name, lakehouse=lake.root, start=start, end=end,
        runs=[r for r in runs if in_period(r["logical_date"])],
        results=_latest_per_partition(all_results, latest_run), all_results=all_results,
        profiles=_latest_per_partition(profiles, latest_run),
        summaries=summaries,
        partitions=[r for r in partitions if in_period(r["ds"])],
        registry=_rows(spark, lake.registry),
        slo={m.model_id: (m.slo.min, m.slo.max) for m in cfg.models.values()},
    )


def learned_details(row: dict[str, Any]) -> dict[str, Any] | None:
    """The learned check's details (score, threshold, expected band) of a results row, or None."""
    if row.get("evaluated_by") != "learned" and not str(row.get("expectation_type", "")).startswith("learned:"):
        return None
    try:
        details = json.loads(row.get("kwargs") or "{}")
    except ValueError:
        return None
    return details if isinstance(details, dict) else None


def reasons(row: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return json.loads(row.get("reasons") or "[]")
    except ValueError:
        return []
