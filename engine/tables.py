"""Delta table API with two backends.

* delta-rs (`deltalake`, the embedded default): executors write Parquet files with pyarrow
  (`mapInArrow`), return only file names and stats, and the driver commits them in one Delta
  transaction. A task retry writes new files; only the files returned by successful attempts
  are committed, so a crash never exposes a half-written partition. Reads ask delta-rs for
  the files of a version and read them with Spark's Parquet reader.
* delta-spark: used when the session has Delta's Spark extension (Databricks, or
  spark-submit --packages io.delta:delta-spark_2.13:4.x).

Both write the standard Delta protocol, so tables move between them. Partition column
values are dates (`ds`) or strings (`model_id`).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from typing import Any, Iterable, Iterator, Sequence

import pyarrow as pa

from engine.errors import TableError
from engine.spark import has_delta_extension

PartitionValues = Sequence[Any]

FILE_SCHEMA = "path string, size long, partition_values string, num_records long, stats string"


# --------------------------------------------------------------------------- helpers


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _pv(value: Any) -> str | None:
    """A partition value as Delta stores it (a string)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _spark_to_arrow(schema) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC", prefers_large_types=False)


def _arrow_to_spark(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def _delta_table(path: str, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(path, version=version) if version is not None else DeltaTable(path)


# --------------------------------------------------------------------------- reading


def exists(path: str, spark=None) -> bool:
    if spark is not None and has_delta_extension(spark):
        from delta.tables import DeltaTable as SparkDeltaTable

        return SparkDeltaTable.isDeltaTable(spark, path)
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(path)


def version(path: str, spark=None) -> int | None:
    """The table's latest version, or None when there is no table."""
    if not exists(path, spark):
        return None
    if spark is not None and has_delta_extension(spark):
        from delta.tables import DeltaTable as SparkDeltaTable

        return int(SparkDeltaTable.forPath(spark, path).history(1).collect()[0]["version"])
    return _delta_table(path).version()


def arrow_schema(path: str, version_: int | None = None) -> pa.Schema:
    return pa.schema(_delta_table(path, version_).schema().to_arrow())


def partition_values(path: str, column: str = "ds", version_: int | None = None, spark=None) -> list[Any]:
    """The distinct values of a partition column (from the log, no data read)."""
    if not exists(path, spark):
        return []
    if spark is not None and has_delta_extension(spark):
        rows = read(spark, path, version_).select(column).distinct().collect()
        return sorted(r[0] for r in rows)
    actions = pa.table(_delta_table(path, version_).get_add_actions(flatten=True))
    return sorted(set(actions.column(f"partition.{column}").to_pylist()))


def read(spark, path: str, version: int | None = None, partitions: PartitionValues | None = None,
         column: str = "ds"):
    """Read a table (optionally as of `version`, optionally only some partitions) as a DataFrame."""
    if has_delta_extension(spark):
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        df = reader.load(path)
        if partitions is not None:
            df = df.where(df[column].isin(list(partitions)))
        return df
    if not exists(path):
        raise TableError(f"table {path}: does not exist")
    try:
        table = _delta_table(path, version)
    except Exception as e:
        raise TableError(f"table {path}: cannot read version {version}: {e}") from e
    schema = pa.schema(table.schema().to_arrow())
    spark_schema = _arrow_to_spark(schema)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    if partitions is not None:
        wanted = {_pv(v) for v in partitions}
        actions = [a for a in actions if _pv(a.get(f"partition.{column}")) in wanted]
    if not actions:
        return spark.createDataFrame([], spark_schema)
    base = path.rstrip("/")
    uris = [f"{base}/{a['path']}" for a in actions]
    df = spark.read.schema(spark_schema).option("basePath", base).parquet(*uris)
    return df.select(*[f.name for f in schema])


# --------------------------------------------------------------------------- writing


def _file_writer(table_path: str, data_schema: pa.Schema, partition_by: list[str]):
    """The function executors run: write each batch's rows into Parquet files, one per
    partition value per task, and yield one row per file with its name and stats."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = _local(table_path).rstrip("/")

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        writers: dict[tuple, tuple[Any, str, int, dict[str, int]]] = {}
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                table = pa.Table.from_batches([batch])
                if partition_by:
                    keys = table.select(partition_by).group_by(partition_by).aggregate([]).to_pylist()
                else:
                    keys = [{}]
                for key in keys:
                    part = table
                    for col, value in key.items():
                        mask = pc.is_null(part[col]) if value is None else pc.equal(part[col], value)
                        part = part.filter(mask)
                    part = part.select(data_schema.names).cast(data_schema)
                    kt = tuple(_pv(key.get(c)) for c in partition_by)
                    if kt not in writers:
                        folder = "/".join(
                            f"{c}={'__HIVE_DEFAULT_PARTITION__' if v is None else v}" for c, v in zip(partition_by, kt)
                        )
                        rel = (folder + "/" if folder else "") + f"part-{uuid.uuid4()}-c000.snappy.parquet"
                        full = f"{base}/{rel}"
                        if _is_local(table_path):
                            os.makedirs(os.path.dirname(full), exist_ok=True)
                        writers[kt] = (pq.ParquetWriter(full, data_schema, compression="snappy"), rel, 0,
                                       {n: 0 for n in data_schema.names})
                    writer, rel, n, nulls = writers[kt]
                    writer.write_table(part)
                    for name in data_schema.names:
                        nulls[name] += part[name].null_count
                    writers[kt] = (writer, rel, n + part.num_rows, nulls)
        finally:
            for writer, *_ in writers.values():
                writer.close()
        out = {"path": [], "size": [], "partition_values": [], "num_records": [], "stats": []}
        for kt, (_, rel, n, nulls) in writers.items():
            out["path"].append(rel)
            out["size"].append(os.path.getsize(f"{base}/{rel}") if _is_local(table_path) else 0)
            out["partition_values"].append(json.dumps(dict(zip(partition_by, kt))))
            out["num_records"].append(n)
            out["stats"].append(json.dumps({"numRecords": n, "nullCount": nulls}))
        yield pa.RecordBatch.from_pydict(
            out,
            schema=pa.schema([("path", pa.string()), ("size", pa.int64()), ("partition_values", pa.string()),
                              ("num_records", pa.int64()), ("stats", pa.string())]),
        )

    return write


def _commit(path: str, schema: pa.Schema, actions: list, mode: str, partition_by: list[str],
            replace: list[str] | None, column: str) -> int:
    """Commit files written elsewhere in one Delta transaction; return the new version."""
    from deltalake import Schema as DeltaSchema
    from deltalake.transaction import create_table_with_add_actions

    delta_schema = DeltaSchema.from_arrow(schema)
    if not exists(path):
        create_table_with_add_actions(path, delta_schema, actions, mode="append",
                                      partition_by=partition_by or None)
        return _delta_table(path).version()
    table = _delta_table(path)
    existing = pa.schema(table.schema().to_arrow())
    if mode != "overwrite" or replace is not None:
        if [f.name for f in existing] != [f.name for f in schema] or existing.types != schema.types:
            raise TableError(
                f"table {path}: schema mismatch: the table has ({_describe(existing)}), "
                f"the write has ({_describe(schema)}); re-create it with a full overwrite"
            )
    if replace is not None:
        filters = [(column, "in", replace)] if replace else None
        if not replace:  # nothing to replace and nothing to add: no commit
            if not actions:
                return table.version()
            table.create_write_transaction(actions, mode="append", schema=delta_schema,
                                           partition_by=partition_by or None)
        else:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                table.create_write_transaction(actions, mode="overwrite", schema=delta_schema,
                                               partition_by=partition_by or None, partition_filters=filters)
    else:
        table.create_write_transaction(actions, mode=mode, schema=delta_schema, partition_by=partition_by or None)
    return _delta_table(path).version()


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def write(spark, df, path: str, *, mode: str = "append", partition_by: Sequence[str] = (),
          replace_partitions: PartitionValues | None = None, column: str = "ds") -> int:
    """Write a DataFrame as one atomic Delta commit and return the new table version.

    mode="append" adds rows; mode="overwrite" replaces the whole table, or, with
    `replace_partitions`, exactly those values of `column` (others stay untouched).
    Older versions stay readable (time travel).
    """
    partition_by = list(partition_by)
    if mode not in ("append", "overwrite"):
        raise TableError(f"table {path}: mode must be append or overwrite, got {mode!r}")
    if replace_partitions is not None and column not in partition_by:
        raise TableError(f"table {path}: replacing partitions needs the table partitioned by {column!r}")
    if has_delta_extension(spark):
        return _write_delta_spark(spark, df, path, mode, partition_by, replace_partitions, column)

    full_schema = _nullable(_spark_to_arrow(df.schema))
    data_schema = pa.schema([f for f in full_schema if f.name not in partition_by])
    # Delta lays out partitioned tables with partition columns last.
    table_schema = pa.schema(list(data_schema) + [full_schema.field(c) for c in partition_by])
    rows = df.mapInArrow(_file_writer(path, data_schema, partition_by), FILE_SCHEMA).collect()
    files = [r.asDict() for r in rows if r["num_records"] > 0]
    actions = _add_actions(files)
    replace = None if replace_partitions is None else sorted({_pv(v) for v in replace_partitions})
    if replace is not None:
        stray = {json.loads(f["partition_values"]).get(column) for f in files} - set(replace)
        if stray:
            _remove_files(path, files)
            raise TableError(
                f"table {path}: the write has rows for {column}={sorted(stray)} outside the partitions "
                f"it replaces ({replace}); nothing was committed"
            )
    try:
        return _commit(path, table_schema, actions, mode, partition_by, replace, column)
    except Exception as e:
        _remove_files(path, files)  # uncommitted files are invisible; tidy them anyway
        if isinstance(e, TableError):
            raise
        raise TableError(f"table {path}: commit failed, nothing was changed: {e}") from e


def _add_actions(files: Iterable[dict]) -> list:
    from deltalake.transaction import AddAction

    now = int(time.time() * 1000)
    return [
        AddAction(path=f["path"], size=int(f["size"]), partition_values=json.loads(f["partition_values"]),
                  modification_time=now, data_change=True, stats=f["stats"])
        for f in files
    ]


def _remove_files(path: str, files: Iterable[dict]) -> None:
    if not _is_local(path):
        return
    for f in files:
        try:
            os.remove(f"{_local(path).rstrip('/')}/{f['path']}")
        except OSError:
            pass


def _write_delta_spark(spark, df, path, mode, partition_by, replace_partitions, column) -> int:
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_partitions is not None:
        values = ", ".join(f"'{_pv(v)}'" for v in replace_partitions) or "NULL"
        writer = writer.option("replaceWhere", f"{column} IN ({values})")
    writer.save(path)
    return version(path, spark)


# --------------------------------------------------------------------------- small tables


def write_rows(spark, path: str, rows: pa.Table, *, mode: str = "append", partition_by: Sequence[str] = (),
               replace_partitions: PartitionValues | None = None, column: str = "ds") -> int:
    """Write rows that were made on the driver (run log, registry, verdicts): one commit."""
    rows = rows.cast(_nullable(rows.schema))
    if spark is not None and has_delta_extension(spark):
        df = spark.createDataFrame(rows.to_pandas(), schema=_arrow_to_spark(rows.schema))
        return write(spark, df, path, mode=mode, partition_by=partition_by,
                     replace_partitions=replace_partitions, column=column)
    from deltalake import write_deltalake

    predicate = None
    if replace_partitions is not None:
        values = ", ".join(f"'{_pv(v)}'" for v in replace_partitions)
        predicate = f"{column} IN ({values})" if values else "false"
    try:
        write_deltalake(path, rows, mode=mode, partition_by=list(partition_by) or None, predicate=predicate)
    except Exception as e:
        raise TableError(f"table {path}: write failed, nothing was changed: {e}") from e
    return _delta_table(path).version()


def upsert_rows(spark, path: str, rows: pa.Table, keys: Sequence[str], partition_by: Sequence[str] = ()) -> int:
    """Insert rows, replacing those with the same `keys` (one commit)."""
    rows = rows.cast(_nullable(rows.schema))
    if not exists(path, spark):
        return write_rows(spark, path, rows, partition_by=partition_by)
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    if spark is not None and has_delta_extension(spark):
        from delta.tables import DeltaTable as SparkDeltaTable

        source = spark.createDataFrame(rows.to_pandas(), schema=_arrow_to_spark(rows.schema))
        (SparkDeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), predicate)
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        return version(path, spark)
    try:
        (_delta_table(path).merge(rows, predicate, source_alias="s", target_alias="t")
         .when_matched_update_all().when_not_matched_insert_all().execute())
    except Exception as e:
        raise TableError(f"table {path}: upsert failed, nothing was changed: {e}") from e
    return _delta_table(path).version()


def read_rows(path: str, version_: int | None = None, spark=None) -> pa.Table | None:
    """A small table (run log, registry, partition statuses) on the driver; None if absent."""
    if not exists(path, spark):
        return None
    if spark is not None and has_delta_extension(spark):
        return pa.Table.from_pandas(read(spark, path, version_).toPandas(), preserve_index=False)
    return pa.table(_delta_table(path, version_).to_pyarrow_dataset().to_table())
