"""The one SparkSession builder.

Only this module, jobs/ and tests build a session; everything else takes one as an argument.

The JVM jars (Delta Lake for Spark, hadoop-aws + its AWS SDK, the PostgreSQL JDBC driver)
are pinned in jars/pom.xml; `make install` fetches them with Maven into jars/lib/ (or the
folder named by RETRAIN_JARS). When they are there, a session this module starts gets them
(`spark.jars`) with Delta's SQL extension and catalog, and its tables default to the
delta-spark backend (`spark.retrain.storage.backend`, see engine.storage). Under spark-submit the
launcher owns the classpath: pass `python -m engine.spark` 's output (the same jars).
"""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Mapping

from engine.errors import BackendError

BACKEND_CONF = "spark.retrain.storage.backend"
BACKENDS = ("delta-spark", "delta-rs")
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
JARS_DIR = Path(__file__).resolve().parent.parent / "jars" / "lib"
MAKE_INSTALL = ("run `make install` (it fetches Delta Lake's Spark jars with Maven, pinned in jars/pom.xml, into "
                "jars/lib/), or start Spark with them (spark-submit $(python -m engine.spark) ...)")

# Settings that make a small local session fast and predictable; config may override them.
DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    # Delta (delta-spark) rebuilds a table's state in 50 tasks by default; the engine's tables are small.
    "spark.databricks.delta.snapshotPartitions": "8",
    # Delta's VACUUM lists a table in this many tasks (Spark's default: 10000, minutes on 2 cores).
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
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
    settings = session_conf(conf, jars=not _launched_by_spark_submit(),
                            local=(master or "local[*]").startswith("local"))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def session_conf(conf: Mapping[str, str] | None = None, *, jars: bool = True, local: bool = True) -> dict[str, str]:
    """DEFAULTS, then `conf`, plus the jars and Delta's settings when `jars` (the builder
    starts the JVM) and jars/lib has them. Asking for delta-spark without them is an error
    that says how to get them."""
    settings = {**DEFAULTS, **dict(conf or {})}
    asked = settings.get(BACKEND_CONF)
    if asked is not None and asked not in BACKENDS:
        raise BackendError(f"spark conf {BACKEND_CONF}={asked!r}: expected one of {', '.join(BACKENDS)}")
    if jars and delta_jars():
        return with_jars(settings, local=local)
    if jars and asked == "delta-spark":
        raise BackendError(f"spark conf {BACKEND_CONF}=delta-spark, but Delta Lake's Spark jars are not in "
                           f"{jars_dir()}: {MAKE_INSTALL}")
    return settings


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the Python driver with PYSPARK_GATEWAY_PORT set and passes
    # --master through SparkConf; in that case the builder must not override it.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def has_delta_extension(spark) -> bool:
    """True when the session is configured with Delta's Spark extension (Databricks, or jars)."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION in extensions:
        return True
    return os.environ.get("DATABRICKS_RUNTIME_VERSION") is not None


_LOADABLE: dict[int, bool] = {}


def delta_available(spark) -> bool:
    """The session has Delta's extension configured and its classes load (Spark only warns
    when a configured extension class is missing)."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION") is not None:
        return True
    if not has_delta_extension(spark):
        return False
    key = id(spark)
    if key not in _LOADABLE:
        try:
            jvm = spark._jvm
            jvm.java.lang.Class.forName(DELTA_EXTENSION, False, jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader())
            _LOADABLE[key] = True
        except Exception:
            _LOADABLE[key] = False
    return _LOADABLE[key]


# --------------------------------------------------------------------------- jars


def jars_dir() -> Path:
    return Path(os.environ.get("RETRAIN_JARS") or JARS_DIR)


def jar_files() -> list[str]:
    """Every jar `make install` copied (jars/lib/<group>/*.jar), sorted."""
    return sorted(glob.glob(str(jars_dir() / "**" / "*.jar"), recursive=True))


def delta_jars() -> bool:
    return any(Path(j).name.startswith("delta-spark_") for j in jar_files())


def with_jars(settings: Mapping[str, str], *, local: bool = False) -> dict[str, str]:
    """`settings` plus the jars, Delta's SQL extension and its catalog (kept where set).

    A local session (driver and executors in one JVM) puts them on the driver's class path;
    `spark.jars` would copy each into the session's temporary folder (the AWS SDK bundle is
    690 MB). For a cluster they go in `spark.jars`, which ships them to the executors."""
    out = dict(settings)
    key, sep = ("spark.driver.extraClassPath", os.pathsep) if local else ("spark.jars", ",")
    jars = [j for j in (out.get(key) or "").split(sep) if j] + jar_files()
    out[key] = sep.join(dict.fromkeys(jars))
    extensions = [e for e in (out.get("spark.sql.extensions") or "").split(",") if e]
    if DELTA_EXTENSION not in extensions:
        extensions.append(DELTA_EXTENSION)
    out["spark.sql.extensions"] = ",".join(extensions)
    out.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    return out


def submit_args() -> list[str]:
    """spark-submit arguments giving a job the same jars and Delta settings as get_spark."""
    if not delta_jars():
        raise BackendError(f"no Delta Lake jars in {jars_dir()}: {MAKE_INSTALL}")
    conf = with_jars({})
    return ["--jars", conf.pop("spark.jars")] + [a for k, v in conf.items() for a in ("--conf", f"{k}={v}")]


if __name__ == "__main__":  # spark-submit $(python -m engine.spark) jobs/nightly.py ...
    print(" ".join(submit_args()))
