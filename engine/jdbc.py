"""Sources in a relational database, read with Spark's JDBC data source.

The table (or query) has a `ds` date column; the engine asks the database for its distinct
days (one small query) and reads only the days it needs (the ds range is pushed down as a
WHERE clause). With `partition_column`, Spark splits the read into `num_partitions`
parallel queries over that column's range. The user and password are read from the
environment variables the source names, at read time, and never logged."""
from __future__ import annotations

import datetime as dt
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from engine.config import JdbcSource
from engine.errors import SourceError


def _options(name: str, source: JdbcSource) -> dict[str, str]:
    options = {"url": source.url}
    for option, env in (("user", source.user_env), ("password", source.password_env)):
        if env is None:
            continue
        value = os.environ.get(env)
        if value is None:
            raise SourceError(f"source {name}: environment variable {env} ({option}_env) is not set; "
                              f"expected the database {option} for {source.url}")
        options[option] = value
    if source.driver:
        options["driver"] = source.driver
    return options


def _relation(source: JdbcSource) -> str:
    return source.table if source.table is not None else f"({source.query}) AS retrain_source"


def _load(spark: SparkSession, name: str, source: JdbcSource, relation: str, **extra: str) -> DataFrame:
    reader = spark.read.format("jdbc").options(**_options(name, source)).option("dbtable", relation)
    for key, value in extra.items():
        reader = reader.option(key, value)
    try:
        return reader.load()
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SourceError(f"source {name} ({source.path}): cannot read through JDBC: {first}") from e


def source_dates(spark: SparkSession, name: str, source: JdbcSource) -> list[dt.date]:
    """The distinct ds values (one `SELECT DISTINCT ds` in the database)."""
    df = _load(spark, name, source, f"(SELECT DISTINCT ds FROM {_relation(source)}) AS retrain_days")
    try:
        rows = df.collect()
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SourceError(f"source {name} ({source.path}): cannot list its ds values (expected a date column "
                          f"ds): {first}") from e
    return sorted(r[0] if isinstance(r[0], dt.date) else dt.date.fromisoformat(str(r[0])[:10]) for r in rows)


def read(spark: SparkSession, name: str, source: JdbcSource, start: dt.date, end: dt.date) -> DataFrame:
    """Rows with start <= ds <= end: the filter is pushed down to the database."""
    extra = {}
    if source.partition_column:
        extra = {"partitionColumn": source.partition_column, "lowerBound": start.isoformat(),
                 "upperBound": (end + dt.timedelta(days=1)).isoformat(),
                 "numPartitions": str(min(source.num_partitions, (end - start).days + 1))}
        if source.partition_column != "ds":
            extra.pop("lowerBound"), extra.pop("upperBound")
            bounds = _load(spark, name, source, f"(SELECT MIN({source.partition_column}) AS lo, "
                           f"MAX({source.partition_column}) AS hi FROM {_relation(source)}) AS retrain_bounds")
            lo, hi = bounds.collect()[0]
            if lo is None:
                extra = {}
            else:
                extra.update(lowerBound=str(lo), upperBound=str(hi))
    df = _load(spark, name, source, _relation(source), **extra)
    if "ds" not in df.columns:
        raise SourceError(f"source {name} ({source.path}): has no ds column (expected a date column ds; alias "
                          f"it in the query)")
    return df.where((F.col("ds") >= F.lit(start)) & (F.col("ds") <= F.lit(end)))
