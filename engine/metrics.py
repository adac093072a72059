"""Golden signals for Prometheus, made from a run's RunSummary.

Where they go:
- a textfile for node_exporter's textfile collector (`metrics.textfile`, under the lakehouse
  root unless absolute), rewritten atomically: a temp file in the same directory, then rename;
- a Pushgateway (`metrics.pushgateway`), with push-add (HTTP POST), grouping key
  job (+ pipeline when given). Push-add replaces only the metric families it sends, so a
  family left out of a push keeps its previous value on the gateway.

Metrics, all gauges (the value is about the last exported run unless said otherwise):

  retrain_last_success_timestamp_seconds{stage}       time of the last run that finished
      with status success, blocked or partial (stage="run"), and of each of its stages that
      finished success/blocked. A run that did not finish (failed, skipped, ...) never sets it: the
      previous value is kept (read back from the textfile; left out of the push).
  retrain_last_completion_timestamp_seconds{stage,status}  when each stage (and "run") last
      ended, labelled with how; one series per stage.
  retrain_stage_duration_seconds{stage}               wall time of the run and of each stage
      that ran (skipped stages are left out so they do not drag the average down).
  retrain_rows_processed{stage} / retrain_rows_written{stage}   rows in / rows out.
  retrain_partitions_quarantined{table}               partitions quarantined in the run.
  retrain_validation_failures{table,column,severity}  failed expectations in the run.
  retrain_models{status}                              (model, segment) pairs by outcome:
      trained (= champion + rejected), champion, rejected, failed, skipped, waiting (not
      enough history yet: not a failure).
  retrain_model_consecutive_rejections{model_id,segment}  consecutive evaluations (over
      logical dates) that ended in rejection; promotion resets it; failed/skipped/not-due
      runs leave it unchanged. Rerunning a logical date does not count twice.
  retrain_model_last_evaluated_date_timestamp_seconds{model_id,segment}  logical date
      (midnight UTC) of that pair's latest evaluation; it makes the count rerun-safe.

State that must survive runs (last success, last completion, the rejection streak) is
read back from the previous textfile, or from the Pushgateway when there is no textfile.
Per-run families whose label sets come and go (quarantined partitions, validation failures)
get an explicit 0 for a label set that was non-zero last time and is absent now, because a
push-add cannot delete a series and an empty family does not replace the old one.

Exporting metrics never fails a run: problems are logged (warning for the Pushgateway,
error for the textfile), and the "no success in 26 h" alert catches an exporter that
stopped working. Call export_metrics while holding the lakehouse lock, so two runs never
read-modify-write the same textfile at once.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, pushadd_to_gateway, write_to_textfile
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from engine import catalog
from engine.config import MetricsSettings
from engine.observability import RunSummary, utcnow

log = logging.getLogger("retrain")

RUN_STAGE = "run"
# Statuses that mean "the run/stage did its job": blocked = finished, data-quality checks
# held something back (exit code 3); partial = finished, some (model, segment) pairs failed
# to train (exit code 4). Those are alerted on separately (quarantined partitions, failed models).
FINISHED = frozenset({"success", "blocked", "partial"})
MODEL_STATUSES = ("trained", "champion", "rejected", "failed", "skipped", "waiting")

LAST_SUCCESS = "retrain_last_success_timestamp_seconds"
LAST_COMPLETION = "retrain_last_completion_timestamp_seconds"
DURATION = "retrain_stage_duration_seconds"
ROWS_PROCESSED = "retrain_rows_processed"
ROWS_WRITTEN = "retrain_rows_written"
QUARANTINED = "retrain_partitions_quarantined"
VALIDATION_FAILURES = "retrain_validation_failures"
MODELS = "retrain_models"
CONSECUTIVE_REJECTIONS = "retrain_model_consecutive_rejections"
LAST_EVALUATED = "retrain_model_last_evaluated_date_timestamp_seconds"

Series = dict[tuple[str, ...], float]  # label values (in the family's label order) -> value
State = dict[str, Series]  # family name -> series


@dataclass(frozen=True)
class Family:
    name: str
    documentation: str
    labels: tuple[str, ...]
    carried: bool = False  # state kept across runs (needs the previous values)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(LAST_SUCCESS, "Unix time the run (stage=run) or a stage last finished successfully "
           "(status success, blocked or partial).", ("stage",), carried=True),
    Family(LAST_COMPLETION, "Unix time the run (stage=run) or a stage last ended, with its status.",
           ("stage", "status"), carried=True),
    Family(DURATION, "Wall-clock seconds of the last run (stage=run) and of each stage that ran.",
           ("stage",)),
    Family(ROWS_PROCESSED, "Rows read by each stage in the last run.", ("stage",)),
    Family(ROWS_WRITTEN, "Rows written by each stage in the last run.", ("stage",)),
    Family(QUARANTINED, "Partitions quarantined by validation in the last run.", ("table",)),
    Family(VALIDATION_FAILURES, "Failed expectations in the last run.",
           ("table", "column", "severity")),
    Family(MODELS, "(model, segment) pairs by outcome in the last run; trained = champion + rejected.",
           ("status",)),
    Family(CONSECUTIVE_REJECTIONS, "Consecutive evaluations (by logical date) of a (model, segment) "
           "that ended in rejection by the promotion gate.", ("model_id", "segment"), carried=True),
    Family(LAST_EVALUATED, "Logical date (Unix time, midnight UTC) of the latest evaluation "
           "of a (model, segment).", ("model_id", "segment"), carried=True),
)}
# Per-run families that get a 0 for label sets that disappeared (see module docstring).
ZEROED = (QUARANTINED, VALIDATION_FAILURES)


# --------------------------------------------------------------------------- state


def _ts(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def _date_ts(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc).timestamp()


def build_state(summary: RunSummary, previous: State | None) -> State:
    """All metric values after `summary`, given the values exported after the previous run
    (None when they are unknown: carried state then starts from this run alone)."""
    prev = previous or {}
    ended = summary.ended_at or utcnow()
    run_ts = _ts(ended)
    run_finished = summary.status in FINISHED
    stages = [s for s in summary.stages if s.stage != RUN_STAGE]
    state: State = {name: {} for name in FAMILIES}

    success = dict(prev.get(LAST_SUCCESS, {}))
    if run_finished:
        success[(RUN_STAGE,)] = run_ts
        for s in stages:
            if s.status in FINISHED:
                success[(s.stage,)] = _ts(s.ended_at or ended)
    state[LAST_SUCCESS] = success

    ran = {RUN_STAGE} | {s.stage for s in stages}
    completion = {k: v for k, v in prev.get(LAST_COMPLETION, {}).items() if k[0] not in ran}
    completion[(RUN_STAGE, summary.status)] = run_ts
    for s in stages:
        completion[(s.stage, s.status)] = _ts(s.ended_at or ended)
    state[LAST_COMPLETION] = completion

    state[DURATION][(RUN_STAGE,)] = max(0.0, summary.duration_seconds)
    for s in stages:
        if s.status != "skipped":
            state[DURATION][(s.stage,)] = max(0.0, s.duration_seconds)
        rows_in = s.rows_in if s.rows_in is not None else s.rows_out
        if rows_in is not None:
            state[ROWS_PROCESSED][(s.stage,)] = float(rows_in)
        if s.rows_out is not None:
            state[ROWS_WRITTEN][(s.stage,)] = float(s.rows_out)

    for table, days in summary.quarantined.items():
        state[QUARANTINED][(table,)] = float(len(days))
    failures = Counter((f.table, f.column or "", f.severity) for f in summary.validation_failures)
    state[VALIDATION_FAILURES] = {k: float(n) for k, n in failures.items()}
    for name in ZEROED:
        for key, value in prev.get(name, {}).items():
            if value != 0 and key not in state[name]:
                state[name][key] = 0.0

    counts = Counter(m.status for m in summary.models)
    counts["trained"] = counts["champion"] + counts["rejected"]
    state[MODELS] = {(status,): float(counts[status]) for status in MODEL_STATUSES}

    streak = dict(prev.get(CONSECUTIVE_REJECTIONS, {}))
    evaluated = dict(prev.get(LAST_EVALUATED, {}))
    day = _date_ts(summary.logical_date)
    for m in summary.models:
        if m.status not in ("champion", "rejected"):
            continue  # failed / skipped / waiting: no verdict on the model, the streak stands
        key = (m.model_id, m.segment)
        count, last = streak.get(key, 0.0), evaluated.get(key)
        if last is not None and day < last:
            continue  # an older logical date re-run: it does not rewrite the streak
        if m.status == "champion":
            count = 0.0
        elif last is not None and day == last:
            count = max(count, 1.0)  # the same date again: do not count it twice
        else:
            count += 1.0
        streak[key], evaluated[key] = count, day
    state[CONSECUTIVE_REJECTIONS], state[LAST_EVALUATED] = streak, evaluated
    return state


def parse_state(text: str, drop: dict[str, str] | None = None) -> State:
    """Our families from Prometheus text format. With `drop`, keep only samples whose labels
    include those (label -> value; "" means absent), and strip them (a Pushgateway group)."""
    state: State = {name: {} for name in FAMILIES}
    for family in text_string_to_metric_families(text):
        spec = FAMILIES.get(family.name)
        if spec is None:
            continue
        for sample in family.samples:
            if sample.name != spec.name:
                continue
            labels = dict(sample.labels)
            if drop is not None:
                if any(labels.get(k, "") != v for k, v in drop.items()):
                    continue
            state[spec.name][tuple(labels.get(k, "") for k in spec.labels)] = float(sample.value)
    return state


class _StateCollector:
    def __init__(self, state: State, names: Iterable[str]):
        self._state, self._names = state, list(names)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name in self._names:
            spec = FAMILIES[name]
            family = GaugeMetricFamily(name, spec.documentation, labels=list(spec.labels))
            for key, value in sorted(self._state.get(name, {}).items()):
                family.add_metric(list(key), value)
            yield family


def registry_for(state: State, names: Iterable[str] | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector(state, FAMILIES if names is None else names))
    return registry


# --------------------------------------------------------------------------- export


def _gateway_url(gateway: str) -> str:
    return gateway if "://" in gateway else "http://" + gateway


def _read_textfile(path: str) -> State | None:
    """The previous state from the textfile: {} if there is none, None if it is unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warning("metrics: cannot read the previous metrics file %s: %s", path, e)
        return None
    try:
        return parse_state(text)
    except Exception as e:  # noqa: BLE001 - a corrupt file must not stop the export
        log.warning("metrics: previous metrics file %s is not Prometheus text format: %s", path, e)
        return None


def _read_gateway(gateway: str, grouping_key: dict[str, str], timeout: float) -> State | None:
    """The previous state of our group on the Pushgateway, None if it cannot be read."""
    try:
        with urllib.request.urlopen(_gateway_url(gateway).rstrip("/") + "/metrics", timeout=timeout) as r:
            text = r.read().decode("utf-8")
        return parse_state(text, drop={"pipeline": "", **grouping_key})
    except Exception as e:  # noqa: BLE001
        log.warning("metrics: cannot read previous values from the Pushgateway %s: %s", gateway, e)
        return None


def export_metrics(
    summary: RunSummary,
    settings: MetricsSettings,
    textfile_path: str | None,
    *,
    pipeline: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Export the run's golden signals to the textfile (if `textfile_path`, usually
    `Catalog.of(cfg).metrics_file`) and to the Pushgateway (if
    `settings.pushgateway`). `pipeline` (e.g. the project name) is added to the Pushgateway
    grouping key. Never raises for an export problem; it logs it."""
    path = catalog.local_path(textfile_path) if textfile_path else None
    if textfile_path and path is None:
        log.warning("metrics: textfile %s is not a local path; node_exporter cannot read it, skipped",
                    textfile_path)
    grouping_key = {"job": settings.job} | ({"pipeline": pipeline} if pipeline else {})

    previous: State | None = {}
    if path is not None and os.path.exists(path):
        previous = _read_textfile(path)
    elif settings.pushgateway:
        previous = _read_gateway(settings.pushgateway, grouping_key, timeout)
    state = build_state(summary, previous)

    if path is not None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            write_to_textfile(path, registry_for(state))
        except Exception as e:  # noqa: BLE001 - metrics never fail a run
            log.error("metrics: cannot write %s: %s", path, e)

    if settings.pushgateway:
        finished = summary.status in FINISHED
        # A family left out keeps its value on the gateway. Left out: the last success when
        # the run did not finish (so it survives), and the rejection streak when the previous
        # values are unknown (pushing it would restart every streak).
        names = [n for n, spec in FAMILIES.items()
                 if not spec.carried or n == LAST_COMPLETION
                 or (n == LAST_SUCCESS and finished)
                 or (n != LAST_SUCCESS and previous is not None)]
        try:
            pushadd_to_gateway(_gateway_url(settings.pushgateway), job=settings.job,
                               registry=registry_for(state, names),
                               grouping_key={k: v for k, v in grouping_key.items() if k != "job"},
                               timeout=timeout)
        except Exception as e:  # noqa: BLE001 - a Pushgateway outage must not fail the run
            log.warning("metrics: push to the Pushgateway %s failed: %s", settings.pushgateway, e)
