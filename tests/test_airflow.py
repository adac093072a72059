"""deploy/airflow/retrain_nightly.py executed by a real Airflow: `airflow dags test` for one
logical date, its SparkSubmitOperator submitting jobs/nightly.py to a Spark standalone master
and worker started on 127.0.0.1 (tests/test_cluster.py's), and the exit code mapped to the
task's state (README "Exit codes").

Airflow comes from PyPI into a virtualenv of its own (its pins would fight the engine's),
made once under ~/.cache/retrain-airflow (RETRAIN_AIRFLOW_CACHE) and reused; its metadata
database is a sqlite file in the test's temporary directory.

The project is tests/test_plugins.py's tiny one with an expectation suite: night 1 is clean
(exit 0 -> task success), night 2's partition breaks the suite and is quarantined (exit 3 ->
task failed at once, without the retry a plain failure gets).

Slow (make test-slow): creating the virtualenv takes minutes the first time; each `dags test`
starts Airflow, spark-submit and the job's JVM.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import tables
from engine.catalog import Catalog
from engine.config import load_config
from tests import test_plugins as tiny
from tests.test_cluster import base_env, free_port, standalone_cluster

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VERSION = "3.3.2"
SPARK_PROVIDER_VERSION = "6.3.4"
CACHE = Path(os.environ.get("RETRAIN_AIRFLOW_CACHE", Path.home() / ".cache" / "retrain-airflow"))
DAG_ID = "retrain_nightly"

pytestmark = pytest.mark.slow

SUITE = {
    "name": "points",
    "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10},
         "meta": {"severity": "block"}},
    ],
}


def airflow_venv() -> Path:
    """The cached virtualenv with Airflow and the Spark provider (created when missing)."""
    venv = CACHE / f"venv-{AIRFLOW_VERSION}"
    airflow = venv / "bin" / "airflow"
    probe = [str(venv / "bin" / "python"), "-c", "import airflow.providers.apache.spark.operators.spark_submit"]
    if airflow.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return airflow
    CACHE.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    started = time.monotonic()
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"apache-airflow=={AIRFLOW_VERSION}",
                              f"apache-airflow-providers-apache-spark=={SPARK_PROVIDER_VERSION}"],
                             capture_output=True, text=True)
    assert install.returncode == 0, f"installing Airflow into {venv} failed:\n{install.stderr[-3000:]}"
    print(f"Airflow {AIRFLOW_VERSION} installed into {venv} in {time.monotonic() - started:.0f}s")
    return airflow


def write_day(project: Path, ds: dt.date, scale: float) -> None:
    folder = project / "raw" / "points" / f"ds={ds.isoformat()}"
    rows = [{"id": f"{ds:%m%d}-{i}", "x": scale * (i % 11) / 2.0, "y": 1.0 + 0.5 * (i % 11) / 2.0} for i in range(40)]
    folder.mkdir(parents=True)
    schema = pa.schema([("id", pa.string()), ("x", pa.float64()), ("y", pa.float64())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-0.parquet")


def task_instances(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT run_id, state, try_number FROM task_instance WHERE task_id = 'nightly' "
                           "ORDER BY start_date").fetchall()


@pytest.mark.timeout(3600)
def test_airflow_dags_test_runs_the_night_and_maps_exit_codes_to_task_states(tmp_path):
    airflow = airflow_venv()
    project = tmp_path / "project"
    project.mkdir()
    tiny.write_plugin(project)
    tiny.write_points(project)  # clean days up to tiny.END
    conf = tiny.write_project(project)
    (project / "expectations").mkdir()
    (project / "expectations" / "points.json").write_text(json.dumps(SUITE))
    broken_day = tiny.END + dt.timedelta(days=1)
    write_day(project, broken_day, scale=100.0)  # x up to 500: the suite blocks this day

    home = tmp_path / "airflow"
    home.mkdir()
    with standalone_cluster(tmp_path / "cluster", workers=1) as cluster:
        env = {k: v for k, v in base_env(tmp_path / "cluster").items() if k != "PYTHONPATH"}
        env.update(
            AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "deploy" / "airflow"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__API__PORT=str(free_port()),
            AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": cluster.master_url.rsplit(":", 1)[0],
                                                   "port": int(cluster.master_url.rsplit(":", 1)[1]),
                                                   "extra": {"deploy-mode": "client"}}),
            RETRAIN_HOME=str(REPO), RETRAIN_CONF=str(conf), RETRAIN_PYTHON=sys.executable,
            # spark-submit on PATH: the engine's (the pyspark package's launcher)
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        )
        migrate = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True)
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
        cluster.wait_for_workers()

        def dags_test(day: dt.date) -> subprocess.CompletedProcess:
            started = time.monotonic()
            result = subprocess.run([str(airflow), "dags", "test", DAG_ID, day.isoformat()], env=env,
                                    capture_output=True, text=True, timeout=1200)
            print(f"airflow dags test {day}: exit {result.returncode} in {time.monotonic() - started:.0f}s")
            return result

        clean = dags_test(tiny.END)
        log = clean.stdout + clean.stderr
        assert clean.returncode == 0, log[-4000:]
        [(_, state, tries)] = task_instances(home / "airflow.db")
        assert (state, tries) == ("success", 1), log[-4000:]

        blocked = dags_test(broken_day)
        log = blocked.stdout + blocked.stderr
        assert blocked.returncode != 0, log[-4000:]  # the DAG run failed
        assert "jobs/nightly.py exited with 3: finished, but data-quality checks blocked" in log, log[-4000:]
        second = task_instances(home / "airflow.db")[-1]
        assert second[1:] == ("failed", 1), (second, log[-4000:])  # failed at once: no retry

    cfg = load_config(conf)
    runs = [r for r in tables.read_rows(Catalog.of(cfg).runs).to_pylist() if r["stage"] == "run"]
    assert sorted((str(r["logical_date"]), r["status"]) for r in runs) == [
        (tiny.END.isoformat(), "success"), (broken_day.isoformat(), "blocked")], runs
    statuses = {str(r["ds"]): r["status"] for r in tables.read_rows(Catalog.of(cfg).validation_partitions).to_pylist()}
    assert statuses[broken_day.isoformat()] == "quarantined" and statuses[tiny.END.isoformat()] == "valid"
