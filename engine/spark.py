"""The one SparkSession builder.

Only this module, jobs/ and tests build a session; everything else takes one as an argument.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

# Settings that make a small local session fast and predictable; config may override them.
DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def _ensure_python() -> None:
    # Workers start the interpreter named by PYSPARK_PYTHON; in a virtualenv the default
    # `python3` on PATH is the wrong one and cannot import pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("TZ", "UTC")


def get_spark(
    app_name: str = "retrain",
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
):
    """Return the active SparkSession or build one.

    A master set by spark-submit (``spark.master`` already in the launcher's conf) is
    respected; otherwise ``master`` or ``local[*]``.
    """
    _ensure_python()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if not _launched_by_spark_submit():
        builder = builder.master(master or "local[*]")
    for key, value in {**DEFAULTS, **dict(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the Python driver with PYSPARK_GATEWAY_PORT set and passes
    # --master through SparkConf; in that case the builder must not override it.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def has_delta_extension(spark) -> bool:
    """True when the session has Delta's Spark extension (Databricks, or --packages delta-spark)."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if "io.delta.sql.DeltaSparkSessionExtension" in extensions:
        return True
    return os.environ.get("DATABRICKS_RUNTIME_VERSION") is not None
