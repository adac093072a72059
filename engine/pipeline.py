"""The nightly run: the stages in order. The only module that wires stages together.

run(spark, cfg, date)   one nightly run for logical date D, catching up on missed nights:
  features        MAP 1: every source day <= D without a feature partition (one job per set)
  validation      MAP 2: every partition without a verdict for its current content (the ones
                  just computed, and any a crashed run or another writer left unvalidated)
  training_sets   REDUCE: valid, matured partitions -> training sets of the models due on D
                  (a partition without a current verdict counts as quarantined)
  train           every (model, segment) pair in one Spark job; registry; promotion gate
Each stage is recorded in the `runs` table, failed ones too; metrics are exported at the end.
The run's status (observability.run_status) gives the exit code (engine.exit_codes).
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import os
from contextlib import contextmanager
from typing import Callable, Iterator

from engine import catalog, plugins
from engine import features as feature_map
from engine.config import Config
from engine.errors import UsageError
from engine.lock import lakehouse_lock
from engine.observability import (
    ModelOutcome,
    RunSummary,
    StageRecord,
    new_run_id,
    processed_dates,
    run_status,
    utcnow,
    write_stage,
)

log = logging.getLogger("retrain")
# progress(message, fraction done): the CLI draws a bar; the default does nothing.
Progress = Callable[[str, float], None]
STAGES = ("features", "validation", "training_sets", "train")
# Recomputing partitions whose windows read a day quarantined in the same run can quarantine
# another day (rarely); a few rounds reach the fixed point.
MAX_DEPENDENT_ROUNDS = 3


def latest_complete_day(today: dt.date | None = None) -> dt.date:
    """The default logical date: yesterday (UTC)."""
    return (today or dt.datetime.now(dt.timezone.utc).date()) - dt.timedelta(days=1)


class _JobCounter:
    """Counts the Spark jobs a stage starts: a job group set around it (on this thread; the
    status tracker lists the group's job ids)."""

    def __init__(self, spark, group: str, description: str):
        self.context = spark.sparkContext if spark is not None else None
        self.group = group
        if self.context is not None:
            self.context.setJobGroup(group, description)

    def stop(self) -> int | None:
        if self.context is None:
            return None
        try:
            return len(self.context.statusTracker().getJobIdsForGroup(self.group))
        finally:
            self.context.setLocalProperty("spark.jobGroup.id", None)
            self.context.setLocalProperty("spark.job.description", None)


class Run:
    """Records the stages of one run for one logical date."""

    def __init__(self, spark, cfg: Config, logical_date: dt.date, progress: Progress | None = None,
                 night: tuple[int, int] = (0, 1)):
        self.spark = spark
        self.cfg = cfg
        self.summary = RunSummary(run_id=new_run_id(logical_date), logical_date=logical_date)
        self.progress = progress or (lambda message, fraction: None)
        self.night = night  # (index, number of nights) of a catch-up
        self.runs_path = catalog.Catalog.of(cfg).runs

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        record = StageRecord(self.summary.run_id, self.summary.logical_date, name)
        index, nights = self.night
        step = STAGES.index(name) if name in STAGES else 0
        self.progress(f"{self.summary.logical_date} {name}", (index + step / len(STAGES)) / nights)
        jobs = _JobCounter(self.spark, f"retrain-{self.summary.run_id}-{name}", f"retrain {record.logical_date} {name}")
        try:
            yield record
        except BaseException as e:
            record.status = "failed"
            record.error = f"{type(e).__name__}: {e}"
            raise
        else:
            if record.status == "running":
                record.status = "success"
        finally:
            record.ended_at = utcnow()
            record.spark_jobs = jobs.stop()
            self.summary.stages.append(record)
            write_stage(self.spark, self.runs_path, record)
            log.info("%s %s: %s %s", record.logical_date, name, record.status, record.detail or "")


def run_date(spark, cfg: Config, logical_date: dt.date, progress: Progress | None = None,
             dates: dict[str, list[dt.date]] | None = None, train: bool = True,
             recompute: bool = False, night: tuple[int, int] = (0, 1)) -> RunSummary:
    """One run for one logical date. `dates` (feature set -> ds) overrides the incremental
    choice of partitions (backfill); `recompute` rebuilds the logical date's own partition
    too; `train=False` stops after validation."""
    run = Run(spark, cfg, logical_date, progress, night)
    summary = run.summary
    overall = StageRecord(summary.run_id, logical_date, "run", started_at=summary.started_at)
    try:
        check_tables(spark, cfg)
        computed = _features_stage(run, logical_date, dates, recompute)
        validation_run_id = _validation_stage(run, computed)
        # Quarantine holds through windows: a day quarantined just now must not feed the
        # rolling windows or as-of joins of partitions computed before it was judged.
        for round_ in range(1, MAX_DEPENDENT_ROUNDS + 1 if summary.quarantined else 1):
            if not _dependents_stage(run, round_):
                break
        if train:
            _training_stages(run, logical_date, validation_run_id)
        summary.status = run_status(summary)
        if summary.status == "failed":
            overall.error = "every (model, segment) pair that tried to train failed; the night will be retried"
    except BaseException as e:
        summary.status = "failed"
        overall.error = f"{type(e).__name__}: {e}"
        raise
    finally:
        summary.ended_at = overall.ended_at = utcnow()
        overall.status = summary.status
        overall.rows_out = sum(s.rows_out or 0 for s in summary.stages)
        overall.spark_jobs = sum(s.spark_jobs or 0 for s in summary.stages)
        write_stage(spark, run.runs_path, overall)
        summary.stages.append(overall)
        _export_metrics(cfg, summary)
    return summary


def check_tables(spark, cfg: Config) -> None:
    """Load the Delta log of every table a night writes before it writes any: a damaged log
    (of the registry, say, which is written last) is one TableError naming the table, and the
    night commits nothing rather than its features and validation without its models."""
    from engine import tables

    cat = catalog.Catalog.of(cfg)
    paths = [cat.path(spec) for spec in catalog.SMALL_TABLES if spec is not catalog.RUNS]
    for path in [*paths, cat.training_sets, *(cat.features(name) for name in cfg.feature_sets)]:
        tables.version(path, spark)  # None when there is no table yet; TableError when its log is damaged


def _excluded_source_days(run: Run) -> dict[str, frozenset[dt.date]]:
    """Source days that must not feed any window: the quarantined partitions of every set."""
    from engine.validation import quarantined_dates

    quarantined = {name: quarantined_dates(run.spark, run.cfg, name) for name in run.cfg.feature_sets}
    return feature_map.excluded_source_days(run.cfg, quarantined)


def _features_stage(run: Run, logical_date: dt.date, dates: dict[str, list[dt.date]] | None,
                    recompute: bool) -> dict[str, list[dt.date]]:
    """Compute the new partitions (or `dates`), plus every partition whose windows read
    other days than they would now (a day quarantined or released since it was computed)."""
    computed: dict[str, list[dt.date]] = {}
    with run.stage("features") as record:
        rows = 0
        excluded = _excluded_source_days(run)
        stale_total = 0
        for name, fs in run.cfg.feature_sets.items():
            if dates is not None:
                todo = list(dates.get(name, []))
            else:
                todo = feature_map.pending_dates(run.spark, run.cfg, fs, logical_date)
                if logical_date not in todo and (recompute or logical_date not in
                                                 feature_map.computed_dates(run.spark, run.cfg, fs)):
                    todo.append(logical_date)  # write_features names the source if it lacks the day
            stale = set(feature_map.stale_dates(run.spark, run.cfg, fs, excluded)) - set(todo)
            stale_total += len(stale)
            todo = sorted(set(todo) | stale)
            if not todo:
                continue
            _, n = feature_map.write_features(run.spark, run.cfg, fs, todo, excluded)
            computed[name] = todo
            rows += n
        record.rows_out = rows
        record.detail = ", ".join(f"features/{k}: {len(v)} partitions" for k, v in computed.items()) or "nothing new"
        if stale_total:
            record.detail += f" ({stale_total} recomputed: their windows read a day quarantined or released since)"
    return computed


def _stale(run: Run, excluded: dict[str, frozenset[dt.date]]) -> dict[str, list[dt.date]]:
    stale = {name: feature_map.stale_dates(run.spark, run.cfg, fs, excluded) for name, fs in run.cfg.feature_sets.items()}
    return {name: dates for name, dates in stale.items() if dates}


def _dependents_stage(run: Run, round_: int) -> bool:
    """Recompute (and revalidate) the partitions whose windows read a day this run quarantined;
    False when there are none."""
    excluded = _excluded_source_days(run)
    stale = _stale(run, excluded)
    if not stale:
        return False
    with run.stage("dependents") as record:
        rows = 0
        for name, dates in stale.items():
            _, n = feature_map.write_features(run.spark, run.cfg, run.cfg.feature_sets[name], dates, excluded)
            rows += n
        _validate(run, stale, record, f"{run.summary.run_id}-dependents-{round_}")
        record.rows_out = rows
        record.detail = (", ".join(f"features/{k}: {len(v)} partitions" for k, v in stale.items())
                         + " recomputed without the days quarantined in this run; " + record.detail)
    return True


def _validation_stage(run: Run, computed: dict[str, list[dt.date]]) -> str | None:
    """Validate every partition that lacks a verdict for its current content: those just
    computed, and any left unvalidated by a crash, a failed run or another writer."""
    from engine.validation import unverdicted_dates

    with run.stage("validation") as record:
        todo = {name: unverdicted_dates(run.spark, run.cfg, name) for name in run.cfg.feature_sets}
        todo = {name: dates for name, dates in todo.items() if dates}
        if not todo:
            record.status = "skipped"
            record.detail = "every partition has a current verdict"
            return None
        _validate(run, todo, record)
        # partitions computed before this run that had no current verdict
        earlier = sum(len(set(dates) - set(computed.get(name, []))) for name, dates in todo.items())
        if earlier:
            record.detail += f" ({earlier} left unvalidated by an earlier run)"
    return run.summary.run_id


def _validate(run: Run, todo: dict[str, list[dt.date]], record: StageRecord, validation_id: str | None = None) -> None:
    """Validate `todo`; `validation_id` names a second validation of partitions in the same
    run (after their recompute), so each (ds, validation id) has one set of results."""
    from engine.validation import validate_partitions

    quarantined = 0
    for name, dates in todo.items():
        report = validate_partitions(run.spark, run.cfg, name, dates, validation_id or run.summary.run_id)
        if report.quarantined:
            seen = run.summary.quarantined.get(report.table, [])
            run.summary.quarantined[report.table] = sorted(set(seen) | set(report.quarantined))
        run.summary.validation_failures.extend(report.alerts)
        run.summary.warnings.extend(report.warnings)
        quarantined += len(report.quarantined)
    record.rows_in = sum(len(dates) for dates in todo.values())
    record.detail = f"{record.rows_in} partitions checked, {quarantined} quarantined"


def _training_stages(run: Run, logical_date: dt.date, validation_run_id: str | None) -> None:
    due = [m for m in run.cfg.models.values() if m.due(logical_date)]
    if not due:
        with run.stage("training_sets") as record:
            record.status = "skipped"
            record.detail = "no model due"
        return
    from engine.training import train_models
    from engine.training_sets import build_training_sets
    from engine.validation import unusable_dates

    # Quarantined or without a current verdict: neither reaches a training set.
    excluded = {name: unusable_dates(run.spark, run.cfg, name) for name in {m.feature_set for m in due}}
    with run.stage("training_sets") as record:
        sets = build_training_sets(run.spark, run.cfg, due, logical_date, run.summary.run_id, excluded)
        record.rows_out = sum(sets.rows.values())
        for model_id, reason in sets.skipped.items():
            run.summary.models.append(ModelOutcome(model_id, "*", "skipped", reason=reason))
            run.summary.notes.append(f"{model_id} not retrained: {reason}")
        record.detail = f"{len(due) - len(sets.skipped)} models, {len(sets.skipped)} skipped"
    trainable = [m for m in due if m.model_id not in sets.skipped]
    if not trainable:
        return
    with run.stage("train") as record:
        outcomes = train_models(run.spark, run.cfg, trainable, logical_date, run.summary.run_id, sets, validation_run_id)
        run.summary.models.extend(outcomes)
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("champion", "rejected", "failed", "waiting")}
        record.rows_out = len(outcomes)
        record.detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v or k != "waiting")
        trained = counts["champion"] + counts["rejected"]
        if counts["failed"] and not trained:
            record.status = "failed"
            record.error = f"all {counts['failed']} (model, segment) pairs that tried to train failed"


def _export_metrics(cfg: Config, summary: RunSummary) -> None:
    from engine.metrics import export_metrics

    try:
        export_metrics(summary, cfg.project.metrics, catalog.Catalog.of(cfg).metrics_file, pipeline=cfg.project.name)
    except Exception as e:  # metrics must never fail a run
        log.warning("metrics export failed: %s", e)


def maintain_tables(spark, cfg: Config) -> None:
    """Checkpoint, compact and vacuum the small tables every night appends to, so reading them
    stays flat after a year of nights. A failure is logged, never fails the run."""
    from engine import tables

    try:
        tables.maintain_small_tables(catalog.Catalog.of(cfg), spark)
    except Exception as e:
        log.warning("table maintenance skipped: %s", e)


def write_report(spark, cfg: Config) -> str | None:
    """The nightly HTML report (<lakehouse>/reports/latest.html + a dated copy), when
    `reports.nightly`; a report never fails a run (None when it was not written)."""
    if not cfg.project.reports.nightly:
        return None
    from engine.report_html import write_report as write

    try:
        return write(spark, cfg, data_docs=cfg.project.reports.data_docs)
    except Exception as e:
        log.warning("report not written: %s", e)
        return None


# --------------------------------------------------------------------------- entry points


def run(spark, cfg: Config, logical_date: dt.date | None = None, force: bool = False,
        progress: Progress | None = None) -> list[RunSummary]:
    """The nightly job for `logical_date` (default: the latest complete day).

    Catches up on missed nights in order (every date after the last processed night up to
    `logical_date`; a failed night is not processed, so it is retried). A date already
    processed is skipped unless `force`; re-running it with `force` recomputes its partitions
    (and so revalidates them), so tables hold the same rows.
    """
    logical_date = logical_date or latest_complete_day()
    owner = f"run {logical_date} on {socket.gethostname()} pid {os.getpid()}"
    check_suites(cfg)
    plugins.ship(spark, cfg)  # the Python workers import the project's plugins too
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
        done = processed_dates(spark, catalog.Catalog.of(cfg).runs)
        if logical_date in done and not force:
            log.info("%s already processed; nothing to do (use --force to recompute)", logical_date)
            return [RunSummary(run_id="-", logical_date=logical_date, status="skipped", ended_at=utcnow(),
                               notes=[f"{logical_date} was already processed; nothing changed"])]
        last = max((d for d in done if d < logical_date), default=None)
        todo = [logical_date]
        if last is not None and not force:
            todo = [last + dt.timedelta(days=i) for i in range(1, (logical_date - last).days + 1)]
        summaries = [run_date(spark, cfg, d, progress, recompute=force, night=(i, len(todo)))
                     for i, d in enumerate(todo)]
        maintain_tables(spark, cfg)
        return summaries


def check_suites(cfg: Config) -> None:
    """Parse every feature set's expectation suite before anything runs: a malformed suite is
    a config error (SuiteError, exit 2) that leaves every table as it was."""
    from engine.validation.suites import load_suite, suite_path

    for name in cfg.feature_sets:
        if suite_path(cfg, name).exists():
            load_suite(suite_path(cfg, name))


def backfill(spark, cfg: Config, start: dt.date, end: dt.date, progress: Progress | None = None) -> RunSummary:
    """Recompute features and validation for every source day in [start, end] in one job."""
    if end < start:
        raise UsageError(f"backfill: --end {end} is before --start {start}")
    check_suites(cfg)
    plugins.ship(spark, cfg)
    owner = f"backfill {start}..{end} on {socket.gethostname()} pid {os.getpid()}"
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
        dates = {}
        for name, fs in cfg.feature_sets.items():
            dates[name] = [d for d in feature_map.source_dates(spark, cfg, fs.source) if start <= d <= end]
        if not any(dates.values()):
            raise UsageError(f"backfill: no source partitions between {start} and {end}")
        return run_date(spark, cfg, end, progress, dates=dates, train=False)


def validate(spark, cfg: Config, start: dt.date, end: dt.date, progress: Progress | None = None) -> RunSummary:
    """Validation alone, for the computed feature partitions in [start, end]."""
    if end < start:
        raise UsageError(f"validate: --end {end} is before --start {start}")
    computed = {}
    for name, fs in cfg.feature_sets.items():
        dates = [d for d in feature_map.computed_dates(spark, cfg, fs) if start <= d <= end]
        if dates:
            computed[name] = dates
    if not computed:
        raise UsageError(f"validate: no computed feature partitions between {start} and {end}")
    run_ = Run(spark, cfg, end, progress)
    with run_.stage("validation") as record:
        _validate(run_, computed, record)
    run_.summary.status = run_status(run_.summary)
    run_.summary.ended_at = utcnow()
    return run_.summary


__all__ = ["run", "run_date", "backfill", "validate", "latest_complete_day"]
