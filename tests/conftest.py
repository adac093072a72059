"""One session-scoped SparkSession for the whole suite, tuned for speed on small data."""
from __future__ import annotations

import os
import sys

import pytest

os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only


@pytest.fixture(scope="session")
def spark():
    from engine.spark import get_spark

    session = get_spark(
        "retrain-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.memory": "2g",
            "spark.python.worker.reuse": "true",
        },
    )
    yield session
    session.stop()
