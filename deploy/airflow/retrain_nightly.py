"""Airflow DAG: the nightly retrain run, one spark-submit of jobs/nightly.py.

Needs apache-airflow-providers-apache-spark, `spark-submit` on the Airflow worker's PATH and a
Spark connection (`spark_default`: the master URL and deploy mode, e.g.
AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "spark://master", "port": 7077,
"extra": {"deploy-mode": "client"}}'). The retrain checkout and its virtualenv are expected
at RETRAIN_HOME on the Airflow workers and the Spark nodes; conf at RETRAIN_CONF.

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
- Exit codes -> task state (README "Exit codes"):
    0 -> success;
    1 (the run failed: the night is not processed) -> failed, retried (`retries`, 30 min
      apart; a retry runs the night again);
    2 (config error), 3 (finished, data-quality checks blocked partitions or models) and
    4 (finished, some model pairs failed to train) -> failed at once, without retries:
      a retry cannot fix a config, and after 3 or 4 the night is processed, so a retry
      would find nothing to do and turn the task green, hiding what someone should look at
      (the run summary in the task log and the Prometheus alerts say what).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.exceptions import AirflowException, AirflowFailException
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:
    from airflow.sdk import DAG  # Airflow 3
except ImportError:  # Airflow 2
    from airflow import DAG

RETRAIN_HOME = os.environ.get("RETRAIN_HOME", "/opt/retrain")
RETRAIN_CONF = os.environ.get("RETRAIN_CONF", f"{RETRAIN_HOME}/conf")
# Spark workers start the interpreter named by PYSPARK_PYTHON: the checkout's virtualenv.
RETRAIN_PYTHON = os.environ.get("RETRAIN_PYTHON", f"{RETRAIN_HOME}/.venv/bin/python")
APPLICATION = f"{RETRAIN_HOME}/jobs/nightly.py"

# jobs/nightly.py exit codes that fail the task without a retry (engine/exit_codes.py).
NO_RETRY = {
    2: "config or usage error (the log names the file and key)",
    3: "finished, but data-quality checks blocked partitions or models",
    4: "finished, but some (model, segment) pairs failed to train",
}


class NightlySubmitOperator(SparkSubmitOperator):
    """SparkSubmitOperator that maps jobs/nightly.py's exit code to the task's state."""

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowException as e:
            process = getattr(self._hook, "_submit_sp", None)  # the spark-submit process
            code = getattr(process, "returncode", None)
            if code in NO_RETRY:
                raise AirflowFailException(f"jobs/nightly.py exited with {code}: {NO_RETRY[code]}") from e
            raise


with DAG(
    dag_id="retrain_nightly",
    description="Nightly feature build, validation and retraining (retrain)",
    schedule="0 2 * * *",  # 02:00 UTC: after the day's raw partitions have landed
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": 1,  # exit 1 only (see NO_RETRY); a rerun is safe (idempotent partitions, lock)
        "retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=5),
    },
    tags=["retrain", "spark"],
    doc_md=__doc__,
) as dag:
    nightly = NightlySubmitOperator(
        task_id="nightly",
        conn_id="spark_default",
        name="retrain-nightly-{{ ds_nodash }}",
        application=APPLICATION,
        application_args=["--conf", RETRAIN_CONF, "--date", "{{ ds }}"],
        env_vars={"PYSPARK_PYTHON": RETRAIN_PYTHON, "PYSPARK_DRIVER_PYTHON": RETRAIN_PYTHON},
        # The executors import the engine from the checkout (or install it on the nodes).
        conf={"spark.pyspark.python": RETRAIN_PYTHON, "spark.executorEnv.PYTHONPATH": RETRAIN_HOME},
        verbose=False,
    )
