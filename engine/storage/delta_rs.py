"""The delta-rs backend (`deltalake`, no JVM needed for the log).

Executors write Parquet files with pyarrow (`mapInArrow`), return only file names and
statistics, and the driver commits them in one Delta transaction. A task retry writes new
files; only the files returned by successful attempts are committed, so a crash never
exposes a half-written partition. Reads ask delta-rs for the files of a version and read
them with Spark's Parquet reader (or, for small tables on the driver, with pyarrow).
"""
from __future__ import annotations

import json
import math
import time
import uuid
import datetime as dt
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs

from engine import catalog
from engine.errors import TableError
from engine.storage.base import Maintenance
from engine.storage.schemas import (PartitionValues, SchemaMode, arrow_to_spark, describe, evolve, nullable, pv,
                                    spark_to_arrow)

FILE_SCHEMA = "path string, size long, partition_values string, num_records long, stats string"
_pv = pv


class DeltaRs:
    """Tables through delta-rs; `spark` is needed only to read into and write from DataFrames."""

    name = "delta-rs"

    def __init__(self, spark=None):
        self.spark = spark

    # ------------------------------------------------------------------ reading

    def exists(self, path: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(catalog.native(path))

    def version(self, path: str) -> int | None:
        return _delta_table(path).version() if self.exists(path) else None

    def schema(self, path: str, version: int | None = None) -> pa.Schema:
        return pa.schema(_delta_table(path, version).schema().to_arrow())

    def partition_files(self, path: str, version: int | None = None, column: str = "ds") -> dict[Any, list[str]]:
        files: dict[Any, list[str]] = {}
        for a in _add_actions_of(_delta_table(path, version)):
            files.setdefault(a[f"partition.{column}"], []).append(unquote(a["path"]))
        return files

    def num_records(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
                    column: str = "ds") -> int:
        actions = _add_actions_of(_delta_table(path, version))
        if partitions is not None:
            wanted = {pv(v) for v in partitions}
            actions = [a for a in actions if pv(a[f"partition.{column}"]) in wanted]
        return int(sum(a["num_records"] or 0 for a in actions))

    def read(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
             column: str = "ds"):
        spark = self.spark
        if not self.exists(path):
            raise TableError(f"table {path}: does not exist")
        table = _delta_table(path, version)
        schema = pa.schema(table.schema().to_arrow())
        spark_schema = arrow_to_spark(schema)
        actions = _add_actions_of(table)
        if partitions is not None:
            wanted = {pv(v) for v in partitions}
            actions = [a for a in actions if pv(a.get(f"partition.{column}")) in wanted]
        _check_files(path, table.version(), actions)
        if not actions:
            return spark.createDataFrame([], spark_schema)
        base = path.rstrip("/")
        uris = [f"{base}/{a['path']}" for a in actions]
        df = spark.read.schema(spark_schema).option("basePath", base).parquet(*uris)
        return df.select(*[f.name for f in schema])

    def read_rows(self, path: str, version: int | None = None) -> pa.Table | None:
        if not self.exists(path):
            return None
        table = _delta_table(path, version)
        actions = _add_actions_of(table)
        _check_files(path, table.version(), actions)
        try:
            return pa.table(table.to_pyarrow_dataset().to_table())
        except (OSError, pa.ArrowException) as e:
            raise TableError(_unreadable(path, table.version(), actions, e)) from e

    # ------------------------------------------------------------------ writing

    def write(self, df, path: str, mode: str, partition_by: list[str], replace: list[str] | None, column: str,
              schema_mode: SchemaMode) -> int:
        full_schema = nullable(spark_to_arrow(df.schema))
        data_schema = pa.schema([f for f in full_schema if f.name not in partition_by])
        # Delta lays out partitioned tables with partition columns last.
        table_schema = pa.schema(list(data_schema) + [full_schema.field(c) for c in partition_by])
        existing = self.schema(path) if self.exists(path) else None
        target = evolve(path, existing, table_schema, mode, replace, schema_mode)  # refuses before any file
        rows = df.mapInArrow(_file_writer(path, data_schema, partition_by), FILE_SCHEMA).collect()
        files = [r.asDict() for r in rows if r["num_records"] > 0]
        actions = _add_actions(files)
        if replace is not None:
            stray = {json.loads(f["partition_values"]).get(column) for f in files} - set(replace)
            if stray:
                _remove_files(path, files)
                raise TableError(
                    f"table {path}: the write has rows for {column}={sorted(stray)} outside the partitions "
                    f"it replaces ({replace}); nothing was committed"
                )
        try:
            return _commit(path, target, actions, mode, partition_by, replace, column)
        except Exception as e:
            _remove_files(path, files)  # uncommitted files are invisible; tidy them anyway
            if isinstance(e, TableError):
                raise
            raise TableError(f"table {path}: commit failed, nothing was changed: {e}") from e

    def write_rows(self, path: str, rows: pa.Table, mode: str, partition_by: list[str], replace: list[str] | None,
                   column: str, schema_mode: SchemaMode) -> int:
        from deltalake import write_deltalake

        predicate = None
        if replace is not None:
            values = ", ".join(f"'{v}'" for v in replace)
            predicate = f"{column} IN ({values})" if values else "false"
        try:
            write_deltalake(catalog.native(path), rows, mode=mode, partition_by=partition_by or None,
                            predicate=predicate, schema_mode=schema_mode)
        except Exception as e:
            raise TableError(f"table {path}: write failed, nothing was changed: {e}") from e
        return _delta_table(path).version()

    def upsert_rows(self, path: str, rows: pa.Table, keys: Sequence[str]) -> int:
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        try:
            (_delta_table(path).merge(rows, predicate, source_alias="s", target_alias="t", merge_schema=True)
             .when_matched_update_all().when_not_matched_insert_all().execute())
        except Exception as e:
            raise TableError(f"table {path}: upsert failed, nothing was changed: {e}") from e
        return _delta_table(path).version()

    def delete_rows(self, path: str, keys: pa.Table) -> int:
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys.column_names)
        try:
            metrics = (_delta_table(path).merge(keys, predicate, source_alias="s", target_alias="t")
                       .when_matched_delete().execute())
        except Exception as e:
            raise TableError(f"table {path}: delete failed, nothing was changed: {e}") from e
        return int(metrics.get("num_target_rows_deleted", 0) or 0)

    # ------------------------------------------------------------------ maintenance

    def maintain(self, path: str, checkpoint_every: int, max_files: int) -> Maintenance:
        if not self.exists(path):
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


# --------------------------------------------------------------------------- the log


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
    `schema` is the table's schema after the write (`schemas.evolve`).

    Replacing partitions commits the new files' AddActions and RemoveActions for every file
    of the replaced partitions together. When the schema changes, the commit also carries
    the new metaData action: delta-rs writes one for an overwrite, so a partition replace
    (or, on a partitioned table, an append: no partition matches an empty filter) becomes
    an overwrite of exactly those partitions. An append to an unpartitioned table that adds
    columns commits the new columns first (`alter.add_columns`), then the files."""
    from deltalake import Field
    from deltalake import Schema as DeltaSchema
    from deltalake.transaction import CommitProperties, create_table_with_add_actions

    delta_schema = DeltaSchema.from_arrow(schema)
    if not DeltaRs().exists(path):
        create_table_with_add_actions(catalog.native(path), delta_schema, actions, mode="append",
                                      partition_by=partition_by or None)
        return _delta_table(path).version()
    table = _delta_table(path)
    existing = nullable(pa.schema(table.schema().to_arrow()))
    same = {f.name: f.type for f in existing} == {f.name: f.type for f in schema}
    where = None if replace is None else f"{column} IN ({', '.join(repr(v) for v in replace)})"
    properties = None if where is None else CommitProperties(custom_metadata={"replaceWhere": where})
    if mode == "overwrite" and replace is None:
        table.create_write_transaction(actions, mode="overwrite", schema=delta_schema,
                                       partition_by=partition_by or None)
        return _delta_table(path).version()
    if not same:
        if partition_by:
            values = replace if replace is not None else []
            table.create_write_transaction(actions, mode="overwrite", schema=delta_schema,
                                           partition_by=partition_by,
                                           partition_filters=[(column if replace is not None else partition_by[0],
                                                               "in", values)],
                                           commit_properties=properties)
            return _delta_table(path).version()
        have = {f.name for f in existing}
        table.alter.add_columns([Field.from_arrow(f) for f in schema if f.name not in have])
        table = _delta_table(path)
    if replace is None:
        table.create_write_transaction(actions, mode="append", schema=delta_schema, partition_by=partition_by or None)
        return _delta_table(path).version()
    removes = _remove_actions(table, partition_by, column, set(replace))
    if not removes and not actions:  # nothing to replace and nothing to add: no commit
        return table.version()
    table.create_write_transaction(actions + removes, mode="append", schema=delta_schema,
                                   partition_by=partition_by or None, commit_properties=properties)
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


def _unreadable(path: str, version_: int, actions: list[dict], error: Exception) -> str:
    """One line naming the table, and the partition and file where the error names one."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    bad = next((a for a in actions if unquote(a["path"]) in unquote(str(error)) or a["path"] in str(error)), None)
    where = f"{_partition_of(bad)}file {unquote(bad['path'])} " if bad else "a data file "
    return (f"table {path}: {where}of version {version_} is not readable Parquet (expected a Parquet file with "
            f"the table's schema): {message}")


def _last_checkpoint(path: str) -> int | None:
    fs, base = catalog.filesystem(path)
    try:
        with fs.open_input_stream(f"{base.rstrip('/')}/_delta_log/_last_checkpoint") as f:
            return int(json.loads(f.read())["version"])
    except (FileNotFoundError, OSError, ValueError, KeyError):
        return None
