"""The validation stage's public functions (the pipeline and the CLI call these)."""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from engine import catalog, tables
from engine.config import Config
from engine.observability import ValidationFailure, utcnow
from engine.validation import alerts as alerting
from engine.validation import store
from engine.validation.errors import ReleaseError, ValidationError
from engine.validation.evaluate import evaluate
from engine.validation.suites import load_suite, suite_path
from engine.validation.verdicts import QUARANTINED, VALID, decide

log = logging.getLogger("retrain.validation")


@dataclass
class ValidationReport:
    table: str  # e.g. features/orders
    dates: list[dt.date]
    statuses: dict[dt.date, str]  # valid | quarantined
    alerts: list[ValidationFailure]  # one per failed expectation and partition (block and warn)
    results_rows: int
    seconds: float
    note: str = ""  # e.g. "no suite"
    warnings: list[str] = field(default_factory=list)  # for the run summary (e.g. a missing suite)
    evaluated_by_gx: list[str] = field(default_factory=list)  # expectation types that ran through GX

    @property
    def quarantined(self) -> list[dt.date]:
        return sorted(d for d, s in self.statuses.items() if s == QUARANTINED)


@dataclass
class PartitionStatus:
    table: str
    ds: dt.date
    status: str  # valid | quarantined
    reasons: list[ValidationFailure]  # failures recorded by the last validation (block and warn)
    run_id: str | None
    updated_at: dt.datetime | None
    released_by: str | None = None
    release_reason: str | None = None
    content_id: str | None = None  # the partition content the verdict judged


def _table(feature_set: str) -> str:
    return catalog.features(feature_set).name


def validate_partitions(spark, cfg: Config, feature_set: str, dates: list[dt.date], run_id: str) -> ValidationReport:
    """Validate the `features/<feature_set>` partitions `dates` (all in one pass) against
    expectations/<feature_set>.json; record results, profiles, statuses, GX docs and alerts.

    A partition is quarantined when a `block` expectation fails on it; a re-validation
    replaces its status (and clears an earlier release: it is new evidence). Each status
    records the content it judged (table version, content id): a partition rewritten later
    has no current verdict until it is validated again. Without a suite every partition is
    recorded valid, and the report carries a warning."""
    started = time.monotonic()
    table = _table(feature_set)
    dates = sorted(set(dates))
    if not dates:
        return ValidationReport(table, [], {}, [], 0, time.monotonic() - started, note="no partitions")
    features_path = catalog.Catalog.of(cfg).features(feature_set)
    version = tables.version(features_path, spark)
    contents = store.partition_contents(features_path, version) if version is not None else {}
    missing = [d for d in dates if d not in contents]
    if missing:
        raise ValidationError(f"validation: {table} has no partition ds={missing[0]} "
                              f"(expected one of the {len(contents)} computed partitions)")
    now = utcnow()

    def status_row(d: dt.date, status: str, failures: list[ValidationFailure]) -> dict:
        return {"table": table, "ds": d, "status": status, "reasons": store.reasons_json(failures),
                "run_id": run_id, "updated_at": now, "released_by": None, "release_reason": None,
                "table_version": version, "content_id": contents[d]}

    path = suite_path(cfg, feature_set)
    if not path.exists():
        warning = (f"{table} has no expectation suite ({path}): its {len(dates)} partition(s) "
                   "were recorded valid without checks")
        log.warning("validation: %s", warning)
        store.upsert_statuses(spark, cfg, [status_row(d, VALID, []) for d in dates])
        return ValidationReport(table, dates, {d: VALID for d in dates}, [], 0, time.monotonic() - started,
                                note=f"no suite ({path})", warnings=[warning])
    suite = load_suite(path)
    df = tables.read(spark, features_path, version=version, partitions=dates)
    evaluation = evaluate(spark, df, suite, dates)

    result_rows, profile_rows, status_rows, records = [], [], [], []
    statuses: dict[dt.date, str] = {}
    all_alerts: list[ValidationFailure] = []
    by_index = {c.index: c for c in suite.checks}
    for d in dates:
        outcomes = evaluation.outcomes[d]
        verdict = decide(table, d, suite.checks, outcomes)
        statuses[d] = verdict.status
        messages = {}
        failed = [o for o in outcomes if not o.success]
        for o, f in zip(failed, verdict.failures):
            messages[o.index] = f.message
            check = by_index[o.index]
            records.append(alerting.alert_record(f, run_id, observed=o.observed_value, expected=check.kwargs))
        all_alerts.extend(verdict.failures)
        result_rows += store.result_rows(run_id, table, d, suite.checks, outcomes, messages)
        profile_rows += store.profile_rows(run_id, table, d, evaluation.profiles[d])
        status_rows.append(status_row(d, verdict.status, verdict.failures))
        store.write_document(store.docs_path(cfg, feature_set, d, run_id),
                             store.validation_document(suite, run_id, table, d, outcomes))

    store.write_results(spark, cfg, result_rows)
    store.write_profiles(spark, cfg, profile_rows)
    store.upsert_statuses(spark, cfg, status_rows)  # last: the verdict commits after its evidence
    alerting.append_lines(catalog.Catalog.of(cfg).alerts_file, records)
    if cfg.project.validation.webhook_url:
        alerting.post_webhook(cfg.project.validation.webhook_url, records, run_id)
    seconds = time.monotonic() - started
    bad = sorted(d for d, s in statuses.items() if s == QUARANTINED)
    log.info("validation: %s %d partitions in %.1fs, %d quarantined, %d alerts", table, len(dates), seconds,
             len(bad), len(all_alerts))
    return ValidationReport(table, dates, statuses, all_alerts, len(result_rows), seconds,
                            evaluated_by_gx=evaluation.gx_types)


def _status(row: dict) -> PartitionStatus:
    return PartitionStatus(
        table=row["table"], ds=row["ds"], status=row["status"],
        reasons=store.reasons_from_json(row["table"], row["ds"], row.get("reasons")),
        run_id=row.get("run_id"), updated_at=row.get("updated_at"),
        released_by=row.get("released_by"), release_reason=row.get("release_reason"),
        content_id=row.get("content_id"))


def partition_statuses(spark, cfg: Config, table: str | None = None) -> list[PartitionStatus]:
    """The latest status of every validated partition (of one table, or all), by table and ds."""
    rows = [r for r in store.read_statuses(spark, cfg) if table is None or r["table"] == table]
    return [_status(r) for r in sorted(rows, key=lambda r: (r["table"], r["ds"]))]


def quarantined_dates(spark, cfg: Config, feature_set: str) -> set[dt.date]:
    """The ds partitions of features/<feature_set> whose latest status is quarantined."""
    return {s.ds for s in partition_statuses(spark, cfg, _table(feature_set)) if s.status == QUARANTINED}


def _current(spark, cfg: Config, feature_set: str) -> tuple[dict[dt.date, str], dict[dt.date, PartitionStatus]]:
    """(content id of every computed partition, its verdict if that judged this content)."""
    path = catalog.Catalog.of(cfg).features(feature_set)
    version = tables.version(path, spark)
    if version is None:
        return {}, {}
    contents = store.partition_contents(path, version)
    verdicts = {s.ds: s for s in partition_statuses(spark, cfg, _table(feature_set))
                if s.ds in contents and s.content_id == contents[s.ds]}
    return contents, verdicts


def unverdicted_dates(spark, cfg: Config, feature_set: str) -> list[dt.date]:
    """The computed partitions of features/<feature_set> without a verdict for their current
    content: never validated, or rewritten since (whoever wrote them, whatever crashed)."""
    contents, verdicts = _current(spark, cfg, feature_set)
    return sorted(d for d in contents if d not in verdicts)


def unusable_dates(spark, cfg: Config, feature_set: str) -> set[dt.date]:
    """The computed partitions that must not reach training: quarantined, or without a
    verdict for their current content."""
    contents, verdicts = _current(spark, cfg, feature_set)
    return {d for d in contents if d not in verdicts or verdicts[d].status != VALID}


def release_partition(spark, cfg: Config, table: str, ds: dt.date, reason: str, user: str) -> PartitionStatus:
    """Mark a quarantined partition valid, recording who released it, when and why."""
    if not reason or not reason.strip():
        raise ReleaseError("release: a reason is required")
    if not user or not user.strip():
        raise ReleaseError("release: a user is required")
    rows = store.read_statuses(spark, cfg)
    tables_known = sorted({r["table"] for r in rows})
    if table not in tables_known:
        raise ReleaseError(f"release: unknown table {table!r} (validated tables: {tables_known or 'none'})")
    match = [r for r in rows if r["table"] == table and r["ds"] == ds]
    if not match:
        raise ReleaseError(f"release: {table} ds={ds} has never been validated")
    row = match[0]
    if row["status"] != QUARANTINED:
        by = f" (released by {row['released_by']})" if row.get("released_by") else ""
        raise ReleaseError(f"release: {table} ds={ds} is {row['status']}{by}, not quarantined")
    updated = {**row, "status": VALID, "updated_at": utcnow(), "released_by": user.strip(),
               "release_reason": reason.strip()}
    store.upsert_statuses(spark, cfg, [updated])
    log.info("validation: %s ds=%s released by %s: %s", table, ds, user, reason)
    return _status(updated)

