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
import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs

from engine import catalog
from engine.errors import TableError
from engine.spark import has_delta_extension

PartitionValues = Sequence[Any]

FILE_SCHEMA = "path string, size long, partition_values string, num_records long, stats string"


# --------------------------------------------------------------------------- helpers


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
    """The table as delta-rs reads it; a damaged or missing log entry is one TableError line."""
    from deltalake import DeltaTable

    try:
        return DeltaTable(catalog.native(path), version=version)
    except Exception as e:
        what = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        at = f"version {version}" if version is not None else "the latest version"
        raise TableError(f"table {path}: cannot load {at} from its Delta log (_delta_log/): expected a "
                         f"complete, readable JSON commit for every version after the last checkpoint; {what}") from e


# --------------------------------------------------------------------------- reading


def exists(path: str, spark=None) -> bool:
    if spark is not None and has_delta_extension(spark):
        from delta.tables import DeltaTable as SparkDeltaTable

        return SparkDeltaTable.isDeltaTable(spark, path)
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(catalog.native(path))


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
    return sorted({a[f"partition.{column}"] for a in _add_actions_of(_delta_table(path, version_))})


def num_records(path: str, version_: int | None = None, partitions: PartitionValues | None = None,
                column: str = "ds") -> int:
    """Rows of a table (or of some partitions) from the log's file statistics (no data read)."""
    actions = _add_actions_of(_delta_table(path, version_))
    if partitions is not None:
        wanted = {_pv(v) for v in partitions}
        actions = [a for a in actions if _pv(a[f"partition.{column}"]) in wanted]
    return int(sum(a["num_records"] or 0 for a in actions))


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
    table = _delta_table(path, version)
    schema = pa.schema(table.schema().to_arrow())
    spark_schema = _arrow_to_spark(schema)
    actions = _add_actions_of(table)
    if partitions is not None:
        wanted = {_pv(v) for v in partitions}
        actions = [a for a in actions if _pv(a.get(f"partition.{column}")) in wanted]
    _check_files(path, table.version(), actions)
    if not actions:
        return spark.createDataFrame([], spark_schema)
    base = path.rstrip("/")
    uris = [f"{base}/{a['path']}" for a in actions]
    df = spark.read.schema(spark_schema).option("basePath", base).parquet(*uris)
    return df.select(*[f.name for f in schema])


# Above this many files, an object store is listed once instead of asked per file.
LIST_ABOVE = 32


def _check_files(path: str, version_: int, actions: list[dict]) -> None:
    """Every file the log lists exists with the size the log recorded (one listing of the
    table, no data read): a missing, truncated or overwritten file is one TableError line."""
    if not actions:
        return
    fs, base = catalog.filesystem(path)
    base = base.rstrip("/")
    if fs.type_name == "local" or len(actions) <= LIST_ABOVE:  # a stat (HEAD) per file
        rels = [unquote(a["path"]) for a in actions]
        infos = zip(rels, fs.get_file_info([f"{base}/{rel}" for rel in rels]))
    else:  # one listing of the table (LIST requests of 1000 objects) beats a HEAD per file
        infos = ((i.path[len(base) + 1:], i)
                 for i in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)))
    found = {unquote(rel): i.size for rel, i in infos if i.type == pafs.FileType.File}
    for a in actions:
        rel = unquote(a["path"])
        where = _partition_of(a)
        if rel not in found:
            raise TableError(f"table {path}: {where}file {rel} is missing from storage; the Delta log (version "
                             f"{version_}) expects it with {a['size_bytes']} bytes")
        if found[rel] != a["size_bytes"]:
            raise TableError(f"table {path}: {where}file {rel} has {found[rel]} bytes; the Delta log (version "
                             f"{version_}) expects {a['size_bytes']}: the file is damaged (truncated or overwritten)")


def _partition_of(action: dict) -> str:
    parts = [f"{k[len('partition.'):]}={_pv(v)}" for k, v in action.items() if k.startswith("partition.")]
    return f"partition {', '.join(parts)}: " if parts else ""


# --------------------------------------------------------------------------- writing


# Delta's default `delta.dataSkippingNumIndexedCols`: statistics for the first 32 data columns.
STATS_COLUMNS = 32
# Delta truncates string statistics; a longer max cannot be truncated (it would be too small).
STATS_STRING_PREFIX = 32


class _FileStats:
    """Per-file statistics in Delta's format ({"numRecords", "minValues", "maxValues",
    "nullCount"}), accumulated batch by batch while the file is written."""

    def __init__(self, schema: pa.Schema):
        self.fields = [f for f in schema][:STATS_COLUMNS]
        self.rows = 0
        self.nulls = {f.name: 0 for f in self.fields}
        self.min: dict[str, Any] = {}
        self.max: dict[str, Any] = {}
        self.unbounded: set[str] = set()  # columns whose min/max cannot be stated (NaN, long strings)

    def add(self, table: pa.Table) -> None:
        import pyarrow.compute as pc

        self.rows += table.num_rows
        for f in self.fields:
            col = table[f.name]
            self.nulls[f.name] += col.null_count
            if not _has_bounds(f.type) or f.name in self.unbounded or col.null_count == len(col):
                continue
            if pa.types.is_floating(f.type) and pc.any(pc.is_nan(col)).as_py():
                self.unbounded.add(f.name)  # Delta readers disagree on NaN ordering: state nothing
                continue
            lo, hi = (v.as_py() for v in pc.min_max(col).values())
            if f.name not in self.min or lo < self.min[f.name]:
                self.min[f.name] = lo
            if f.name not in self.max or hi > self.max[f.name]:
                self.max[f.name] = hi

    def json(self) -> str:
        lows, highs = {}, {}
        for f in self.fields:
            if f.name in self.unbounded or f.name not in self.min:
                continue
            lo, hi = _stat_value(f.type, self.min[f.name], up=False), _stat_value(f.type, self.max[f.name], up=True)
            if lo is not None:
                lows[f.name] = lo
            if hi is not None:
                highs[f.name] = hi
        return json.dumps({"numRecords": self.rows, "minValues": lows, "maxValues": highs, "nullCount": self.nulls},
                          allow_nan=False)


def _has_bounds(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t) or pa.types.is_date(t) or pa.types.is_timestamp(t))


def _stat_value(t: pa.DataType, value: Any, *, up: bool) -> Any:
    """A min (up=False) or max (up=True) as Delta's stats JSON holds it, rounded outwards
    where Delta's format is coarser than the data; None when it cannot be stated."""
    if pa.types.is_timestamp(t):  # milliseconds, ISO 8601; UTC with a Z for timestamp (tz)
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if up and floor != value:
            floor += dt.timedelta(milliseconds=1)
        return floor.isoformat(timespec="milliseconds") + ("Z" if t.tz is not None else "")
    if pa.types.is_date(t):
        return value.isoformat()
    if isinstance(value, str) and len(value) > STATS_STRING_PREFIX:
        return None if up else value[:STATS_STRING_PREFIX]  # a prefix is still a lower bound
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _file_writer(table_path: str, data_schema: pa.Schema, partition_by: list[str]):
    """The function executors run: write each batch's rows into Parquet files, one per
    partition value per task, through pyarrow's filesystem for the table's URI (local, S3,
    ADLS, GCS, ...), and yield one row per file with its name, real size and statistics."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = catalog.native(table_path)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fs, base = catalog.filesystem(root)  # built on the executor, from its environment
        base = base.rstrip("/")
        local = fs.type_name == "local"
        files: dict[tuple, list] = {}  # partition key -> [writer, sink, relative path, stats]
        sizes: dict[tuple, int] = {}
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
                    if kt not in files:
                        folder = "/".join(
                            f"{c}={'__HIVE_DEFAULT_PARTITION__' if v is None else v}" for c, v in zip(partition_by, kt)
                        )
                        rel = (folder + "/" if folder else "") + f"part-{uuid.uuid4()}-c000.snappy.parquet"
                        full = f"{base}/{rel}"
                        if local:  # object stores have no folders to make
                            fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
                        sink = fs.open_output_stream(full)
                        files[kt] = [pq.ParquetWriter(sink, data_schema, compression="snappy"), sink, rel,
                                     _FileStats(data_schema)]
                    writer, _, _, stats = files[kt]
                    writer.write_table(part)
                    stats.add(part)
        finally:
            for kt, (writer, sink, _, _) in files.items():
                writer.close()
                sizes[kt] = sink.tell()  # the bytes written: the object's real size
                sink.close()
        out = {"path": [], "size": [], "partition_values": [], "num_records": [], "stats": []}
        for kt, (_, _, rel, stats) in files.items():
            out["path"].append(rel)
            out["size"].append(sizes[kt])
            out["partition_values"].append(json.dumps(dict(zip(partition_by, kt))))
            out["num_records"].append(stats.rows)
            out["stats"].append(stats.json())
        yield pa.RecordBatch.from_pydict(
            out,
            schema=pa.schema([("path", pa.string()), ("size", pa.int64()), ("partition_values", pa.string()),
                              ("num_records", pa.int64()), ("stats", pa.string())]),
        )

    return write


def _commit(path: str, schema: pa.Schema, actions: list, mode: str, partition_by: list[str],
            replace: list[str] | None, column: str) -> int:
    """Commit files written elsewhere in one Delta transaction; return the new version.

    Replacing partitions commits the new files' AddActions and RemoveActions for every file
    of the replaced partitions together (delta-rs's current API for rewrites; the older
    `partition_filters` overwrite is not used)."""
    from deltalake import Schema as DeltaSchema
    from deltalake.transaction import CommitProperties, create_table_with_add_actions

    delta_schema = DeltaSchema.from_arrow(schema)
    if not exists(path):
        create_table_with_add_actions(catalog.native(path), delta_schema, actions, mode="append",
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
    if replace is None:
        table.create_write_transaction(actions, mode=mode, schema=delta_schema, partition_by=partition_by or None)
        return _delta_table(path).version()
    removes = _remove_actions(table, partition_by, column, set(replace))
    if not removes and not actions:  # nothing to replace and nothing to add: no commit
        return table.version()
    where = f"{column} IN ({', '.join(repr(v) for v in replace)})"
    table.create_write_transaction(actions + removes, mode="append", schema=delta_schema,
                                   partition_by=partition_by or None,
                                   commit_properties=CommitProperties(custom_metadata={"replaceWhere": where}))
    return _delta_table(path).version()


def _remove_actions(table, partition_by: list[str], column: str, values: set[str]) -> list:
    """RemoveActions for every live file whose `column` partition value is in `values`."""
    from deltalake.transaction import RemoveAction

    now = int(time.time() * 1000)
    return [
        RemoveAction(path=a["path"], data_change=True, deletion_timestamp=now, size=a["size_bytes"],
                     partition_values={c: _pv(a[f"partition.{c}"]) for c in partition_by})
        for a in _add_actions_of(table)
        if _pv(a[f"partition.{column}"]) in values
    ]


def _add_actions_of(table) -> list[dict]:
    return pa.table(table.get_add_actions(flatten=True)).to_pylist()


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
    """Delete files that were written but not committed (best effort: they are invisible)."""
    fs, base = catalog.filesystem(path)
    for f in files:
        try:
            fs.delete_file(f"{base.rstrip('/')}/{f['path']}")
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
        # The engine's own tables gain columns between releases: appends merge the schema (old
        # rows read the new columns as null), so an existing lakehouse keeps working.
        write_deltalake(catalog.native(path), rows, mode=mode, partition_by=list(partition_by) or None,
                        predicate=predicate, schema_mode="merge" if mode == "append" else None)
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
        (_delta_table(path).merge(rows, predicate, source_alias="s", target_alias="t", merge_schema=True)
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
    table = _delta_table(path, version_)
    actions = _add_actions_of(table)
    _check_files(path, table.version(), actions)
    try:
        return pa.table(table.to_pyarrow_dataset().to_table())
    except (OSError, pa.ArrowException) as e:
        raise TableError(_unreadable(path, table.version(), actions, e)) from e


def _unreadable(path: str, version_: int, actions: list[dict], error: Exception) -> str:
    """One line naming the table, and the partition and file where the error names one."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    bad = next((a for a in actions if unquote(a["path"]) in unquote(str(error)) or a["path"] in str(error)), None)
    where = f"{_partition_of(bad)}file {unquote(bad['path'])} " if bad else "a data file "
    return (f"table {path}: {where}of version {version_} is not readable Parquet (expected a Parquet file with "
            f"the table's schema): {message}")


def read_failure(path: str, error: BaseException) -> TableError | None:
    """A Spark action's failure to read one of `path`'s Parquet files (corrupt with the size
    the log recorded, so `read` could not see it) as one TableError line naming the table,
    partition and file; None when `error` is something else. Call it where an action over
    `read(spark, path)` fails: `raise tables.read_failure(path, e) or e from e`."""
    text = str(error)
    base = catalog.native(path).rstrip("/")
    local = catalog.local_path(path)
    for match in re.finditer(r"(\S+?\.parquet)", text):
        found = match.group(1).strip("'\"[]().,")
        for prefix in filter(None, (base, local and os.path.abspath(local), path.rstrip("/"))):
            at = found.find(prefix.rstrip("/") + "/")
            if at >= 0:
                rel = unquote(found[at + len(prefix.rstrip("/")) + 1:])
                parts = [p for p in rel.split("/")[:-1] if "=" in p]
                where = f"partition {', '.join(parts)}: " if parts else ""
                cause = next((line.strip() for line in text.splitlines()
                              if "magic bytes" in line or "footer" in line.lower()), "")
                return TableError(f"table {path}: {where}file {rel} is not readable Parquet (expected a Parquet "
                                  f"file with the table's schema){': ' + cause if cause else ''}")
    return None


# --------------------------------------------------------------------------- maintenance
#
# The small tables the engine appends to every night (catalog.SMALL_TABLES) would otherwise
# read a growing log (one JSON commit per write) and a growing number of small files.


@dataclass(frozen=True)
class Maintenance:
    """What `maintain` did to one table."""

    path: str
    version: int | None
    compacted: int = 0  # files rewritten into fewer
    checkpoint: bool = False
    vacuumed: int = 0  # removed files deleted from storage


def maintain(path: str, *, checkpoint_every: int = 10, max_files: int = 8) -> Maintenance:
    """Keep a small table cheap to read, with Delta's own retention rules (time travel to a
    version keeps working while its log entries and files are within them):

    * compaction (delta-rs `optimize.compact`) when a partition holds more than `max_files`
      files: the old files are only marked removed, so older versions still read them;
    * a checkpoint when `checkpoint_every` or more commits followed the last one, so a reader
      replays at most that many JSON commits;
    * `cleanup_metadata`: log files older than the table's `delta.logRetentionDuration` (30
      days by default) and before the latest checkpoint go;
    * vacuum: data files removed longer ago than the table's
      `delta.deletedFileRetentionDuration` (7 days by default) go; the same duration after
      which checkpoints stop carrying their tombstones, so no removed file is ever forgotten
      before it is deleted. To keep older versions readable, raise that table property.
    Nothing here touches the engine's big tables (features, training_sets), whose versions
    the registry records as lineage.
    """
    if not exists(path):
        return Maintenance(path, None)
    table = _delta_table(path)
    per_partition: dict[str, int] = {}
    for a in _add_actions_of(table):
        key = _partition_of(a)
        per_partition[key] = per_partition.get(key, 0) + 1
    compacted = 0
    try:
        if per_partition and max(per_partition.values()) > max_files:
            compacted = int(table.optimize.compact().get("numFilesRemoved", 0))
            table = _delta_table(path)
        last = _last_checkpoint(path)
        checkpoint = table.version() - (-1 if last is None else last) >= checkpoint_every
        if checkpoint:
            table.create_checkpoint()
        table.cleanup_metadata()
        vacuumed = 0
        if table.vacuum(dry_run=True):  # vacuum commits only when it deletes
            vacuumed = len(table.vacuum(dry_run=False))
    except Exception as e:
        raise TableError(f"table {path}: maintenance failed (the table is unchanged or compacted, "
                         f"never half-written): {e}") from e
    return Maintenance(path, _delta_table(path).version() if vacuumed else table.version(), compacted,
                       checkpoint, vacuumed)


def maintain_small_tables(cat: catalog.Catalog, spark=None, **options: Any) -> list[Maintenance]:
    """Run `maintain` over every table the engine appends to nightly (once per night, after
    the night's commits). With delta-spark (Databricks), Delta itself checkpoints and the
    platform's OPTIMIZE/VACUUM own the tables: nothing is done here."""
    if spark is not None and has_delta_extension(spark):
        return []
    return [maintain(cat.path(spec), **options) for spec in catalog.SMALL_TABLES]


def _last_checkpoint(path: str) -> int | None:
    fs, base = catalog.filesystem(path)
    try:
        with fs.open_input_stream(f"{base.rstrip('/')}/_delta_log/_last_checkpoint") as f:
            return int(json.loads(f.read())["version"])
    except (FileNotFoundError, OSError, ValueError, KeyError):
        return None
