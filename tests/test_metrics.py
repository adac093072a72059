"""engine.metrics: textfile round trip, carried state, and a real Pushgateway."""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.config import MetricsSettings
from engine.metrics import export_metrics
from engine.observability import ModelOutcome, RunSummary, StageRecord, ValidationFailure
from tests.servers import stop

UTC = dt.timezone.utc
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"


def t(day: int, hour: int = 2, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def summary(day: int, status: str = "success", *, stages=None, models=(), quarantined=None,
            failures=()) -> RunSummary:
    """A run for logical date 2024-05-<day>, started 02:00 on the next day."""
    logical = dt.date(2024, 5, day)
    start, end = t(day + 1, 2), t(day + 1, 2, 30)
    recs = []
    for name, st, minutes, rows_in, rows_out in stages or [
        ("features", "success", 10, 1000, 900),
        ("validation", "success", 5, 900, None),
        ("training", "success", 15, None, 20),
    ]:
        rec = StageRecord("r", logical, name, status=st, started_at=start,
                          ended_at=start + dt.timedelta(minutes=minutes), rows_in=rows_in, rows_out=rows_out)
        recs.append(rec)
    return RunSummary(run_id=f"run-{day}", logical_date=logical, status=status, started_at=start,
                      ended_at=end, stages=recs, models=list(models),
                      quarantined=dict(quarantined or {}), validation_failures=list(failures))


def samples(text: str) -> dict[str, dict[tuple, float]]:
    """metric name -> {sorted label items: value}, via prometheus_client's own parser."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def read(path) -> dict[str, dict[tuple, float]]:
    return samples(open(path).read())


SETTINGS = MetricsSettings(textfile="_metrics/retrain.prom", pushgateway=None, job="retrain")


def test_textfile_has_every_signal(tmp_path):
    path = tmp_path / "_metrics" / "retrain.prom"  # the directory does not exist yet
    run = summary(
        1,
        models=[ModelOutcome("churn", "eu", "champion"), ModelOutcome("churn", "us", "rejected"),
                ModelOutcome("ltv", "all", "failed", reason="boom")],
        quarantined={"features/orders": [dt.date(2024, 4, 30), dt.date(2024, 5, 1)]},
        failures=[
            ValidationFailure("features/orders", dt.date(2024, 5, 1), "amount", "not_null", "block", "3 nulls"),
            ValidationFailure("features/orders", dt.date(2024, 4, 30), "amount", "between", "block", "x"),
            ValidationFailure("features/orders", dt.date(2024, 5, 1), None, "row_count", "warn", "few"),
        ],
    )
    export_metrics(run, SETTINGS, str(path))

    m = read(path)
    assert os.listdir(path.parent) == ["retrain.prom"]  # the temp file was renamed away
    assert m["retrain_last_success_timestamp_seconds"][(("stage", "run"),)] == t(2, 2, 30).timestamp()
    assert m["retrain_last_success_timestamp_seconds"][(("stage", "features"),)] == t(2, 2, 10).timestamp()
    assert m["retrain_last_completion_timestamp_seconds"][(("stage", "run"), ("status", "success"))] == \
        t(2, 2, 30).timestamp()
    assert m["retrain_stage_duration_seconds"] == {
        (("stage", "run"),): 1800.0, (("stage", "features"),): 600.0,
        (("stage", "validation"),): 300.0, (("stage", "training"),): 900.0}
    assert m["retrain_rows_processed"] == {(("stage", "features"),): 1000.0, (("stage", "validation"),): 900.0,
                                           (("stage", "training"),): 20.0}
    assert m["retrain_rows_written"] == {(("stage", "features"),): 900.0, (("stage", "training"),): 20.0}
    assert m["retrain_partitions_quarantined"] == {(("table", "features/orders"),): 2.0}
    assert m["retrain_validation_failures"] == {
        (("column", "amount"), ("severity", "block"), ("table", "features/orders")): 2.0,
        (("column", ""), ("severity", "warn"), ("table", "features/orders")): 1.0}
    models = {dict(k)["status"]: v for k, v in m["retrain_models"].items()}
    assert models == {"trained": 2.0, "champion": 1.0, "rejected": 1.0, "failed": 1.0, "skipped": 0.0,
                      "waiting": 0.0}
    assert m["retrain_model_consecutive_rejections"] == {(("model_id", "churn"), ("segment", "us")): 1.0,
                                                         (("model_id", "churn"), ("segment", "eu")): 0.0}


def test_failed_run_keeps_previous_last_success(tmp_path):
    path = tmp_path / "retrain.prom"
    export_metrics(summary(1), SETTINGS, str(path))
    first = read(path)["retrain_last_success_timestamp_seconds"]

    failed = summary(2, "failed", stages=[("features", "success", 10, 1000, 900),
                                          ("validation", "failed", 1, None, None)])
    export_metrics(failed, SETTINGS, str(path))

    m = read(path)
    # Neither the run's nor any stage's last success moved, though features succeeded again.
    assert m["retrain_last_success_timestamp_seconds"] == first
    assert m["retrain_last_success_timestamp_seconds"][(("stage", "run"),)] == t(2, 2, 30).timestamp()
    completion = {dict(k)["stage"]: (dict(k)["status"], v)
                  for k, v in m["retrain_last_completion_timestamp_seconds"].items()}
    assert completion == {
        "run": ("failed", t(3, 2, 30).timestamp()),
        "features": ("success", t(3, 2, 10).timestamp()),
        "validation": ("failed", t(3, 2, 1).timestamp()),
        "training": ("success", t(2, 2, 15).timestamp()),  # not run tonight: carried over
    }
    assert (("stage", "training"),) not in m["retrain_stage_duration_seconds"]

    export_metrics(summary(3), SETTINGS, str(path))  # a success moves it again
    assert read(path)["retrain_last_success_timestamp_seconds"][(("stage", "run"),)] == t(4, 2, 30).timestamp()


def test_blocked_run_counts_as_finished_and_skipped_stage_has_no_duration(tmp_path):
    path = tmp_path / "retrain.prom"
    blocked = summary(1, "blocked", stages=[("features", "success", 10, 5, 5), ("training", "skipped", 0, None, None)])
    export_metrics(blocked, SETTINGS, str(path))
    m = read(path)
    assert m["retrain_last_success_timestamp_seconds"][(("stage", "run"),)] == t(2, 2, 30).timestamp()
    assert (("stage", "training"),) not in m["retrain_last_success_timestamp_seconds"]
    assert set(m["retrain_stage_duration_seconds"]) == {(("stage", "run"),), (("stage", "features"),)}


def test_partial_run_is_finished_and_waiting_pairs_are_not_failures(tmp_path):
    path = tmp_path / "retrain.prom"
    outcomes = [ModelOutcome("churn", "us", "champion", "auc", 0.8), ModelOutcome("churn", "eu", "failed"),
                ModelOutcome("churn", "apac", "waiting", reason="3 of 14 days of history")]
    export_metrics(summary(1, "partial", models=outcomes), SETTINGS, str(path))
    m = read(path)
    assert m["retrain_last_success_timestamp_seconds"][(("stage", "run"),)] == t(2, 2, 30).timestamp()
    models = {dict(k)["status"]: v for k, v in m["retrain_models"].items()}
    assert (models["trained"], models["failed"], models["waiting"]) == (1.0, 1.0, 1.0)
    # waiting gives no verdict on the model: no rejection streak starts for it
    assert (("model_id", "churn"), ("segment", "apac")) not in m["retrain_model_consecutive_rejections"]


def test_cleared_problems_are_zeroed_once_then_dropped(tmp_path):
    path = tmp_path / "retrain.prom"
    fail = ValidationFailure("features/orders", dt.date(2024, 5, 1), "amount", "not_null", "block", "x")
    export_metrics(summary(1, quarantined={"features/orders": [dt.date(2024, 5, 1)]}, failures=[fail]),
                   SETTINGS, str(path))
    export_metrics(summary(2), SETTINGS, str(path))
    m = read(path)
    # An explicit 0: a Pushgateway push-add cannot delete the old non-zero series otherwise.
    assert m["retrain_partitions_quarantined"] == {(("table", "features/orders"),): 0.0}
    assert list(m["retrain_validation_failures"].values()) == [0.0]
    export_metrics(summary(3), SETTINGS, str(path))
    m = read(path)
    assert "retrain_partitions_quarantined" not in m and "retrain_validation_failures" not in m


def test_consecutive_rejections_follow_logical_dates(tmp_path):
    path = tmp_path / "retrain.prom"

    def streak(day, *outcomes):
        export_metrics(summary(day, models=[ModelOutcome("churn", seg, st) for seg, st in outcomes]),
                       SETTINGS, str(path))
        values = read(path).get("retrain_model_consecutive_rejections", {})
        return {dict(k)["segment"]: v for k, v in values.items()}

    assert streak(1, ("eu", "rejected"), ("us", "champion")) == {"eu": 1, "us": 0}
    assert streak(2, ("eu", "rejected"), ("us", "rejected")) == {"eu": 2, "us": 1}
    assert streak(2, ("eu", "rejected"), ("us", "rejected")) == {"eu": 2, "us": 1}  # rerun of a date
    assert streak(3, ("eu", "failed")) == {"eu": 2, "us": 1}  # no verdict; us not due: unchanged
    assert streak(1, ("eu", "champion")) == {"eu": 2, "us": 1}  # an older date does not rewrite it
    assert streak(4, ("eu", "rejected"), ("us", "champion")) == {"eu": 3, "us": 0}


def test_unwritable_textfile_and_dead_pushgateway_do_not_raise(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    port = free_port()  # nothing listens there
    settings = MetricsSettings(textfile="x.prom", pushgateway=f"http://127.0.0.1:{port}", job="retrain")
    with caplog.at_level(logging.WARNING, logger="retrain"):
        export_metrics(summary(1), settings, str(blocker / "sub" / "retrain.prom"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot write" in m for m in messages), messages
    assert any("push to the Pushgateway" in m and "failed" in m for m in messages), messages


# --------------------------------------------------------------------------- Pushgateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pushgateway(tmp_path):
    if not os.path.exists(PUSHGATEWAY) and not shutil.which("prometheus-pushgateway"):
        print(f"SKIP reason: {PUSHGATEWAY} not installed (apt-get install prometheus-pushgateway)")
        pytest.skip(f"{PUSHGATEWAY} not installed (apt-get install prometheus-pushgateway)")
    binary = PUSHGATEWAY if os.path.exists(PUSHGATEWAY) else shutil.which("prometheus-pushgateway")
    port = free_port()
    log = open(tmp_path / "pushgateway.log", "wb")
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: keep this
    # server's state in the test's own directory.
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                             f"--persistence.file={tmp_path / 'pushgateway.data'}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pushgateway did not start: {(tmp_path / 'pushgateway.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        stop(proc, timeout=10)
        log.close()


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return samples(r.read().decode())


def test_pushgateway_keeps_last_success_after_a_failed_run(pushgateway):
    settings = MetricsSettings(textfile=None, pushgateway=pushgateway, job="retrain")
    group = (("instance", ""), ("job", "retrain"), ("pipeline", "demo"))

    export_metrics(summary(1, models=[ModelOutcome("churn", "eu", "rejected")]), settings, None, pipeline="demo")
    export_metrics(summary(2, "failed", stages=[("features", "failed", 3, None, None)],
                           models=[ModelOutcome("churn", "eu", "rejected")]), settings, None, pipeline="demo")

    m = scrape(pushgateway)
    success = m["retrain_last_success_timestamp_seconds"]
    assert success[tuple(sorted(group + (("stage", "run"),)))] == t(2, 2, 30).timestamp()
    assert success[tuple(sorted(group + (("stage", "training"),)))] == t(2, 2, 15).timestamp()
    completion = m["retrain_last_completion_timestamp_seconds"]
    assert completion[tuple(sorted(group + (("stage", "run"), ("status", "failed"))))] == t(3, 2, 30).timestamp()
    assert tuple(sorted(group + (("stage", "run"), ("status", "success")))) not in completion
    # No textfile: the streak was read back from the gateway and counted on.
    assert m["retrain_model_consecutive_rejections"][
        tuple(sorted(group + (("model_id", "churn"), ("segment", "eu"))))] == 2.0
    assert m["retrain_stage_duration_seconds"] == {
        tuple(sorted(group + (("stage", "run"),))): 1800.0,
        tuple(sorted(group + (("stage", "features"),))): 180.0}

    # Another pipeline's group is separate and does not disturb this one's streak.
    export_metrics(summary(3, models=[ModelOutcome("churn", "eu", "champion")]), settings, None, pipeline="other")
    m = scrape(pushgateway)
    streaks = {dict(k)["pipeline"]: v for k, v in m["retrain_model_consecutive_rejections"].items()}
    assert streaks == {"demo": 2.0, "other": 0.0}
