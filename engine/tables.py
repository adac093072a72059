"""The Delta table API every stage calls; which Delta backend serves it is the session's
(engine.storage: delta-spark with Delta Lake's jars, delta-rs without; never decided here).

Both backends write the standard Delta protocol with the same table features (reader 1,
writer 2, no deletion vectors, no column mapping), so a lakehouse moves between them.
Partition column values are dates (`ds`) or strings (`model_id`). A call without a
SparkSession (spark=None: `status`, `report`, maintenance from a plain process) reads and
writes small tables with delta-rs, no JVM.

Schema evolution: `write`/`write_rows` take `schema_mode` (see storage.schemas):
None (same columns and types; a full overwrite re-creates the table), "merge" (add new
columns, keep the ones the write lacks), "overwrite" (the write's schema replaces the
table's; full overwrites only).
"""
from __future__ import annotations

import os
import re
from typing import Any, Sequence
from urllib.parse import unquote

import pyarrow as pa

from engine import catalog, storage
from engine.errors import TableError
from engine.storage.base import Maintenance
from engine.storage.delta_rs import _delta_table  # noqa: F401  (benchmarks/delta_log.py reads the log directly)
from engine.storage.schemas import PartitionValues, SchemaMode, check_mode, nullable, pv

__all__ = ["Maintenance", "exists", "version", "arrow_schema", "partition_values", "partition_files", "num_records",
           "read", "write", "write_rows", "upsert_rows", "delete_rows", "read_rows", "read_failure", "maintain",
           "maintain_small_tables"]


def backend_name(spark) -> str:
    """The backend this session's tables go through ("delta-spark" | "delta-rs")."""
    return storage.backend_name(spark)


# --------------------------------------------------------------------------- reading


def exists(path: str, spark=None) -> bool:
    return storage.backend(spark).exists(path)


def version(path: str, spark=None) -> int | None:
    """The table's latest version, or None when there is no table."""
    return storage.backend(spark).version(path)


def arrow_schema(path: str, version_: int | None = None, spark=None) -> pa.Schema:
    return storage.backend(spark).schema(path, version_)


def partition_files(path: str, version_: int | None = None, column: str = "ds", spark=None) -> dict[Any, list[str]]:
    """The live data files (relative paths, from the log: no data read) per value of `column`."""
    return storage.backend(spark).partition_files(path, version_, column)


def partition_values(path: str, column: str = "ds", version_: int | None = None, spark=None) -> list[Any]:
    """The distinct values of a partition column (from the log, no data read)."""
    backend = storage.backend(spark)
    if not backend.exists(path):
        return []
    return sorted(backend.partition_files(path, version_, column))


def num_records(path: str, version_: int | None = None, partitions: PartitionValues | None = None,
                column: str = "ds", spark=None) -> int:
    """Rows of a table (or of some partitions) from the log's file statistics."""
    return storage.backend(spark).num_records(path, version_, partitions, column)


def read(spark, path: str, version: int | None = None, partitions: PartitionValues | None = None,
         column: str = "ds"):
    """Read a table (optionally as of `version`, optionally only some partitions) as a DataFrame."""
    return storage.backend(spark).read(path, version, partitions, column)


def read_rows(path: str, version_: int | None = None, spark=None) -> pa.Table | None:
    """A small table (run log, registry, partition statuses) on the driver; None if absent."""
    return storage.backend(spark).read_rows(path, version_)


# --------------------------------------------------------------------------- writing


def _replace(replace_partitions: PartitionValues | None) -> list[str] | None:
    return None if replace_partitions is None else sorted({pv(v) for v in replace_partitions})


def write(spark, df, path: str, *, mode: str = "append", partition_by: Sequence[str] = (),
          replace_partitions: PartitionValues | None = None, column: str = "ds",
          schema_mode: SchemaMode = None) -> int:
    """Write a DataFrame as one atomic Delta commit and return the new table version.

    mode="append" adds rows; mode="overwrite" replaces the whole table, or, with
    `replace_partitions`, exactly those values of `column` (others stay untouched).
    `schema_mode` lets the write add or drop columns (module docstring). Older versions stay
    readable (time travel).
    """
    partition_by = list(partition_by)
    check_mode(path, mode, replace_partitions, column, partition_by, schema_mode)
    return storage.backend(spark).write(df, path, mode, partition_by, _replace(replace_partitions), column,
                                        schema_mode)


def write_rows(spark, path: str, rows: pa.Table, *, mode: str = "append", partition_by: Sequence[str] = (),
               replace_partitions: PartitionValues | None = None, column: str = "ds",
               schema_mode: SchemaMode | str = "default") -> int:
    """Write rows that were made on the driver (run log, registry, verdicts): one commit.

    By default appends merge the schema: the engine's own tables gain columns between
    releases (old rows read the new columns as null), so an existing lakehouse keeps working."""
    partition_by = list(partition_by)
    if schema_mode == "default":
        schema_mode = "merge" if mode == "append" else None
    check_mode(path, mode, replace_partitions, column, partition_by, schema_mode)
    rows = rows.cast(nullable(rows.schema))
    return storage.backend(spark).write_rows(path, rows, mode, partition_by, _replace(replace_partitions), column,
                                             schema_mode)


def upsert_rows(spark, path: str, rows: pa.Table, keys: Sequence[str], partition_by: Sequence[str] = ()) -> int:
    """Insert rows, replacing those with the same `keys` (one commit; new columns are merged)."""
    rows = rows.cast(nullable(rows.schema))
    backend = storage.backend(spark)
    if not backend.exists(path):
        return write_rows(spark, path, rows, partition_by=partition_by)
    return backend.upsert_rows(path, rows, keys)


def delete_rows(spark, path: str, keys: pa.Table) -> int:
    """Delete the rows equal on every column of `keys` to one of its rows, in one commit;
    returns how many were deleted (0 when there is no table)."""
    backend = storage.backend(spark)
    if keys.num_rows == 0 or not backend.exists(path):
        return 0
    return backend.delete_rows(path, keys)


# --------------------------------------------------------------------------- errors


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


def maintain(path: str, *, checkpoint_every: int = 10, max_files: int = 8, spark=None) -> Maintenance:
    """Keep a small table cheap to read, with Delta's own retention rules (time travel to a
    version keeps working while its log entries and files are within them):

    * compaction when a partition holds more than `max_files` files (delta-rs
      `optimize.compact`, delta-spark `OPTIMIZE`): the old files are only marked removed, so
      older versions still read them;
    * a checkpoint when `checkpoint_every` or more commits followed the last one (delta-rs;
      delta-spark checkpoints every `delta.checkpointInterval` commits itself), so a reader
      replays at most that many JSON commits; delta-rs also drops log files older than
      `delta.logRetentionDuration` (30 days) before the latest checkpoint;
    * vacuum: data files removed longer ago than the table's
      `delta.deletedFileRetentionDuration` (7 days by default) go; the same duration after
      which checkpoints stop carrying their tombstones, so no removed file is ever forgotten
      before it is deleted. To keep older versions readable, raise that table property.
    Nothing here touches the engine's big tables (features, training_sets), whose versions
    the registry records as lineage.
    """
    return storage.backend(spark).maintain(path, checkpoint_every, max_files)


def maintain_small_tables(cat: catalog.Catalog, spark=None, **options: Any) -> list[Maintenance]:
    """Run `maintain` over every table the engine appends to nightly (once per night, after
    the night's commits), with the session's backend."""
    return [maintain(cat.path(spec), spark=spark, **options) for spec in catalog.SMALL_TABLES]
