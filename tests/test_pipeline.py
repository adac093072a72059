"""The nightly pipeline end to end on a small demo source (no models: see test_end_to_end)."""
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.catalog import Catalog
from engine import pipeline, tables
from engine.cli import app
from engine.config import load_config
from engine.demo import generate
from engine.errors import SourceError
from tests.conftest import on

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 20)


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    """20 days of demo data, generated once; each test copies it."""
    root = tmp_path_factory.mktemp("demo_source")
    generate(str(root / "lakehouse"), END, days=20, seed=3)
    return root / "lakehouse"


def project(root: Path, lakehouse: Path):
    """conf/ of the repository under `root`, and a copy of `lakehouse`."""
    conf = root / "conf"
    conf.mkdir()
    shutil.copy(REPO / "conf" / "project.yaml", conf)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    shutil.copytree(lakehouse, root / "lakehouse")
    return load_config(conf)


@pytest.fixture
def cfg(tmp_path, demo_source):
    """A project with the demo's raw data and no tables yet."""
    return project(tmp_path, demo_source)


@pytest.fixture(scope="module")
def night(tmp_path_factory, demo_source, spark):
    """The lakehouse after the night of END, run once for the tests that start from it."""
    cfg = project(tmp_path_factory.mktemp("night"), demo_source)
    pipeline.run(spark, cfg, END)
    return Path(cfg.lakehouse)


@pytest.fixture
def after_night(tmp_path, night):
    """A copy of `night`'s project: the night of END already processed."""
    return project(tmp_path, night)


def snapshot(spark, cfg):
    """Every table's version and sorted contents."""
    out = {}
    for name in ("features/orders", "runs", "validation/results", "validation/partitions"):
        path = Catalog.of(cfg).path(name)
        if tables.exists(path):
            df = tables.read(spark, path)
            out[name] = (tables.version(path), sorted(map(tuple, df.collect()), key=repr))
    return out


def run_stages(cfg):
    rows = tables.read_rows(Catalog.of(cfg).path("runs")).to_pylist()
    return [(r["logical_date"], r["stage"], r["status"]) for r in sorted(rows, key=lambda r: r["started_at"])]


FIRST = END - dt.timedelta(days=3)


@pytest.fixture(scope="module")
def first_night(tmp_path_factory, demo_source, spark):
    """A project's first night, FIRST (three days before the source's last): its summary and lakehouse."""
    cfg = project(tmp_path_factory.mktemp("first_night"), demo_source)
    [summary] = pipeline.run(spark, cfg, FIRST)
    return summary, Path(cfg.lakehouse)


def test_first_run_builds_history_then_rerun_changes_nothing(spark, first_night, tmp_path):
    summary, lakehouse = first_night
    cfg = project(tmp_path, lakehouse)
    day = FIRST
    assert summary.status in ("success", "blocked")
    # No expectation suite in this project: a warning in the summary, not only a log line.
    assert any("features/orders has no expectation suite" in w for w in summary.warnings)
    computed = tables.partition_values(Catalog.of(cfg).path("features/orders"))
    assert computed[0] == END - dt.timedelta(days=19) and computed[-1] == day and len(computed) == 17
    stages = run_stages(cfg)
    assert (day, "features", "success") in stages and (day, "run", summary.status) in stages
    # Each stage records its Spark jobs (its job group) and seconds; the run row counts every
    # job of the run: its stages' and those between them (checks, lookups, stage records).
    rows = {r["stage"]: r for r in tables.read_rows(Catalog.of(cfg).runs).to_pylist() if r["logical_date"] == day}
    assert rows["features"]["spark_jobs"] >= 1 and rows["validation"]["spark_jobs"] >= 0
    assert rows["run"]["spark_jobs"] >= sum(r["spark_jobs"] for s, r in rows.items() if s != "run"), \
        {s: r["spark_jobs"] for s, r in rows.items()}
    assert all(r["seconds"] is not None for r in rows.values())

    before = snapshot(spark, cfg)
    [again] = pipeline.run(spark, cfg, day)
    assert again.status == "skipped"
    assert snapshot(spark, cfg) == before


def test_jobs_between_stages_count_in_the_run_and_not_in_a_stage(spark):
    """A stage's job group gives the run's group back when it stops: the jobs between stages
    (checks, lookups, the stage records) are the run's, so its row counts every job."""
    run = pipeline._JobCounter(spark, "test-run", "a run")
    spark.range(3).count()  # a check before the stage
    stage = pipeline._JobCounter(spark, "test-stage", "a stage", parent=("test-run", "a run"))
    spark.range(5).count()
    spark.range(7).count()
    assert stage.stop() == 2
    spark.range(9).count()  # the stage's record, a lookup before the next stage
    assert run.stop() == 2
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def test_forced_rerun_replaces_the_partition_with_identical_rows(spark, after_night):
    cfg = after_night
    path = Catalog.of(cfg).path("features/orders")
    version = tables.version(path)

    def rows():
        # `_source_days` also says which window days had warnings when the partition was
        # computed: the first night computed every day before any had a verdict, the re-run
        # reads them after, so only the days read are compared there.
        from pyspark.sql import functions as F

        df = tables.read(spark, path)
        df = df.withColumn("_source_days", F.filter("_source_days", lambda x: ~x["source"].endswith("#warned")))
        return sorted(map(tuple, df.collect()), key=repr)

    before = rows()
    pipeline.run(spark, cfg, END, force=True)
    assert tables.version(path) == version + 1  # rewritten, not skipped
    assert rows() == before


def test_catch_up_runs_missed_nights_in_order(spark, first_night, tmp_path):
    cfg = project(tmp_path, first_night[1])
    first = FIRST
    summaries = pipeline.run(spark, cfg, END)
    assert [s.logical_date for s in summaries] == [first + dt.timedelta(days=i) for i in (1, 2, 3)]
    run_rows = [(d, st) for d, stage, st in run_stages(cfg) if stage == "run"]
    assert [d for d, _ in run_rows] == [first + dt.timedelta(days=i) for i in range(4)]
    features_per_run = [s.stages[0].rows_out for s in summaries]
    assert all(n > 500 for n in features_per_run)  # one new day of orders each night


def test_failed_stage_is_recorded_with_its_error(spark, cfg):
    missing = END + dt.timedelta(days=1)  # the source has no partition for it yet
    shutil.rmtree(Path(cfg.lakehouse) / "raw" / "orders" / f"ds={END.isoformat()}")
    with pytest.raises(SourceError):
        pipeline.run_date(spark, cfg, END, recompute=True)
    rows = [r for r in tables.read_rows(Catalog.of(cfg).path("runs")).to_pylist() if r["logical_date"] == END]
    by_stage = {r["stage"]: r for r in rows}
    assert by_stage["features"]["status"] == "failed"
    assert "no partition ds=2026-10-20" in by_stage["features"]["error"]
    assert by_stage["run"]["status"] == "failed" and by_stage["run"]["ended_at"] is not None
    assert missing not in tables.partition_values(Catalog.of(cfg).path("features/orders"))


def test_backfill_recomputes_a_range_in_one_run(spark, after_night):
    cfg = after_night
    path = Catalog.of(cfg).path("features/orders")
    version = tables.version(path)
    summary = pipeline.backfill(spark, cfg, END - dt.timedelta(days=4), END - dt.timedelta(days=2))
    assert tables.version(path) == version + 1  # one commit for three partitions
    assert "3 partitions" in summary.stages[0].detail


# --------------------------------------------------------------------------- validation is a state


def verdicts(spark, cfg):
    """validation/partitions without what differs between runs (ids, times, versions). Learned
    checks' warnings are left out: they score approximate sketches (quantiles, distinct
    estimates), whose last digits depend on how rows were split among tasks."""
    rows = tables.read_rows(Catalog.of(cfg).validation_partitions).to_pylist()
    return sorted((r["table"], r["ds"], r["status"],
                   [x for x in json.loads(r["reasons"]) if not x["expectation"].startswith("learned:")])
                  for r in rows)


@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"], indirect=True)
def test_partitions_left_unvalidated_by_a_crash_are_validated_by_the_next_run(spark, blocked_night, backend,
                                                                              tmp_path, demo_source):
    """A run dies between the features commit and the validation commit (an interrupt raised
    where validation would start; a SIGKILL leaves the same state). The next run finds
    `features: nothing new` yet validates and quarantines exactly as a clean run does (the
    module's `blocked_night`: the same project and night, uninterrupted, on delta-rs; verdicts
    do not depend on the storage backend), and until then the unvalidated partitions count as
    unusable for training."""
    from engine.validation import unusable_dates

    lakehouse, clean_summary = blocked_night
    clean = load_config(lakehouse.parent / "conf")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    crashed = project(tmp_path, demo_source)  # the same project as blocked_night's

    def killed(*args, **kwargs):  # the process dies after the features commit, before validation's
        raise KeyboardInterrupt("killed between the features commit and the validation commit")

    import engine.validation

    real = engine.validation.validate_partitions
    engine.validation.validate_partitions = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            pipeline.run(spark, crashed, END)
    finally:
        engine.validation.validate_partitions = real
    computed = tables.partition_values(Catalog.of(crashed).features("orders"))
    assert len(computed) == 20
    assert unusable_dates(spark, crashed, "orders") == set(computed)  # nothing unverdicted reaches training
    assert (END, "run", "failed") in run_stages(crashed) and (END, "validation", "failed") in run_stages(crashed)

    [summary] = pipeline.run(spark, crashed, END)  # not processed yet: the night is retried
    features, validation = summary.stages[0], summary.stages[1]
    assert features.detail == "nothing new"
    assert validation.detail.startswith("20 partitions checked") and "left unvalidated by an earlier run" in validation.detail
    assert summary.status == "blocked" and summary.quarantined == clean_summary.quarantined
    assert verdicts(spark, crashed) == verdicts(spark, clean)
    assert unusable_dates(spark, crashed, "orders") == unusable_dates(spark, clean, "orders") \
        == set(clean_summary.quarantined["features/orders"])


# --------------------------------------------------------------------------- exit codes


def _summary(*, models=(), quarantined=None):
    from engine.observability import ModelOutcome, RunSummary

    return RunSummary(run_id="r", logical_date=END, quarantined=quarantined or {},
                      models=[ModelOutcome(m, "s", status) for m, status in models])


@pytest.mark.parametrize(("models", "quarantined", "status", "code"), [
    ([("a", "champion"), ("b", "rejected")], None, "success", 0),
    ([("a", "champion"), ("b", "waiting")], None, "success", 0),  # not enough history yet: not a failure
    ([("a", "waiting"), ("b", "waiting")], None, "success", 0),  # a cold start
    ([], None, "success", 0),  # nothing due
    ([("a", "champion")], {"features/orders": [END]}, "blocked", 3),
    ([("a", "skipped")], None, "blocked", 3),  # window lost too many days
    ([("a", "champion"), ("b", "failed")], None, "partial", 4),
    ([("a", "champion"), ("b", "failed")], {"features/orders": [END]}, "partial", 4),
    ([("a", "failed"), ("b", "failed")], None, "failed", 1),  # nothing trained: the night failed
    ([("a", "failed"), ("b", "waiting")], None, "failed", 1),
])
def test_run_status_and_exit_code_tell_the_truth(models, quarantined, status, code):
    from engine.exit_codes import exit_code
    from engine.observability import run_status

    summary = _summary(models=models, quarantined=quarantined)
    assert run_status(summary) == status
    summary.status = status
    assert exit_code(summaries=[summary]) == code


def test_exit_code_of_errors_and_of_a_catch_up():
    from engine.errors import ConfigError, LockError, SourceError, UsageError
    from engine.exit_codes import exit_code
    from engine.observability import RunSummary

    assert [exit_code(error=e) for e in (ConfigError("c"), UsageError("u"), LockError("l"), SourceError("s"))] \
        == [2, 2, 1, 1]
    nights = [RunSummary(run_id=str(i), logical_date=END, status=s) for i, s in enumerate(
        ("success", "blocked", "partial", "skipped"))]
    assert exit_code(summaries=nights) == 4  # the most serious night wins
    assert exit_code(summaries=nights[:2]) == 3
    assert exit_code(summaries=nights + [RunSummary(run_id="x", logical_date=END, status="failed")]) == 1
    assert exit_code(summaries=[]) == 0


def test_failed_night_is_not_processed_so_the_next_run_retries_it(spark, tmp_path):
    from engine.observability import StageRecord, processed_dates, write_stage

    runs = str(tmp_path / "runs")
    days = [END - dt.timedelta(days=i) for i in range(4)]
    for day, status in zip(days, ("success", "blocked", "partial", "failed")):
        write_stage(spark, runs, StageRecord(f"r{day}", day, "run", status=status))
    assert set(processed_dates(spark, runs)) == set(days[:3])


# --------------------------------------------------------------------------- CLI exit codes

runner = CliRunner()


def test_cli_config_error_exits_2_and_names_the_file(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "project.yaml").write_text("lakehouse: ./lh\nsources: {}\nsparks: {}\n")
    result = runner.invoke(app, ["run", "--conf", str(conf), "--date", "2026-10-01"])
    assert result.exit_code == 2
    assert f"{conf / 'project.yaml'}: sparks: unknown key" in result.output


def test_cli_bad_date_exits_2():
    result = runner.invoke(app, ["run", "--conf", str(REPO / "conf"), "--date", "yesterday"])
    assert result.exit_code == 2
    assert "--date: expected a date YYYY-MM-DD, got 'yesterday'" in result.output


def test_cli_missing_source_partition_exits_1(spark, cfg):
    result = runner.invoke(app, ["run", "--conf", str(cfg.root), "--date", (END + dt.timedelta(days=5)).isoformat()])
    assert result.exit_code == 1
    assert "no partition ds=2026-10-25" in result.output


def test_cli_run_then_status(spark, cfg):
    result = runner.invoke(app, ["run", "--conf", str(cfg.root), "--date", END.isoformat()])
    assert result.exit_code in (0, 3), result.output
    assert "features/orders: 20 partitions" in result.output
    status = runner.invoke(app, ["status", "--conf", str(cfg.root)])
    assert status.exit_code == 0, status.output
    assert "recent runs" in status.output and END.isoformat() in status.output


def test_nightly_job_parser_matches_the_cli():
    from jobs.nightly import build_parser

    args = build_parser().parse_args(["--conf", "conf", "--date", "2026-10-14", "--force"])
    assert args.date == dt.date(2026, 10, 14) and args.force
    from jobs.nightly import main

    assert main(["--conf", "conf", "--date", "not-a-date"]) == 2
    assert main(["--conf", str(REPO / "no-such-conf")]) == 2  # a ConfigError, through the shared mapping


def test_cli_validate_and_release_a_quarantined_partition(spark, after_blocked_night):
    from engine.demo import read_faults
    from engine.validation import partition_statuses

    cfg, _ = after_blocked_night  # the night of END, run with the demo's suite
    fault = read_faults(cfg.lakehouse)[0]
    result = runner.invoke(app, ["validate", "--conf", str(cfg.root), "--date", fault.ds])
    assert result.exit_code == 3, result.output  # blocked: the fault day fails again
    assert f"features/orders ds={fault.ds} column {fault.column}" in result.output

    result = runner.invoke(app, ["release", "--conf", str(cfg.root), "--table", "features/orders",
                                 "--ds", fault.ds, "--reason", "upstream confirmed the nulls"])
    assert result.exit_code == 0, result.output
    status = {(s.table, s.ds.isoformat()): s for s in partition_statuses(spark, cfg)}[("features/orders", fault.ds)]
    assert status.status == "valid" and status.release_reason == "upstream confirmed the nulls"
    assert status.released_by

    result = runner.invoke(app, ["release", "--conf", str(cfg.root), "--table", "features/orders",
                                 "--ds", "2026-10-18", "--reason", "x"])  # a clean day
    assert result.exit_code == 2 and "ds=2026-10-18 is valid, not quarantined" in result.output


# --------------------------------------------------------------------------- crashes, signals, the lock


@pytest.fixture(scope="module")
def blocked_night(tmp_path_factory, demo_source, spark):
    """The night of END with the demo's expectation suite: processed, blocked (the demo's
    faults are quarantined, and partitions reading them recomputed)."""
    root = tmp_path_factory.mktemp("blocked_night")
    shutil.copytree(REPO / "expectations", root / "expectations")
    cfg = project(root, demo_source)
    with on(spark, "delta-rs"):  # whichever test asks first (the crash test compares both backends with it)
        [summary] = pipeline.run(spark, cfg, END)
    assert summary.status == "blocked" and summary.quarantined
    return Path(cfg.lakehouse), summary


@pytest.fixture
def after_blocked_night(tmp_path, blocked_night):
    lakehouse, summary = blocked_night
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return project(tmp_path, lakehouse), summary


def test_a_retry_reports_the_quarantines_the_killed_attempt_committed(spark, after_blocked_night):
    """A kill after the last validation commit, before the run row (the state a SIGKILL after
    the dependents stage leaves): the retry finds nothing to compute or validate, yet the
    night is blocked (exit 3) as the clean run's was, because the night's status comes from
    what the night committed. A re-run of the processed night exits as it was processed."""
    from deltalake import DeltaTable

    from engine.exit_codes import exit_code

    cfg, clean = after_blocked_night
    DeltaTable(Catalog.of(cfg).runs).delete("stage = 'run'")  # the attempt never finished
    assert END not in pipeline.processed_dates(spark, Catalog.of(cfg).runs)

    [retry] = pipeline.run(spark, cfg, END)
    assert retry.stages[1].stage == "validation" and retry.stages[1].status == "skipped"  # nothing left to judge
    assert retry.status == "blocked" and exit_code(summaries=[retry]) == 3
    assert retry.quarantined == clean.quarantined
    assert any("quarantined by an earlier attempt" in n for n in retry.notes)

    [again] = pipeline.run(spark, cfg, END)  # cron runs the same command once more
    assert again.status == "skipped" and again.processed_as == "blocked"
    assert exit_code(summaries=[again]) == 3


def test_a_run_sweeps_files_no_commit_names(spark, after_blocked_night):
    """Data files and artifact folders an attempt wrote but never committed (a kill between
    the write and the commit) are deleted under the lock at the start of the next run; files
    a later version removed stay (time travel, VACUUM's to delete)."""
    cfg, _ = after_blocked_night
    root = Path(cfg.lakehouse)
    features = root / "features" / "orders"
    kept = sorted(p for p in root.rglob("*.parquet") if "raw" not in p.parts)
    [committed, *_] = sorted(features.rglob("*.parquet"))
    planted = [committed.parent / "part-00000-killed-c000.snappy.parquet",
               root / "validation" / "partitions" / "part-killed.parquet",
               features / "_delta_log" / "_commit_killed.json.tmp"]
    for path in planted:
        shutil.copy(committed, path)
    artifact = root / "artifacts" / "delivery_time" / "__all__" / "v20261020"
    artifact.mkdir(parents=True)
    (artifact / "model.joblib").write_bytes(b"half written")
    before = snapshot(spark, cfg)

    pipeline.run(spark, cfg, END)  # processed already: nothing to do but the sweep
    assert [p for p in planted if p.exists()] == [] and not artifact.exists()
    assert [p for p in kept if not p.exists()] == []  # committed (and later removed) files stay
    assert snapshot(spark, cfg) == before


def test_validate_and_release_take_the_lakehouse_lock(spark, after_blocked_night):
    from engine.demo import read_faults
    from engine.errors import LockError
    from engine.lock import lakehouse_lock

    cfg, _ = after_blocked_night
    fault = dt.date.fromisoformat(read_faults(cfg.lakehouse)[0].ds)
    path = Catalog.of(cfg).validation_partitions
    version = tables.version(path)
    with lakehouse_lock(cfg.lakehouse, 60, "a nightly run"):
        with pytest.raises(LockError, match="locked by a nightly run"):
            pipeline.validate(spark, cfg, fault, fault)
        with pytest.raises(LockError, match="locked by a nightly run"):
            pipeline.release(spark, cfg, "features/orders", fault, "checked", "me")
    assert tables.version(path) == version  # nothing written while another run held it
    assert pipeline.release(spark, cfg, "features/orders", fault, "checked", "me").status == "valid"
    assert not (Path(cfg.lakehouse) / "_lock.json").exists()


# --------------------------------------------------------------------------- schema evolution


def _next_source_day(cfg, day: dt.date) -> None:
    """raw/orders ds=day+1: day's orders a day later (the demo source ends at END)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    raw = Path(cfg.lakehouse) / "raw" / "orders"
    table = pq.read_table(raw / f"ds={day}" / "part-00000.parquet")
    shifted = table.set_column(table.schema.get_field_index("event_ts"), "event_ts",
                               pc.add(table["event_ts"], pa_duration_day()))
    (raw / f"ds={day + dt.timedelta(days=1)}").mkdir()
    pq.write_table(shifted, raw / f"ds={day + dt.timedelta(days=1)}" / "part-00000.parquet")


def pa_duration_day():
    import pyarrow as pa

    return pa.scalar(86_400_000_000, pa.duration("us"))


def _edit_features(cfg, old: str, new: str):
    path = Path(cfg.root) / "features.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return load_config(cfg.root)


def test_a_column_added_to_a_feature_set_after_a_processed_night(spark, after_night):
    """The next night writes the new schema (old partitions read the new column as null), a
    `backfill --feature-set` fills it into the old partitions without changing anything else,
    and removing the column again is just as harmless."""
    from pyspark.sql import functions as F

    old_cfg = after_night
    path = Catalog.of(old_cfg).features("orders")
    before = tables.read(spark, path).where(F.col("ds") == END).drop("_source_days")
    before_rows = sorted(map(tuple, before.collect()), key=repr)
    nxt = END + dt.timedelta(days=1)
    _next_source_day(old_cfg, END)
    cfg = _edit_features(old_cfg, 'amount_per_item: "amount / items"',
                         'amount_per_item: "amount / items"\n      amount_x2: "amount * 2"')

    [summary] = pipeline.run(spark, cfg, nxt)
    assert summary.status in ("success", "blocked"), summary
    df = tables.read(spark, path)
    assert "amount_x2" in df.columns
    by_day = {r["ds"]: (r["n"], r["filled"], r["right"]) for r in df.groupBy("ds").agg(
        F.count("*").alias("n"), F.count("amount_x2").alias("filled"),
        F.sum((F.col("amount_x2") == F.col("amount") * 2).cast("int")).alias("right")).collect()}
    assert by_day[nxt][0] == by_day[nxt][1] == by_day[nxt][2] > 500  # the new night has it
    # old partitions read it as null until recomputed (the night recomputes only those whose
    # windows changed: the first day's never did); a recomputed one has it right
    first = min(by_day)
    assert by_day[first][1] == 0, summary.stages[0].detail
    assert all(filled == (right or 0) for _, filled, right in by_day.values())

    summary = pipeline.backfill(spark, cfg, feature_set="orders")
    assert summary.status in ("success", "blocked")
    df = tables.read(spark, path)
    counts = df.groupBy("ds").agg(F.count("*").alias("n"), F.count("amount_x2").alias("filled")).collect()
    assert all(r["n"] == r["filled"] for r in counts) and len(counts) == len(by_day)
    after = df.where(F.col("ds") == END).drop("_source_days", "amount_x2")
    assert sorted(map(tuple, after.select(*before.columns).collect()), key=repr) == before_rows

    cfg = _edit_features(cfg, '\n      amount_x2: "amount * 2"', "")  # and removed again
    summary = pipeline.backfill(spark, cfg, nxt, nxt)
    assert summary.status in ("success", "blocked")
    assert tables.read(spark, path).where(F.col("ds") == nxt).count() == by_day[nxt][0]


def test_a_retry_drops_the_evidence_a_killed_attempt_wrote_without_its_verdict(spark, after_blocked_night):
    """Validation commits its evidence (results, profiles, summaries) first and the verdict
    last. A kill in between leaves evidence no verdict used: the retry, which validates the
    partition again, deletes it first (so the tables hold what one clean validation writes);
    evidence whose verdict did commit stays."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    cfg, _ = after_blocked_night
    cat = Catalog.of(cfg)
    DeltaTable(cat.runs).delete("stage = 'run'")  # the attempt never finished
    verdicts_ = tables.read_rows(cat.validation_partitions)
    first = min(r["ds"] for r in verdicts_.to_pylist() if "-dependents-" not in r["run_id"])
    [verdict] = [r for r in verdicts_.to_pylist() if r["ds"] == first]
    results = tables.read_rows(cat.validation_results)
    judged = results.filter(pc.and_(pc.equal(results["ds"], first), pc.equal(results["run_id"], verdict["run_id"])))
    assert judged.num_rows > 0
    # a later validation of `first` by the same attempt wrote its evidence, then was killed
    orphan = judged.set_column(judged.schema.get_field_index("run_id"), "run_id",
                               pc.binary_join_element_wise(judged["run_id"], "-dependents-9", ""))
    tables.write_rows(None, cat.validation_results, orphan, mode="append", partition_by=["ds"])
    # and the partition has no current verdict (its content changed since), so it is validated again
    DeltaTable(cat.validation_partitions).update({"content_id": "'rewritten since'"}, predicate=f"ds = CAST('{first}' AS DATE)")

    [retry] = pipeline.run(spark, cfg, END)
    assert retry.status == "blocked"
    after = tables.read_rows(cat.validation_results)
    ids = collections_counter(r["run_id"] for r in after.to_pylist() if r["ds"] == first)
    assert ids[verdict["run_id"]] == judged.num_rows  # the evidence of the committed verdict stays
    assert not [i for i in ids if i.endswith("-dependents-9")]  # the unjudged evidence is gone
    assert ids[retry.run_id] > 0  # the retry's own


def collections_counter(values):
    import collections

    return collections.Counter(values)
