"""The validation stage's public functions (the pipeline and the CLI call these)."""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import catalog, tables
from engine.config import Config
from engine.errors import UsageError
from engine.observability import ValidationFailure, utcnow
from engine.features import SOURCE_DAYS
from engine.validation import alerts as alerting
from engine.validation import learned, store, summaries
from engine.validation.errors import ReleaseError, ValidationError
from engine.validation.entity import ENTITY_INDEX
from engine.validation.evaluate import evaluate
from engine.validation.suites import check_columns, load_suite, suite_path
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
    contents = store.partition_contents(features_path, version, spark) if version is not None else {}
    missing = [d for d in dates if d not in contents]
    if missing:
        raise ValidationError(f"validation: {table} has no partition ds={missing[0]} "
                              f"(expected one of the {len(contents)} computed partitions)")
    now = utcnow()

    def status_row(d: dt.date, status: str, failures: list[ValidationFailure]) -> dict:
        return {"table": table, "ds": d, "status": status, "reasons": store.reasons_json(failures),
                "run_id": run_id, "updated_at": now, "released_by": None, "release_reason": None,
                "table_version": version, "content_id": contents[d]}

    fs = cfg.feature_sets[feature_set]
    settings = cfg.project.validation.learned.merged(fs.learned)
    warnings: list[str] = []
    path = suite_path(cfg, feature_set)
    suite = load_suite(path) if path.exists() else None
    if suite is None:
        # one line in the run summary (not also in the log: the terminal would show it twice)
        warning = f"{table} has no expectation suite ({path}): only entity keys" + (
            " and learned checks" if settings.enabled else "") + " judge its partitions"
        log.debug("validation: %s", warning)
        warnings.append(warning)
    # `_source_days` is lineage (what each partition read), not data: it is not validated.
    df = tables.read(spark, features_path, version=version, partitions=dates).drop(SOURCE_DAYS)
    if suite is not None:  # a suite naming a column the table lacks is the suite's fault, not the data's
        check_columns(suite, df.columns, table)
    aggregations = _summary_aggregations(df.schema, fs, settings, _model_segments(cfg, feature_set)) \
        if settings.enabled else []
    evaluation = evaluate(spark, df, suite, dates, entity=list(fs.entity), extra_aggregations=aggregations)
    checks = evaluation.checks
    by_index = {c.index: c for c in checks}

    verdicts = {d: decide(table, d, checks, evaluation.outcomes[d]) for d in dates}
    summary_rows = [r for d in dates if d in evaluation.extras
                    for r in summaries.summary_rows(table, d, evaluation.extras[d], run_id=run_id)]
    judgements = {}
    if settings.enabled:
        judgements = _judge(spark, cfg, fs, table, dates, summary_rows, settings,
                            blocked={d for d, v in verdicts.items() if v.status == QUARANTINED})
        learning = [j for j in judgements.values() if j.learning]
        capped = [j for j in judgements.values() if j.capped]
        if capped:
            would = sum(1 for j in capped if j.failed and any(r.severity == "block" for r in j.failed))
            warnings.append(f"{table}: learned checks would have quarantined {would} of the {len(capped)} "
                            f"partitions judged (more than max_quarantine_share "
                            f"{settings.max_quarantine_share:g}): none quarantined by them, their alerts are "
                            "warnings; look at the data (a changed source?) and release or re-run")
        if learning:
            warnings.append(f"{table}: learned checks in learning mode for {len(learning)} partition(s) "
                            f"(recorded, never quarantining) until {settings.min_history} valid partitions "
                            "of history exist")

    result_rows, profile_rows, status_rows, records = [], [], [], []
    statuses: dict[dt.date, str] = {}
    all_alerts: list[ValidationFailure] = []
    for d in dates:
        outcomes = evaluation.outcomes[d]
        verdict = verdicts[d]
        messages = {}
        failed = [o for o in outcomes if not o.success]
        for o, f in zip(failed, verdict.failures):
            messages[o.index] = f.message
            records.append(alerting.alert_record(f, run_id, observed=o.observed_value, expected=by_index[o.index].kwargs))
        failures = list(verdict.failures)
        status = verdict.status
        judgement = judgements.get(d)
        if judgement is not None:
            entity_failed = any(o.index == ENTITY_INDEX for o in failed)
            for r in judgement.failed:
                if entity_failed and r.statistic == "dup_key_fraction":
                    continue  # the exact entity check said it already (one alert, not two)
                f = ValidationFailure(table=table, ds=d, column=None if r.column == "*" else r.column,
                                      expectation=r.type, severity="warn" if judgement.capped else r.severity,
                                      message=r.message or f"{table} ds={d}: {r.type}")
                failures.append(f)
                records.append(alerting.alert_record(f, run_id, observed=r.observed,
                                                     expected=[r.expected_low, r.expected_high]))
            if judgement.quarantine:
                status = QUARANTINED
            result_rows += [r.result_row(run_id) for r in judgement.results]
        statuses[d] = status
        all_alerts.extend(failures)
        result_rows += store.result_rows(run_id, table, d, checks, outcomes, messages)
        profile_rows += store.profile_rows(run_id, table, d, evaluation.profiles[d])
        status_rows.append(status_row(d, status, failures))
        if suite is not None:
            store.write_document(store.docs_path(cfg, feature_set, d, run_id),
                                 store.validation_document(suite, run_id, table, d, outcomes))

    store.write_results(spark, cfg, result_rows)
    store.write_profiles(spark, cfg, profile_rows)
    store.write_summaries(spark, cfg, summary_rows)
    store.upsert_statuses(spark, cfg, status_rows)  # last: the verdict commits after its evidence
    alerting.append_lines(catalog.Catalog.of(cfg).alerts_file, records)
    if cfg.project.validation.webhook_url:
        alerting.post_webhook(cfg.project.validation.webhook_url, records, run_id)
    seconds = time.monotonic() - started
    bad = sorted(d for d, s in statuses.items() if s == QUARANTINED)
    log.info("validation: %s %d partitions in %.1fs, %d quarantined, %d alerts", table, len(dates), seconds,
             len(bad), len(all_alerts))
    return ValidationReport(table, dates, statuses, all_alerts, len(result_rows), seconds,
                            note="" if suite is not None else f"no suite ({path})", warnings=warnings,
                            evaluated_by_gx=evaluation.gx_types)


EMPTY_CONTENT = "empty"  # the content id of a partition that has no rows (no files to hash)
EMPTY_CHECK = "expect_table_row_count_to_be_between"


def record_empty_partitions(spark, cfg: Config, feature_set: str, reasons: dict[dt.date, str],
                            run_id: str) -> ValidationReport:
    """Quarantine the `features/<feature_set>` partitions that came out with 0 rows (an empty
    ds= folder or 0-row files in the source): a verdict the scheduler sees (the run is
    `blocked`, exit 3) with one table-level alert each, `reasons[ds]` saying why. A day
    already recorded empty keeps its verdict (and a release of it) and is not reported again;
    when its rows arrive, the partition has content and is validated as any other."""
    started = time.monotonic()
    table = _table(feature_set)
    known = {s.ds: s for s in partition_statuses(spark, cfg, table) if s.content_id == EMPTY_CONTENT}
    dates = sorted(d for d in reasons if d not in known)
    if not dates:
        return ValidationReport(table, [], {}, [], 0, time.monotonic() - started, note="no new empty partitions")
    version = tables.version(catalog.Catalog.of(cfg).features(feature_set), spark)
    now = utcnow()
    failures = [ValidationFailure(table=table, ds=d, column=None, expectation=EMPTY_CHECK, severity="block",
                                  message=f"{table} ds={d}: 0 rows, expected at least 1 ({reasons[d]})")
                for d in dates]
    store.upsert_statuses(spark, cfg, [
        {"table": table, "ds": f.ds, "status": QUARANTINED, "reasons": store.reasons_json([f]), "run_id": run_id,
         "updated_at": now, "released_by": None, "release_reason": None, "table_version": version,
         "content_id": EMPTY_CONTENT} for f in failures])
    records = [alerting.alert_record(f, run_id, observed=0, expected={"min_value": 1}) for f in failures]
    alerting.append_lines(catalog.Catalog.of(cfg).alerts_file, records)
    if cfg.project.validation.webhook_url:
        alerting.post_webhook(cfg.project.validation.webhook_url, records, run_id)
    log.warning("validation: %s: %d partition(s) with 0 rows quarantined: %s", table, len(dates),
                ", ".join(map(str, dates)))
    return ValidationReport(table, dates, {d: QUARANTINED for d in dates}, failures, 0, time.monotonic() - started)


def _model_segments(cfg: Config, feature_set: str) -> list[str]:
    """The segment_by columns of the models trained on this feature set (a partial load of one
    segment is watched by default: issue 20)."""
    return sorted({m.segment_by for m in cfg.models.values() if m.feature_set == feature_set and m.segment_by})


def _summary_aggregations(schema, fs, settings, model_segments: list[str] = ()) -> list:
    names = set(schema.fieldNames())
    event_time = fs.event_time if fs.event_time in names else None
    sources = [c for c in dict.fromkeys([*fs.entity, *fs.columns, *([event_time] if event_time else [])]) if c in names]
    segments = [c for c in dict.fromkeys([*settings.segment_by, *model_segments]) if c in names]
    return summaries.summary_aggregations(schema, entity=fs.entity, event_time=event_time,
                                          segment_columns=segments, source_columns=sources,
                                          columns=settings.columns)


def _judge(spark, cfg: Config, fs, table: str, dates: list[dt.date], new_rows: list[dict], settings,
           blocked: set[dt.date]) -> dict:
    """Learned checks: each of `dates` against the summaries of the valid partitions before it
    (the summary of the run that gave each partition its current verdict: a re-run or a
    released partition counts once, with its current content)."""
    judged = set(dates)
    current = {s.ds: s for s in partition_statuses(spark, cfg, table) if s.ds not in judged}
    oldest = min(dates) - dt.timedelta(days=10 * settings.history_days)
    history = [r for r in store.read_summaries(spark, cfg, table, since=oldest)
               if r["ds"] in current and r["run_id"] == current[r["ds"]].run_id]
    sources = list(dict.fromkeys([*fs.entity, *fs.columns]))
    judgements = learned.judge(history + new_rows, table=table, days=dates,
                               statuses={d: s.status for d, s in current.items()}, settings=settings,
                               sources=learned.source_columns_of(fs.features, sources), blocked=blocked,
                               entity=fs.entity, context=learned.context_columns(fs),
                               failed_columns=learned.failed_columns_of(current.values()),
                               inputs=learned.input_columns_of(fs.features, sources))
    return {j.ds: j for j in judgements}


def suggest(spark, cfg: Config, feature_set: str, *, out: str | None = None, force: bool = False) -> Path:
    """Write a GX 1.x suite whose bounds held over the valid history of features/<feature_set>
    (for a person to review and keep); refuses to replace an existing suite unless `force`."""
    from engine.validation.suggest import suggest_suite, write_suite

    if feature_set not in cfg.feature_sets:
        raise UsageError(f"suggest: unknown feature set {feature_set!r} (expected one of {sorted(cfg.feature_sets)})")
    path = Path(out) if out else suite_path(cfg, feature_set)
    if path.exists() and not force:
        raise UsageError(f"suggest: {path} exists; pass --out elsewhere (or --force to replace it)")
    table = _table(feature_set)
    valid = {s.ds: s for s in partition_statuses(spark, cfg, table) if s.status == VALID}
    rows = [r for r in store.read_summaries(spark, cfg, table, since=dt.date.min)
            if r["ds"] in valid and r["run_id"] == valid[r["ds"]].run_id]
    if not rows:
        raise UsageError(f"suggest: {table} has no valid partition with a summary yet; run the nightly job first")
    fs = cfg.feature_sets[feature_set]
    settings = cfg.project.validation.learned.merged(fs.learned)
    suite = suggest_suite(rows, name=feature_set, valid_days=sorted(valid), entity=fs.entity,
                          history_days=settings.history_days)
    return write_suite(suite, path)


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


def warned_dates(spark, cfg: Config, feature_set: str) -> set[dt.date]:
    """The valid partitions of features/<feature_set> whose latest validation warned (a window
    that reads one records it in `_source_days`; see engine/features.py)."""
    return {s.ds for s in partition_statuses(spark, cfg, _table(feature_set)) if s.status == VALID and s.reasons}


def _current(spark, cfg: Config, feature_set: str) -> tuple[dict[dt.date, str], dict[dt.date, PartitionStatus]]:
    """(content id of every computed partition, its verdict if that judged this content)."""
    path = catalog.Catalog.of(cfg).features(feature_set)
    version = tables.version(path, spark)
    if version is None:
        return {}, {}
    contents = store.partition_contents(path, version, spark)
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

