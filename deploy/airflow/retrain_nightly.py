"""Airflow DAG: the nightly retrain run, one spark-submit of jobs/nightly.py.

Needs apache-airflow-providers-apache-spark and a Spark connection (`spark_default`: the
master URL and deploy mode). The retrain checkout and its virtualenv are expected on the
Airflow workers at RETRAIN_HOME; conf at RETRAIN_CONF.

Choices:
- `--date {{ ds }}`: the run scheduled at 02:00 on day D+1 covers the interval of day D,
  so ds = D, the last complete day (the same date jobs/nightly.py picks by default:
  yesterday, UTC).
- catchup=False: the engine catches up by itself. `retrain run` / jobs/nightly.py process
  every missed night in order up to --date, so after an outage one run is enough; with
  catchup=True Airflow would queue one run per missed night that all take the same
  lakehouse lock in turn, redoing nothing but paying a Spark start each. Older ranges go
  through `retrain backfill` (or jobs/nightly.py --backfill-start/--backfill-end).
- max_active_runs=1: never two runs at once (the lakehouse lock would refuse the second).
- execution_timeout (5 h) below the lakehouse lock TTL (lock_ttl_minutes, default 6 h), so
  Airflow kills a hung run before another run may consider its lock stale.
- Exit codes: 0 ok; 1 failure and 2 config error fail the task; 3 (finished, data-quality
  checks blocked partitions or models) and 4 (finished, some model pairs failed to train)
  also fail the task, on purpose: someone should look, and Prometheus alerts say what.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

RETRAIN_HOME = os.environ.get("RETRAIN_HOME", "/opt/retrain")
RETRAIN_CONF = os.environ.get("RETRAIN_CONF", f"{RETRAIN_HOME}/conf")
# Spark workers start the interpreter named by PYSPARK_PYTHON: the checkout's virtualenv.
RETRAIN_PYTHON = os.environ.get("RETRAIN_PYTHON", f"{RETRAIN_HOME}/.venv/bin/python")
APPLICATION = f"{RETRAIN_HOME}/jobs/nightly.py"

with DAG(
    dag_id="retrain_nightly",
    description="Nightly feature build, validation and retraining (retrain)",
    schedule="0 2 * * *",  # 02:00 UTC: after the day's raw partitions have landed
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": 1,  # a transient failure; a rerun is safe (idempotent partitions, lock)
        "retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=5),
    },
    tags=["retrain", "spark"],
    doc_md=__doc__,
) as dag:
    nightly = SparkSubmitOperator(
        task_id="nightly",
        conn_id="spark_default",
        name="retrain-nightly-{{ ds_nodash }}",
        application=APPLICATION,
        application_args=["--conf", RETRAIN_CONF, "--date", "{{ ds }}"],
        env_vars={"PYSPARK_PYTHON": RETRAIN_PYTHON, "PYSPARK_DRIVER_PYTHON": RETRAIN_PYTHON},
        verbose=False,
    )
