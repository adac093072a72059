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
from engine.errors import ConfigError, UsageError
from engine.lock import lakehouse_lock
from engine.signals import failure_text, terminating
from engine.observability import (
    PROCESSED,
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
    status tracker lists the group's job ids). `parent`: the (group, description) set again
    when it stops (the run's own group: the jobs between stages count too)."""

    def __init__(self, spark, group: str, description: str, parent: tuple[str, str] | None = None):
        self.context = spark.sparkContext if spark is not None else None
        self.group = group
        self.parent = parent
        if self.context is not None:
            self.context.setJobGroup(group, description)

    def stop(self) -> int | None:
        if self.context is None:
            return None
        try:
            return len(self.context.statusTracker().getJobIdsForGroup(self.group))
        except Exception:  # the JVM is gone (a crash): the stage row is still written
            return None
        finally:
            if self.parent is not None:
                self.context.setJobGroup(*self.parent)
            else:
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
        self.attempts: set[str] = set()  # earlier attempts of this date that never finished
        # the run's own job group: checks, lookups and stage records between the stages
        self.group = (f"retrain-{self.summary.run_id}-run", f"retrain {logical_date} (between stages)")

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        record = StageRecord(self.summary.run_id, self.summary.logical_date, name)
        index, nights = self.night
        step = STAGES.index(name) if name in STAGES else 0
        self.progress(f"{self.summary.logical_date} {name}", (index + step / len(STAGES)) / nights)
        jobs = _JobCounter(self.spark, f"retrain-{self.summary.run_id}-{name}", f"retrain {record.logical_date} {name}",
                           parent=self.group)
        try:
            log.info("%s %s: started", record.logical_date, name)
            yield record
        except BaseException as e:
            record.status = "failed"
            named = _named_read_failure(self.cfg, e)
            record.error = failure_text(e if named is None else named)
            if named is not None:
                raise named from e
            raise
        else:
            if record.status == "running":
                record.status = "success"
        finally:
            record.ended_at = utcnow()
            record.spark_jobs = None if terminating() else jobs.stop()
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
    between = _JobCounter(spark, *run.group)
    try:
        check_tables(spark, cfg)
        run.attempts = _unfinished_attempts(run)
        computed = _features_stage(run, logical_date, dates, recompute)
        validation_run_id = _validation_stage(run, computed)
        _carry_over_quarantines(run)
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
        overall.error = failure_text(e)
        raise
    finally:
        summary.ended_at = overall.ended_at = utcnow()
        overall.status = summary.status
        overall.rows_out = sum(s.rows_out or 0 for s in summary.stages)
        # every job of the run: its stages' and those between them (checks, lookups, records)
        overall.spark_jobs = sum(s.spark_jobs or 0 for s in summary.stages) + (
            0 if terminating() else (between.stop() or 0))
        write_stage(spark, run.runs_path, overall)
        summary.stages.append(overall)
        _export_metrics(cfg, summary)
    return summary


def _base_run_id(validation_id: str) -> str:
    """The run id of a verdict's validation id ('<run id>-dependents-<round>' -> '<run id>')."""
    return validation_id.split("-dependents-")[0]


def _unfinished_attempts(run: Run) -> set[str]:
    """Run ids of the earlier attempts of this logical date that never finished (killed,
    crashed, failed): what they committed is part of this night's work."""
    from engine import tables

    rows = tables.read_rows(run.runs_path, spark=run.spark)
    if rows is None:
        return set()
    rows = rows.to_pylist()
    finished = {r["run_id"] for r in rows if r["stage"] == "run" and r["status"] in PROCESSED}
    prefix = f"{run.summary.logical_date:%Y%m%d}-"  # observability.new_run_id
    ids = {r["run_id"] for r in rows if r["logical_date"] == run.summary.logical_date}
    # verdicts name their run too: an attempt killed before its first stage row still counts
    from engine.validation import partition_statuses

    ids |= {_base_run_id(s.run_id) for s in partition_statuses(run.spark, run.cfg) if s.run_id}
    return {i for i in ids if i.startswith(prefix) and i not in finished and i != run.summary.run_id}


def _carry_over_quarantines(run: Run) -> None:
    """A night's status is that of the night's work, whichever attempt did it: the partitions
    that earlier attempts of this logical date quarantined (attempts that never finished: a
    kill, a crash, a failure) count as quarantined by this run, as they would have been had
    the first attempt finished. Read from the committed verdicts, not from this process."""
    from engine.validation import partition_statuses

    attempts = run.attempts
    carried = 0
    for status in partition_statuses(run.spark, run.cfg) if attempts else []:
        if (status.status == "quarantined" and _base_run_id(status.run_id or "") in attempts
                and status.ds not in run.summary.quarantined.get(status.table, [])):
            run.summary.quarantined.setdefault(status.table, []).append(status.ds)
            run.summary.quarantined[status.table].sort()
            carried += 1
    if carried:
        run.summary.notes.append(f"{carried} partitions were quarantined by an earlier attempt of this night "
                                 "that did not finish; they count for this night")


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


def _warned_source_days(run: Run) -> dict[str, frozenset[dt.date]]:
    """Source days of valid partitions that had warnings: windows record reading them."""
    from engine.validation import warned_dates

    warned = {name: warned_dates(run.spark, run.cfg, name) for name in run.cfg.feature_sets}
    return feature_map.excluded_source_days(run.cfg, warned)


def _features_stage(run: Run, logical_date: dt.date, dates: dict[str, list[dt.date]] | None,
                    recompute: bool) -> dict[str, list[dt.date]]:
    """Compute the new partitions (or `dates`), plus every partition whose windows read
    other days than they would now (a day quarantined or released since it was computed)."""
    computed: dict[str, list[dt.date]] = {}
    with run.stage("features") as record:
        rows = 0
        excluded = _excluded_source_days(run)
        warned = _warned_source_days(run)
        stale_total = 0
        for name, fs in run.cfg.feature_sets.items():
            if dates is not None:
                todo = list(dates.get(name, []))
            else:
                todo = feature_map.pending_dates(run.spark, run.cfg, fs, logical_date)
                if logical_date not in todo and (recompute or logical_date not in
                                                 feature_map.computed_dates(run.spark, run.cfg, fs)):
                    todo.append(logical_date)  # write_features names the source if it lacks the day
            stale = set(feature_map.stale_dates(run.spark, run.cfg, fs, excluded, warned=warned)) - set(todo)
            stale_total += len(stale)
            todo = sorted(set(todo) | stale)
            if not todo:
                continue
            _, n = feature_map.write_features(run.spark, run.cfg, fs, todo, excluded, warned=warned)
            computed[name] = todo
            rows += n
        record.rows_out = rows
        record.detail = ", ".join(f"features/{k}: {len(v)} partitions" for k, v in computed.items()) or "nothing new"
        if stale_total:
            record.detail += f" ({stale_total} recomputed: their windows read a day quarantined or released since)"
    return computed


def _stale(run: Run, excluded: dict[str, frozenset[dt.date]],
           warned: dict[str, frozenset[dt.date]]) -> dict[str, list[dt.date]]:
    stale = {name: feature_map.stale_dates(run.spark, run.cfg, fs, excluded, warned=warned)
             for name, fs in run.cfg.feature_sets.items()}
    return {name: dates for name, dates in stale.items() if dates}


def _dependents_stage(run: Run, round_: int) -> bool:
    """Recompute (and revalidate) the partitions whose windows read a day this run quarantined;
    False when there are none."""
    excluded = _excluded_source_days(run)
    warned = _warned_source_days(run)
    stale = _stale(run, excluded, warned)
    if not stale:
        return False
    with run.stage("dependents") as record:
        rows = 0
        for name, dates in stale.items():
            _, n = feature_map.write_features(run.spark, run.cfg, run.cfg.feature_sets[name], dates, excluded,
                                              warned=warned)
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
        empty = _record_empty(run, computed)
        todo = {name: unverdicted_dates(run.spark, run.cfg, name) for name in run.cfg.feature_sets}
        todo = {name: dates for name, dates in todo.items() if dates}
        if not todo:
            record.status = "success" if empty else "skipped"
            record.detail = "every partition has a current verdict" + (f"; {empty} with 0 rows quarantined" if empty else "")
            return run.summary.run_id if empty else None
        from engine.sweep import drop_unjudged_evidence

        for name, dates in todo.items():  # a killed attempt's evidence without its verdict
            drop_unjudged_evidence(run.cfg, catalog.features(name).name, dates, run.attempts)
        _validate(run, todo, record)
        # partitions computed before this run that had no current verdict
        earlier = sum(len(set(dates) - set(computed.get(name, []))) for name, dates in todo.items())
        if earlier:
            record.detail += f" ({earlier} left unvalidated by an earlier run)"
        if empty:
            record.detail += f"; {empty} with 0 rows quarantined"
    return run.summary.run_id


def _record_empty(run: Run, computed: dict[str, list[dt.date]]) -> int:
    """Quarantine the partitions just computed that have no rows (an empty source day): the
    run is blocked and says which, rather than the day silently missing."""
    from engine.validation import record_empty_partitions

    count = 0
    for name, dates in computed.items():
        empty = feature_map.empty_partitions(run.spark, run.cfg, run.cfg.feature_sets[name], dates)
        if empty:
            report = record_empty_partitions(run.spark, run.cfg, name, empty, run.summary.run_id)
            _add_report(run, report)
            count += len(report.quarantined)
    return count


def _add_report(run: Run, report) -> None:
    if report.quarantined:
        seen = run.summary.quarantined.get(report.table, [])
        run.summary.quarantined[report.table] = sorted(set(seen) | set(report.quarantined))
    # a re-validation (dependents) replaces what an earlier one in this run said of a day
    redone = {(report.table, d) for d in report.dates}
    run.summary.validation_failures[:] = [f for f in run.summary.validation_failures if (f.table, f.ds) not in redone]
    run.summary.validation_failures.extend(report.alerts)
    run.summary.warnings.extend(w for w in report.warnings if w not in run.summary.warnings)


def _validate(run: Run, todo: dict[str, list[dt.date]], record: StageRecord, validation_id: str | None = None) -> None:
    """Validate `todo`; `validation_id` names a second validation of partitions in the same
    run (after their recompute), so each (ds, validation id) has one set of results."""
    from engine.validation import validate_partitions

    quarantined = 0
    for name, dates in todo.items():
        report = validate_partitions(run.spark, run.cfg, name, dates, validation_id or run.summary.run_id)
        _add_report(run, report)
        quarantined += len(report.quarantined)
    record.rows_in = sum(len(dates) for dates in todo.values())
    record.detail = f"{record.rows_in} partitions checked, {quarantined} quarantined"


def _named_read_failure(cfg: Config, error: BaseException):
    """A Spark action's failure on a corrupt data file of a feature table or training_sets
    (same size as the log says, so the log check passed), as one TableError naming table,
    partition and file (tables.read_failure); None for any other error."""
    from engine import tables
    from engine.errors import RetrainError

    if isinstance(error, RetrainError) or not isinstance(error, Exception):
        return None
    cat = catalog.Catalog.of(cfg)
    for path in [*(cat.features(name) for name in cfg.feature_sets), cat.training_sets]:
        named = tables.read_failure(path, error)
        if named is not None:
            return named
    return None


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


def sweep_uncommitted(cfg: Config) -> None:
    """Delete the files and artifact folders of attempts that never committed them
    (engine.sweep); under the lock. A failure is logged, never fails the run: such files are
    invisible to every reader of the tables."""
    from engine.sweep import sweep

    try:
        sweep(cfg)
    except Exception as e:
        log.warning("sweep of uncommitted files skipped: %s", e)


def maintain_tables(spark, cfg: Config) -> None:
    """Sweep what unfinished attempts left, then checkpoint, compact and vacuum the small
    tables every night appends to, so reading them stays flat after a year of nights. A
    failure is logged, never fails the run."""
    from engine import tables

    sweep_uncommitted(cfg)
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
        progress: Progress | None = None, backfill: bool = False) -> list[RunSummary]:
    """The nightly job for `logical_date` (default: the latest complete day).

    Catches up on missed nights in order (every date after the last processed night up to
    `logical_date`; a failed night is not processed, so it is retried). A date already
    processed is skipped unless `force`; re-running it with `force` recomputes its partitions
    (and so revalidates them), so tables hold the same rows. A date before the last
    processed night is a UsageError unless `backfill` (it would retrain on an old window and
    replace the models' training sets).
    """
    logical_date = logical_date or latest_complete_day()
    owner = f"run {logical_date} on {socket.gethostname()} pid {os.getpid()}"
    check_suites(cfg)
    check_lakehouse(cfg)
    check_expressions(spark, cfg)
    plugins.ship(spark, cfg)  # the Python workers import the project's plugins too
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
        sweep_uncommitted(cfg)
        done = processed_dates(spark, catalog.Catalog.of(cfg).runs)
        if logical_date in done and not force:
            log.info("%s already processed (%s); nothing to do (use --force to recompute)", logical_date,
                     done[logical_date])
            return [RunSummary(run_id="-", logical_date=logical_date, status="skipped", ended_at=utcnow(),
                               processed_as=done[logical_date],
                               notes=[f"{logical_date} was already processed ({done[logical_date]}); nothing changed"])]
        latest = max(done, default=None)
        if latest is not None and logical_date < latest and not backfill:
            raise UsageError(f"--date {logical_date} is before the last processed night {latest}: it would "
                             f"retrain on the window of {logical_date} and replace training_sets; pass --backfill "
                             "to run an old date on purpose")
        last = max((d for d in done if d < logical_date), default=None)
        todo = [logical_date]
        if last is not None and not force:
            todo = [last + dt.timedelta(days=i) for i in range(1, (logical_date - last).days + 1)]
        summaries = [run_date(spark, cfg, d, progress, recompute=force, night=(i, len(todo)))
                     for i, d in enumerate(todo)]
        maintain_tables(spark, cfg)
        return summaries


def check_lakehouse(cfg: Config) -> None:
    """A local lakehouse root must be a directory this process can write (created when
    missing): a ConfigError naming project.yaml's `lakehouse` otherwise, before any write."""
    import tempfile

    root = catalog.local_path(cfg.lakehouse)
    if root is None:
        return  # an object store: its client reports access errors on the first write
    where = f"{cfg.root / 'project.yaml'}: lakehouse: {root}"
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(f"{where} is a file, expected a directory (the lakehouse root)")
    try:
        os.makedirs(root, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".retrain-write-check-"):
            pass
    except OSError as e:
        raise ConfigError(f"{where} is not writable, expected a directory this user can write "
                          f"({e.strerror or type(e).__name__})") from e


def check_expressions(spark, cfg: Config) -> None:
    """Every feature expression on Spark's parsed tree (engine.expressions.check_config): a
    ConfigError naming features.yaml and the key, before anything is written."""
    from engine.expressions import check_config

    check_config(spark, cfg)


def check_suites(cfg: Config) -> None:
    """Parse every feature set's expectation suite before anything runs: a malformed suite is
    a config error (SuiteError, exit 2) that leaves every table as it was."""
    from engine.validation.suites import load_suite, suite_path

    for name in cfg.feature_sets:
        if suite_path(cfg, name).exists():
            load_suite(suite_path(cfg, name))


def backfill(spark, cfg: Config, start: dt.date | None = None, end: dt.date | None = None,
             progress: Progress | None = None, feature_set: str | None = None) -> RunSummary:
    """Recompute features and validation for every source day in [start, end] in one job.

    `feature_set`: only that set's partitions (the others stay as they are); without a range,
    every partition it has computed, e.g. to fill a column added to features.yaml into the
    partitions written before it existed (they read it as null until then)."""
    if feature_set is not None and feature_set not in cfg.feature_sets:
        raise UsageError(f"backfill: --feature-set {feature_set!r} is not in features.yaml "
                         f"(expected one of {sorted(cfg.feature_sets)})")
    if (start is None) != (end is None) or (start is None and feature_set is None):
        raise UsageError("backfill: give --start D1 --end D2, or --feature-set NAME (with or without a range)")
    if start is not None and end < start:
        raise UsageError(f"backfill: --end {end} is before --start {start}")
    check_suites(cfg)
    check_lakehouse(cfg)
    check_expressions(spark, cfg)
    plugins.ship(spark, cfg)
    names = [feature_set] if feature_set is not None else list(cfg.feature_sets)
    what = f"{start}..{end}" if start is not None else f"features/{feature_set}"
    owner = f"backfill {what} on {socket.gethostname()} pid {os.getpid()}"
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
        sweep_uncommitted(cfg)
        dates = {}
        for name in names:
            fs = cfg.feature_sets[name]
            if start is None:
                dates[name] = feature_map.computed_dates(spark, cfg, fs)
            else:
                dates[name] = [d for d in feature_map.source_dates(spark, cfg, fs.source) if start <= d <= end]
        if not any(dates.values()):
            where = f"between {start} and {end}" if start is not None else f"computed for features/{feature_set}"
            raise UsageError(f"backfill: no source partitions {where}")
        last = end or max(d for days in dates.values() for d in days)
        return run_date(spark, cfg, last, progress, dates=dates, train=False)


def validate(spark, cfg: Config, start: dt.date, end: dt.date, progress: Progress | None = None) -> RunSummary:
    """Validation alone, for the computed feature partitions in [start, end] (under the lock:
    it writes verdicts)."""
    if end < start:
        raise UsageError(f"validate: --end {end} is before --start {start}")
    check_suites(cfg)
    owner = f"validate {start}..{end} on {socket.gethostname()} pid {os.getpid()}"
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
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


def release(spark, cfg: Config, table: str, ds: dt.date, reason: str, user: str):
    """Mark a quarantined partition valid (engine.validation.release_partition), under the
    lakehouse lock like every command that writes. An unknown table or a partition that is
    not quarantined is a UsageError."""
    from engine.validation import ReleaseError, release_partition

    owner = f"release {table} ds={ds} on {socket.gethostname()} pid {os.getpid()}"
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, owner):
        try:
            return release_partition(spark, cfg, table, ds, reason, user)
        except ReleaseError as e:
            raise UsageError(str(e)) from e


__all__ = ["run", "run_date", "backfill", "validate", "release", "latest_complete_day"]
