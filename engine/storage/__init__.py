"""Delta storage behind one protocol (`base.Backend`), two implementations:

* delta-spark (`delta_spark.DeltaSpark`): Delta Lake's Spark writer/reader; the default
  when the session has Delta's Spark extension (`make install` fetched the jars, or
  Databricks);
* delta-rs (`delta_rs.DeltaRs`): executors write Parquet with pyarrow, the driver commits
  with delta-rs; the default without the jars, and always what a caller without a
  SparkSession gets (`status`/`report` reading small tables without a JVM).

The backend is a property of the session: Spark conf `spark.retrain.storage.backend`
(`delta-spark` | `delta-rs`), else the default above. Nothing outside this package asks
which one runs; `engine.tables` is the API."""
from __future__ import annotations

from engine.errors import BackendError
from engine.spark import BACKEND_CONF, BACKENDS, MAKE_INSTALL, delta_available
from engine.storage.base import Backend, Maintenance
from engine.storage.delta_rs import DeltaRs
from engine.storage.delta_spark import DeltaSpark

__all__ = ["Backend", "Maintenance", "DeltaRs", "DeltaSpark", "backend", "backend_name"]


def backend_name(spark) -> str:
    """Which backend `spark` uses: its `spark.retrain.storage.backend`, else delta-spark when the
    session has Delta's extension, else delta-rs."""
    if spark is None:
        return "delta-rs"
    name = spark.conf.get(BACKEND_CONF, None)
    if name is None:
        return "delta-spark" if delta_available(spark) else "delta-rs"
    if name not in BACKENDS:
        raise BackendError(f"spark conf {BACKEND_CONF}={name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "delta-spark" and not delta_available(spark):
        raise BackendError(f"spark conf {BACKEND_CONF}=delta-spark, but this session has no Delta Lake Spark "
                           f"extension: {MAKE_INSTALL}")
    return name


def backend(spark) -> Backend:
    return DeltaSpark(spark) if backend_name(spark) == "delta-spark" else DeltaRs(spark)
