"""The nightly pipeline end to end on a small demo source (no models: see test_end_to_end)."""
import datetime as dt
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

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 20)


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    """20 days of demo data, generated once; each test copies it."""
    root = tmp_path_factory.mktemp("demo_source")
    generate(str(root / "lakehouse"), END, days=20, seed=3)
    return root / "lakehouse"


@pytest.fixture
def cfg(tmp_path, demo_source):
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(REPO / "conf" / "project.yaml", conf)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    shutil.copytree(demo_source / "raw", tmp_path / "lakehouse" / "raw")
    return load_config(conf)


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


def test_first_run_builds_history_then_rerun_changes_nothing(spark, cfg):
    day = END - dt.timedelta(days=2)
    [summary] = pipeline.run(spark, cfg, day)
    assert summary.status in ("success", "blocked")
    computed = tables.partition_values(Catalog.of(cfg).path("features/orders"))
    assert computed[0] == END - dt.timedelta(days=19) and computed[-1] == day and len(computed) == 18
    stages = run_stages(cfg)
    assert (day, "features", "success") in stages and (day, "run", summary.status) in stages

    before = snapshot(spark, cfg)
    [again] = pipeline.run(spark, cfg, day)
    assert again.status == "skipped"
    assert snapshot(spark, cfg) == before


def test_forced_rerun_replaces_the_partition_with_identical_rows(spark, cfg):
    pipeline.run(spark, cfg, END)
    path = Catalog.of(cfg).path("features/orders")
    version = tables.version(path)
    rows = sorted(map(tuple, tables.read(spark, path).collect()), key=repr)
    pipeline.run(spark, cfg, END, force=True)
    assert tables.version(path) == version + 1  # rewritten, not skipped
    assert sorted(map(tuple, tables.read(spark, path).collect()), key=repr) == rows


def test_catch_up_runs_missed_nights_in_order(spark, cfg):
    first = END - dt.timedelta(days=3)
    pipeline.run(spark, cfg, first)
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


def test_backfill_recomputes_a_range_in_one_run(spark, cfg):
    pipeline.run(spark, cfg, END)
    path = Catalog.of(cfg).path("features/orders")
    version = tables.version(path)
    summary = pipeline.backfill(spark, cfg, END - dt.timedelta(days=4), END - dt.timedelta(days=2))
    assert tables.version(path) == version + 1  # one commit for three partitions
    assert "3 partitions" in summary.stages[0].detail


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


def test_cli_validate_and_release_a_quarantined_partition(spark, cfg):
    from engine.demo import read_faults
    from engine.validation import partition_statuses

    shutil.copytree(REPO / "expectations", cfg.root.parent / "expectations")
    pipeline.run(spark, cfg, END, progress=None)
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
