"""Validation stage: suites, statuses, the recorded tables, GX docs, alerts, webhook, release."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from engine.catalog import Catalog
from engine import tables
from engine.config import load_config
from engine.errors import RetrainError
from engine.validation import (
    ReleaseError,
    SuiteError,
    partition_statuses,
    quarantined_dates,
    release_partition,
    unusable_dates,
    unverdicted_dates,
    validate_partitions,
)
from engine.validation import store
from engine.validation.alerts import post_webhook
from engine.validation.evaluate import CheckOutcome
from engine.validation.suites import load_suite, parse_suite
from engine.validation.verdicts import detail

REPO = Path(__file__).resolve().parents[1]
D1, D2, D3, D4 = (dt.date(2026, 10, 12) + dt.timedelta(days=k) for k in range(4))

SUITE = {
    "name": "orders",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 3}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "discount", "mostly": 0.99}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "region", "value_set": ["north", "south", "east", "west"]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 5, "max_value": 150},
         "meta": {"severity": "warn"}},
        {"type": "expect_column_value_lengths_to_be_between",  # not aggregated by the engine: GX runs it
         "kwargs": {"column": "region", "min_value": 4, "max_value": 5}, "meta": {"severity": "warn"}},
    ],
}


def _rows():
    """D1 clean; D2 discount half null (block); D3 amount mean too high (warn only);
    D4 regions upper-cased (block) and too few rows (block)."""
    rows = []
    for i in range(8):
        rows.append((f"a{i}", ["north", "south", "east", "west"][i % 4], 20.0 + i, 0.1, D1))
        rows.append((f"b{i}", "north", 30.0, None if i % 2 else 0.2, D2))
        rows.append((f"c{i}", "east", 900.0, 0.0, D3))
    rows += [("d0", "NORTH", 10.0, 0.0, D4), ("d1", "SOUTH", 10.0, 0.0, D4)]
    return rows


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def make_cfg(root: Path, suite: dict | None = SUITE, webhook: str | None = None):
    conf = root / "conf"
    conf.mkdir(parents=True)
    text = (REPO / "conf" / "project.yaml").read_text()
    # These tests are about the suite (and entity keys); learned checks have their own tests.
    text = text.replace("    enabled: true", "    enabled: false")  # validation.learned
    if webhook:
        text = text.replace("webhook_url: null", f"webhook_url: {webhook}")
    (conf / "project.yaml").write_text(text)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    if suite is not None:
        (root / "expectations").mkdir()
        (root / "expectations" / "orders.json").write_text(json.dumps(suite))
    return load_config(conf)


@pytest.fixture(scope="module")
def validated(spark, tmp_path_factory):
    """One validation run over four partitions, with a real webhook server listening."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    root = tmp_path_factory.mktemp("validation")
    cfg = make_cfg(root, webhook=f"http://127.0.0.1:{server.server_address[1]}/hook")
    df = spark.createDataFrame(_rows(), "order_id string, region string, amount double, discount double, ds date")
    tables.write(spark, df, Catalog.of(cfg).path("features/orders"), mode="overwrite", partition_by=["ds"])
    report = validate_partitions(spark, cfg, "orders", [D1, D2, D3, D4], "run-1")
    server.shutdown()
    return cfg, report


def test_statuses_block_quarantines_and_warn_only_alerts(spark, validated):
    cfg, report = validated
    assert report.table == "features/orders"
    assert report.statuses == {D1: "valid", D2: "quarantined", D3: "valid", D4: "quarantined"}
    assert report.quarantined == [D2, D4]
    assert quarantined_dates(spark, cfg, "orders") == {D2, D4}
    assert report.results_rows == 4 * (len(SUITE["expectations"]) + 1)  # + the entity-key check
    assert report.evaluated_by_gx == ["expect_column_value_lengths_to_be_between"]
    by_day = {}
    for a in report.alerts:
        by_day.setdefault(a.ds, []).append((a.column, a.expectation, a.severity))
    assert D1 not in by_day
    assert by_day[D2] == [("discount", "expect_column_values_to_not_be_null", "block")]
    assert by_day[D3] == [("amount", "expect_column_mean_to_be_between", "warn")]
    assert by_day[D4] == [
        (None, "expect_table_row_count_to_be_between", "block"),
        ("region", "expect_column_values_to_be_in_set", "block"),
    ]


def test_alert_messages_name_table_day_column_observed_and_expected(validated):
    _, report = validated
    messages = {a.ds: [] for a in report.alerts}
    for a in report.alerts:
        messages[a.ds].append(a.message)
    assert messages[D2] == ["features/orders ds=2026-10-13 column discount: 50.0% null (expected ≤ 1%)"]
    assert messages[D3] == ["features/orders ds=2026-10-14 column amount: mean 900 (expected between 5 and 150)"]
    assert sorted(messages[D4]) == [
        "features/orders ds=2026-10-15 column region: 100.0% of values not in "
        "{'north', 'south', 'east', 'west'} (expected none), e.g. 'NORTH', 'SOUTH'",
        "features/orders ds=2026-10-15: 2 rows (expected ≥ 3)",
    ]


def test_results_table_one_row_per_run_table_ds_expectation(spark, validated):
    cfg, _ = validated
    df = tables.read(spark, Catalog.of(cfg).path("validation/results"))
    assert tables.partition_values(Catalog.of(cfg).path("validation/results")) == [D1, D2, D3, D4]
    rows = [r.asDict() for r in df.collect()]
    assert len(rows) == 4 * (len(SUITE["expectations"]) + 1)  # + the entity-key check
    assert {(r["run_id"], r["table"]) for r in rows} == {("run-1", "features/orders")}
    assert len({(r["ds"], r["expectation_index"]) for r in rows}) == len(rows)
    discount = next(r for r in rows if r["ds"] == D2 and r["column"] == "discount")
    assert discount["expectation_type"] == "expect_column_values_to_not_be_null"
    assert json.loads(discount["kwargs"]) == {"column": "discount", "mostly": 0.99}
    assert discount["success"] is False and discount["severity"] == "block"
    assert json.loads(discount["observed_value"]) == {"element_count": 8, "unexpected_count": 4,
                                                      "unexpected_percent": 50.0}
    assert discount["unexpected_percent"] == 50.0
    assert discount["message"].endswith("50.0% null (expected ≤ 1%)")
    mean = next(r for r in rows if r["ds"] == D1 and r["expectation_type"] == "expect_column_mean_to_be_between")
    assert mean["success"] is True and json.loads(mean["observed_value"]) == 23.5 and mean["message"] is None
    lengths = [r for r in rows if r["expectation_type"] == "expect_column_value_lengths_to_be_between"]
    assert {r["evaluated_by"] for r in lengths} == {"gx"} and all(r["success"] for r in lengths)
    # a queryable table: failures per day in SQL
    df.createOrReplaceTempView("results")
    failed = spark.sql("SELECT ds, count(*) AS n FROM results WHERE NOT success GROUP BY ds ORDER BY ds").collect()
    assert [(r["ds"], r["n"]) for r in failed] == [(D2, 1), (D3, 1), (D4, 2)]


def test_profiles_table_per_partition_and_column(spark, validated):
    cfg, _ = validated
    rows = {(r["ds"], r["column"]): r.asDict() for r in tables.read(spark, Catalog.of(cfg).path("validation/profiles")).collect()}
    assert set(rows) == {(d, c) for d in (D1, D2, D3, D4) for c in ("order_id", "region", "amount", "discount")}
    amount = rows[(D1, "amount")]
    assert amount["row_count"] == 8 and amount["null_fraction"] == 0.0
    assert (amount["min"], amount["max"], amount["mean"]) == ("20.0", "27.0", 23.5)
    assert amount["stddev"] == pytest.approx(2.449489742783178)
    assert amount["p05"] <= amount["p25"] <= amount["p50"] <= amount["p75"] <= amount["p95"]
    assert rows[(D2, "discount")]["null_fraction"] == 0.5
    assert rows[(D1, "order_id")]["distinct_count"] == 8
    top = json.loads(rows[(D1, "region")]["top_values"])
    assert sorted(t["value"] for t in top) == ["east", "north", "south", "west"] and {t["count"] for t in top} == {2}


def test_partitions_table_and_statuses(spark, validated):
    cfg, _ = validated
    statuses = partition_statuses(spark, cfg)
    assert [(s.table, s.ds, s.status) for s in statuses] == [
        ("features/orders", D1, "valid"), ("features/orders", D2, "quarantined"),
        ("features/orders", D3, "valid"), ("features/orders", D4, "quarantined")]
    d3 = statuses[2]
    assert d3.run_id == "run-1" and d3.updated_at is not None and d3.released_by is None
    assert [r.severity for r in d3.reasons] == ["warn"]  # recorded, but does not quarantine
    assert [r.column for r in statuses[1].reasons] == ["discount"]
    assert partition_statuses(spark, cfg, "features/other") == []


def test_gx_validation_result_documents(validated):
    from great_expectations.core import ExpectationSuiteValidationResult

    cfg, _ = validated
    path = Path(Catalog.of(cfg).path("validation/docs/orders/ds=2026-10-13/run-1.json"))
    doc = json.loads(path.read_text())
    assert doc["success"] is False and doc["suite_name"] == "orders"
    assert doc["statistics"]["evaluated_expectations"] == len(SUITE["expectations"])
    assert doc["statistics"]["unsuccessful_expectations"] == 1
    assert doc["meta"]["ds"] == "2026-10-13" and doc["meta"]["run_id"] == "run-1"
    failed = [r for r in doc["results"] if not r["success"]]
    assert failed[0]["expectation_config"]["type"] == "expect_column_values_to_not_be_null"
    assert failed[0]["result"]["unexpected_count"] == 4
    # GX reads it back as its own result type
    back = ExpectationSuiteValidationResult(**{k: doc[k] for k in ("success", "results", "suite_name", "statistics")})
    assert back.success is False and len(back.results) == len(SUITE["expectations"])
    assert sorted(p.name for p in Path(Catalog.of(cfg).path("validation/docs/orders")).iterdir()) == [
        f"ds={d.isoformat()}" for d in (D1, D2, D3, D4)]


def test_alerts_file_and_webhook(validated):
    cfg, report = validated
    lines = [json.loads(x) for x in Path(Catalog.of(cfg).alerts_file).read_text().splitlines()]
    assert [x["message"] for x in lines] == [a.message for a in report.alerts]
    first = lines[0]
    assert (first["table"], first["ds"], first["column"], first["severity"], first["run_id"]) == (
        "features/orders", "2026-10-13", "discount", "block", "run-1")
    assert first["observed"]["unexpected_count"] == 4 and first["expected"] == {"column": "discount", "mostly": 0.99}
    assert len(Hook.received) == 1  # one POST per run
    content_type, payload = Hook.received[0]
    assert content_type == "application/json"
    assert payload["run_id"] == "run-1"
    assert [a["message"] for a in payload["alerts"]] == [a.message for a in report.alerts]
    assert "discount: 50.0% null" in payload["text"]


def test_webhook_failure_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="retrain.validation"):
        ok = post_webhook("http://127.0.0.1:9/nothing-listens", [{"message": "m"}], "run-x", timeout=2)
    assert ok is False
    assert "webhook" in caplog.text and "failed" in caplog.text


def test_revalidation_replaces_the_status(spark, validated, tmp_path):
    cfg, _ = validated
    fixed = spark.createDataFrame([(f"b{i}", "north", 30.0, 0.2, D2) for i in range(8)],
                                  "order_id string, region string, amount double, discount double, ds date")
    tables.write(spark, fixed, Catalog.of(cfg).path("features/orders"), mode="overwrite", partition_by=["ds"],
                 replace_partitions=[D2])
    report = validate_partitions(spark, cfg, "orders", [D2], "run-2")
    assert report.statuses == {D2: "valid"} and report.alerts == []
    assert quarantined_dates(spark, cfg, "orders") == {D4}
    results = tables.read(spark, Catalog.of(cfg).path("validation/results"), partitions=[D2]).collect()
    assert sorted({r["run_id"] for r in results}) == ["run-1", "run-2"]  # history is kept


def test_no_suite_records_valid_verdicts_and_warns(spark, tmp_path):
    cfg = make_cfg(tmp_path, suite=None)
    df = spark.createDataFrame(_rows(), "order_id string, region string, amount double, discount double, ds date")
    tables.write(spark, df, Catalog.of(cfg).path("features/orders"), mode="overwrite", partition_by=["ds"])
    assert unverdicted_dates(spark, cfg, "orders") == [D1, D2, D3, D4]
    assert unusable_dates(spark, cfg, "orders") == {D1, D2, D3, D4}  # no verdict yet: not for training
    report = validate_partitions(spark, cfg, "orders", [D1, D2], "run-1")
    assert report.statuses == {D1: "valid", D2: "valid"} and report.alerts == []
    assert "no suite" in report.note
    assert len(report.warnings) == 1 and "features/orders has no expectation suite" in report.warnings[0]
    rows = {r["ds"]: r for r in tables.read_rows(Catalog.of(cfg).validation_partitions).to_pylist()}
    assert sorted(rows) == [D1, D2] and {r["status"] for r in rows.values()} == {"valid"}
    assert rows[D1]["content_id"] != rows[D2]["content_id"]
    assert rows[D1]["table_version"] == tables.version(Catalog.of(cfg).features("orders"))
    assert unverdicted_dates(spark, cfg, "orders") == [D3, D4]
    assert unusable_dates(spark, cfg, "orders") == {D3, D4}


def test_rewritten_partition_loses_its_verdict(spark, tmp_path):
    """A verdict holds for the content it judged: rewriting a partition (a recompute, a
    backfill, another writer) leaves it without a current verdict until it is validated again;
    the other partitions keep theirs."""
    cfg = make_cfg(tmp_path, suite=None)
    path = Catalog.of(cfg).features("orders")
    df = spark.createDataFrame(_rows(), "order_id string, region string, amount double, discount double, ds date")
    tables.write(spark, df, path, mode="overwrite", partition_by=["ds"])
    validate_partitions(spark, cfg, "orders", [D1, D2, D3, D4], "run-1")
    assert unverdicted_dates(spark, cfg, "orders") == [] and unusable_dates(spark, cfg, "orders") == set()
    again = spark.createDataFrame([("z", "north", 30.0, 0.2, D2)],
                                  "order_id string, region string, amount double, discount double, ds date")
    tables.write(spark, again, path, mode="overwrite", partition_by=["ds"], replace_partitions=[D2])
    assert unverdicted_dates(spark, cfg, "orders") == [D2]
    assert unusable_dates(spark, cfg, "orders") == {D2}
    validate_partitions(spark, cfg, "orders", [D2], "run-2")
    assert unverdicted_dates(spark, cfg, "orders") == []


def test_release_records_who_when_why(spark, tmp_path):
    cfg = make_cfg(tmp_path)
    now = dt.datetime(2026, 10, 16, tzinfo=dt.timezone.utc)
    rows = [{"table": "features/orders", "ds": d, "status": s, "reasons": reasons, "run_id": "r", "updated_at": now,
             "released_by": None, "release_reason": None}
            for d, s, reasons in [(D1, "valid", "[]"),
                                  (D2, "quarantined", json.dumps([{"expectation": "expect_x", "column": "discount",
                                                                   "severity": "block", "message": "m"}]))]]
    tables.write_rows(spark, Catalog.of(cfg).path("validation/partitions"), pa.Table.from_pylist(rows, schema=store.PARTITIONS_SCHEMA))
    assert quarantined_dates(spark, cfg, "orders") == {D2}

    released = release_partition(spark, cfg, "features/orders", D2, "discount nulls are a known upstream change",
                                 "alice")
    assert (released.status, released.released_by, released.release_reason) == (
        "valid", "alice", "discount nulls are a known upstream change")
    assert released.updated_at > now
    assert [r.column for r in released.reasons] == ["discount"]  # the original reasons stay on record
    assert quarantined_dates(spark, cfg, "orders") == set()
    [stored] = [s for s in partition_statuses(spark, cfg) if s.ds == D2]
    assert (stored.status, stored.released_by) == ("valid", "alice")

    with pytest.raises(ReleaseError, match="is valid .*released by alice.*not quarantined"):
        release_partition(spark, cfg, "features/orders", D2, "again", "bob")
    with pytest.raises(ReleaseError, match="unknown table 'features/nope'"):
        release_partition(spark, cfg, "features/nope", D2, "x", "bob")
    with pytest.raises(ReleaseError, match="never been validated"):
        release_partition(spark, cfg, "features/orders", D4, "x", "bob")
    with pytest.raises(ReleaseError, match="reason is required"):
        release_partition(spark, cfg, "features/orders", D2, " ", "bob")
    assert issubclass(ReleaseError, RetrainError)


# --------------------------------------------------------------------------- suites


def test_shipped_orders_suite_loads_with_gx():
    suite = load_suite(REPO / "expectations" / "orders.json")
    assert len(suite.checks) >= 10
    assert {c.severity for c in suite.checks} == {"block", "warn"}
    assert len(suite.gx_suite.expectations) == len(suite.checks)
    assert {c.column for c in suite.checks} >= {"discount", "amount", "event_lag_days", "region"}


@pytest.mark.parametrize("expectation, error", [
    ({"type": "expect_nothing_like_this", "kwargs": {}}, r"expectations\[0\] \(expect_nothing_like_this\): not a valid"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "a"}}, "cannot both be None"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "critical"}},
     "meta.severity must be 'block' or 'warn', got 'critical'"),
    ({"type": "expect_column_max_to_be_between", "kwargs": {"column": "a", "max_value": {"$PARAMETER": "x"}}},
     "suite parameters"),
])
def test_bad_suites_are_rejected_with_the_expectation_named(expectation, error):
    with pytest.raises(SuiteError, match=error):
        parse_suite({"name": "s", "expectations": [expectation]}, "s.json")


def test_suite_file_errors(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        load_suite(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SuiteError, match="not valid JSON"):
        load_suite(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SuiteError, match="'expectations' list"):
        load_suite(tmp_path / "list.json")


def test_messages_for_aggregate_and_table_expectations():
    suite = parse_suite({"name": "s", "expectations": [
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "x", "max_value": 0, "strict_max": True}},
        {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": "x", "min_value": 1}},
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "b"]}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "strict_min": True}},
    ]})
    c = suite.checks
    day = dt.date(2026, 1, 1)
    assert detail(c[0], CheckOutcome(0, day, False, {"observed_value": 1})) == "max 1 (expected < 0)"
    assert detail(c[1], CheckOutcome(1, day, False, {"observed_value": None})) == \
        "stddev undefined (no non-null values) (expected ≥ 1)"
    assert detail(c[2], CheckOutcome(2, day, False, {"observed_value": ["a", "c"], "details": {"mismatched": {
        "missing": ["b"], "unexpected": ["c"]}}})) == "columns do not match the expected set: missing ['b']; unexpected ['c']"
    assert detail(c[3], CheckOutcome(3, day, False, {"unexpected_percent": 0.04, "partial_unexpected_list": [-1.5]})) == \
        "0.04% of values outside (0, ∞) (expected none), e.g. -1.5"


class Trickle(http.server.BaseHTTPRequestHandler):
    """Answers one byte a second: each read beats a socket timeout, the whole never ends."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(30):
            try:
                self.wfile.write(b"X-Slow: 1\r\n")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    def log_message(self, *args):
        pass


def test_a_slow_webhook_cannot_hold_the_run():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        record = {"message": "features/orders ds=2026-10-12 column discount: 50.0% null"}
        started = time.monotonic()
        delivered = post_webhook(f"http://127.0.0.1:{server.server_port}/hook", [record], "run-1", timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert delivered is False
    assert elapsed < 5, f"the webhook held the run for {elapsed:.1f} s (a 1 s deadline)"
