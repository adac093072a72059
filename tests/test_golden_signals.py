"""The pipeline's golden signals, read back over HTTP from a real Pushgateway, and the lock."""
import datetime as dt
import shutil
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine import pipeline
from engine.config import load_config
from engine.demo import generate, read_faults
from engine.errors import LockError, SourceError
from engine.lock import lakehouse_lock
from tests.test_metrics import pushgateway, scrape  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 10, 20)


def make_cfg(tmp_path, pushgateway_url=None):
    conf = tmp_path / "conf"
    conf.mkdir()
    project = (REPO / "conf" / "project.yaml").read_text()
    if pushgateway_url:
        project = project.replace("  pushgateway: null", f"  pushgateway: {pushgateway_url}")
    (conf / "project.yaml").write_text(project)
    shutil.copy(REPO / "conf" / "features.yaml", conf)
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    generate(str(tmp_path / "lakehouse"), END, days=16, seed=5)
    return load_config(conf)


def labelled(samples: dict, **want) -> float:
    """The one sample whose labels include `want`."""
    hits = [v for k, v in samples.items() if want.items() <= dict(k).items()]
    assert len(hits) == 1, (want, samples)
    return hits[0]


def test_pipeline_pushes_golden_signals_and_a_failure_keeps_the_last_success(spark, tmp_path, pushgateway):  # noqa: F811
    cfg = make_cfg(tmp_path, pushgateway)
    [summary] = pipeline.run(spark, cfg, END - dt.timedelta(days=1))
    assert summary.status == "blocked"  # the demo's fault days are quarantined
    m = scrape(pushgateway)
    success = labelled(m["retrain_last_success_timestamp_seconds"], stage="run", pipeline="retrain-demo")
    assert success == pytest.approx(summary.ended_at.timestamp(), abs=1)
    faults = read_faults(cfg.lakehouse)
    assert labelled(m["retrain_partitions_quarantined"], table="features/orders") == len(faults)
    for fault in faults:
        assert labelled(m["retrain_validation_failures"], table="features/orders", column=fault.column,
                        severity="block") >= 1
    rows = labelled(m["retrain_rows_processed"], stage="validation")
    assert rows == 15  # partitions checked

    # A failed night: the source lacks the day. Completion moves on, last success does not.
    shutil.rmtree(Path(cfg.lakehouse) / "raw" / "orders" / f"ds={END.isoformat()}")
    with pytest.raises(SourceError):
        pipeline.run(spark, cfg, END)
    m = scrape(pushgateway)
    assert labelled(m["retrain_last_success_timestamp_seconds"], stage="run") == success
    failed_at = labelled(m["retrain_last_completion_timestamp_seconds"], stage="run", status="failed")
    assert failed_at > success
    # The textfile collector file holds the same signals.
    text = Path(Catalog.of(cfg).metrics_file).read_text()
    assert 'retrain_last_completion_timestamp_seconds{stage="run",status="failed"}' in text


def test_a_run_refuses_to_start_while_another_holds_the_lakehouse(spark, tmp_path):
    cfg = make_cfg(tmp_path)
    with lakehouse_lock(cfg.lakehouse, cfg.project.lock_ttl_minutes, "another nightly run"):
        with pytest.raises(LockError, match="another nightly run"):
            pipeline.run(spark, cfg, END)
    assert not (Path(cfg.lakehouse) / "features").exists()  # nothing was computed
