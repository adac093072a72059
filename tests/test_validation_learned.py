"""Learned checks through the validation stage (issue 20): a model's segment_by column gets
segment shares by default, learning mode records without alerting, one fault gives one alert,
the no-suite warning is said once, and messages survive the terminal's markup."""
from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
from pathlib import Path

import numpy as np

from engine import tables
from engine.catalog import Catalog
from engine.config import load_config
from engine.observability import RunSummary, ValidationFailure
from engine.validation import store, validate_partitions

REPO = Path(__file__).resolve().parents[1]
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=k) for k in range(10)]


def _cfg(root: Path):
    conf = root / "conf"
    conf.mkdir(parents=True)
    (conf / "project.yaml").write_text((REPO / "conf" / "project.yaml").read_text().replace(
        "    severity: warn", "    severity: block"))
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    shutil.copytree(REPO / "conf" / "models", conf / "models")  # late_delivery: segment_by region
    return load_config(conf)


def test_learned_checks_in_the_validation_stage(spark, tmp_path, caplog):
    cfg = _cfg(tmp_path)
    rng = np.random.default_rng(0)
    rows = []
    for k, d in enumerate(DAYS):
        for i in range(40):
            rows.append((d, f"{d}-{i}", str(rng.choice(["north", "south", "east", "west"])), float(rng.gamma(2, 20)),
                         float(rng.uniform(0, 0.3))))
        if k == len(DAYS) - 1:  # the last day: eight duplicated keys
            rows += [(d, f"{d}-{i}", "north", 10.0, 0.1) for i in range(8)]
    df = spark.createDataFrame(rows, "ds date, order_id string, region string, amount double, discount double")
    tables.write(spark, df, Catalog.of(cfg).path("features/orders"), mode="overwrite", partition_by=["ds"])
    with caplog.at_level(logging.INFO, logger="retrain.validation"):
        report = validate_partitions(spark, cfg, "orders", DAYS, "run-1")
    # the model's segment_by column is watched without a `learned.segment_by`
    summaries = store.read_summaries(spark, cfg, "features/orders", since=DAYS[0])
    shares = {r["statistic"] for r in summaries if r["column"] == "region" and r["statistic"].startswith("share:")}
    assert shares == {"share:north", "share:south", "share:east", "share:west"}
    # one fault, one alert: the exact entity check (learned checks are still learning)
    assert [(a.ds, a.expectation) for a in report.alerts] == [(DAYS[-1], "retrain_entity_keys_unique")]
    assert report.alerts[0].message.endswith("entity [order_id] has 8 duplicated keys (16.7% of rows)")
    learned = [r for r in tables.read_rows(Catalog.of(cfg).validation_results).to_pylist()
               if r["evaluated_by"] == "learned"]
    assert learned and all(r["success"] and '"learning": true' in r["kwargs"] for r in learned)
    # the missing suite: one line in the summary, not also a warning in the log
    assert sum("no expectation suite" in w for w in report.warnings) == 1
    assert not any("no expectation suite" in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records)


def test_alert_messages_with_brackets_print_as_written():
    from rich.console import Console

    from engine.report import render_summary

    summary = RunSummary(run_id="r", logical_date=DAYS[0])
    message = "features/stops ds=2026-03-01: entity [idNum] has 38 duplicated keys (4.1% of rows)"
    summary.validation_failures.append(ValidationFailure("features/stops", DAYS[0], None, "x", "block", message))
    summary.warnings.append("features/stops: a [note] in brackets")
    out = io.StringIO()
    render_summary(Console(file=out, width=200, color_system=None), summary)
    assert message in out.getvalue() and "a [note] in brackets" in out.getvalue()


def test_a_warned_day_a_window_reads_is_recorded_in_source_days():
    """A valid day with warnings feeding a rolling window leaves a trace in `_source_days`
    ({source: 'orders#warned', ds}), so its later release or fix changes what its dependents
    would read now, and stale_dates recomputes them."""
    from engine.config import FeatureSet, Rolling
    from engine.features import WARNED, source_days_read

    fs = FeatureSet(name="orders", source="orders", entity=["order_id"],
                    rolling=[Rolling(name="amount_3d", by=["customer_id"], column="amount", agg="mean", days=3)])
    d = DAYS[5]
    plain = source_days_read(fs, d)
    assert plain == [("orders", DAYS[k]) for k in (2, 3, 4, 5)]
    warned = source_days_read(fs, d, warned={"orders": {DAYS[3], DAYS[5]}})
    assert warned == sorted(plain + [("orders" + WARNED, DAYS[3])])  # its own day is validation's
    assert source_days_read(fs, d, excluded={"orders": {DAYS[3]}}, warned={"orders": {DAYS[3]}}) == [
        ("orders", DAYS[k]) for k in (2, 4, 5)]  # a quarantined day is not read at all
