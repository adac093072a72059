"""The delta-spark backend: Delta Lake's own Spark writer and reader (what Spark and
Databricks users run). Partition rewrites are `replaceWhere` overwrites, upserts `MERGE`,
old versions `versionAsOf` reads; Delta checkpoints the log itself every
`delta.checkpointInterval` (10) commits. Everything goes through Spark, so it reads and
writes whatever Hadoop filesystem the session has (s3a://, abfss://, gs://, dbfs:/).

Tables it creates have deletion vectors off (`delta.enableDeletionVectors=false`): delta-rs
1.6 cannot read them through PyArrow, and the engine keeps every table readable by both."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import pyarrow as pa

from engine.errors import TableError
from engine.storage.base import Maintenance
from engine.storage.schemas import PartitionValues, SchemaMode, evolve, nullable, spark_to_arrow, typed_pv

# Table properties of every table this backend creates (what delta-rs reads).
CREATE_PROPERTIES = {"delta.enableDeletionVectors": "false"}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Snapshot file lists and schemas by (table, version, commit file's modification time): a
# version of a Delta table never changes, so `DataFrame.inputFiles` (a Spark job, ~0.3 s) runs
# once per version; the commit's mtime tells a table re-created at the same path apart.
_FILES: "OrderedDict[tuple, tuple[list[str], pa.Schema]]" = OrderedDict()
_FILES_KEPT = 64


def _quote(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


class DeltaSpark:
    name = "delta-spark"

    def __init__(self, spark):
        self.spark = spark

    # ------------------------------------------------------------------ reading

    def exists(self, path: str) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, path))

    def version(self, path: str) -> int | None:
        from delta.tables import DeltaTable

        if not self.exists(path):
            return None
        try:
            return int(DeltaTable.forPath(self.spark, path).history(1).collect()[0]["version"])
        except Exception as e:
            raise TableError(f"table {path}: cannot load the latest version from its Delta log (_delta_log/) "
                             f"with delta-spark: {_first_line(e)}") from e

    def _commits(self, path: str) -> dict[int, int]:
        """Commit version -> modification time (ms) of its `_delta_log/<version>.json`, from one
        listing of the log folder (no log replay: ~3 ms where `history(1)` takes ~200 ms)."""
        jvm = self.spark._jvm
        log = jvm.org.apache.hadoop.fs.Path(path.rstrip("/") + "/_delta_log")
        fs = log.getFileSystem(self.spark._jsc.hadoopConfiguration())
        if not fs.exists(log):
            return {}
        out = {}
        for status in fs.listStatus(log):
            name = status.getPath().getName()
            if name.endswith(".json") and len(name) == 25 and name[:20].isdigit():
                out[int(name[:20])] = int(status.getModificationTime())
        return out

    def _latest(self, path: str) -> int:
        """The version this process just committed (the lakehouse lock keeps writers out)."""
        return max(self._commits(path))

    def _load(self, path: str, version: int | None = None):
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        try:
            return reader.load(path)
        except Exception as e:
            if not self.exists(path):
                raise TableError(f"table {path}: does not exist") from e
            at = f"version {version}" if version is not None else "the latest version"
            raise TableError(f"table {path}: cannot load {at} from its Delta log (_delta_log/) with delta-spark: "
                             f"{_first_line(e)}") from e

    def schema(self, path: str, version: int | None = None) -> pa.Schema:
        return nullable(spark_to_arrow(self._load(path, version).schema))

    def partition_files(self, path: str, version: int | None = None, column: str = "ds") -> dict[Any, list[str]]:
        """From the snapshot's file list (no data read); partition values from the hive-style
        folders Delta writes (no column mapping here)."""
        names, schema = self._snapshot(path, version)
        type_ = schema.field(column).type
        files: dict[Any, list[str]] = {}
        for rel in names:
            folders = dict(p.split("=", 1) for p in rel.split("/")[:-1] if "=" in p)
            files.setdefault(typed_pv(folders.get(column), type_), []).append(rel)
        return files

    def _snapshot(self, path: str, version: int | None = None) -> tuple[tuple[str, ...], pa.Schema]:
        """The live data files of a version (relative paths) and its schema:
        `DataFrame.inputFiles` is a Spark job, run once per table version."""
        commits = self._commits(path)
        at = version if version is not None else max(commits, default=None)
        key = (path, at, commits.get(at))
        if at is not None and key in _FILES:
            _FILES.move_to_end(key)
            return _FILES[key]
        df = self._load(path, version)
        base = self._qualified(path)
        found = (tuple(uri[len(base) + 1:] if uri.startswith(base + "/") else uri for uri in df.inputFiles()),
                 spark_to_arrow(df.schema))  # a tuple: the cached list cannot be changed by a caller
        if at is not None:
            _FILES[key] = found
            while len(_FILES) > _FILES_KEPT:
                _FILES.popitem(last=False)
        return found

    def _qualified(self, path: str) -> str:
        jvm = self.spark._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        fs = hpath.getFileSystem(self.spark._jsc.hadoopConfiguration())
        return str(fs.makeQualified(hpath).toString()).rstrip("/")

    def num_records(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
                    column: str = "ds") -> int:
        return int(self.read(path, version, partitions, column).count())  # Delta answers from file stats

    def read(self, path: str, version: int | None = None, partitions: PartitionValues | None = None,
             column: str = "ds"):
        df = self._load(path, version)
        if partitions is not None:
            df = df.where(df[column].isin(list(partitions)))
        return df

    def read_rows(self, path: str, version: int | None = None) -> pa.Table | None:
        if not self.exists(path):
            return None
        return self._load(path, version).toArrow()

    # ------------------------------------------------------------------ writing

    def write(self, df, path: str, mode: str, partition_by: list[str], replace: list[str] | None, column: str,
              schema_mode: SchemaMode) -> int:
        exists = self.exists(path)
        if exists:
            evolve(path, self.schema(path), spark_to_arrow(df.schema), mode, replace, schema_mode)
        writer = df.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if not exists:
            for key, value in CREATE_PROPERTIES.items():
                writer = writer.option(key, value)  # options named delta.* become table properties on create
        if replace is not None:
            values = ", ".join("'" + v.replace("'", "''") + "'" for v in replace) or "NULL"
            writer = writer.option("replaceWhere", f"{column} IN ({values})")
        if schema_mode == "merge":
            writer = writer.option("mergeSchema", "true")
        elif mode == "overwrite" and replace is None:
            writer = writer.option("overwriteSchema", "true")  # a full overwrite re-creates the table
        try:
            writer.save(path)
        except Exception as e:
            text = str(e)
            if "DELTA_REPLACE_WHERE_MISMATCH" in text:
                raise TableError(f"table {path}: the write has rows for {column} outside the partitions it replaces "
                                 f"({replace}); nothing was committed") from e
            if "AnalysisException" in type(e).__name__ or "DELTA_" in text:
                raise TableError(f"table {path}: write failed, nothing was changed: {_first_line(e)}") from e
            raise
        return self._latest(path)

    def write_rows(self, path: str, rows: pa.Table, mode: str, partition_by: list[str], replace: list[str] | None,
                   column: str, schema_mode: SchemaMode) -> int:
        return self.write(self.spark.createDataFrame(rows), path, mode, partition_by, replace, column, schema_mode)

    def upsert_rows(self, path: str, rows: pa.Table, keys: Sequence[str]) -> int:
        from delta.tables import DeltaTable

        predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        source = self.spark.createDataFrame(rows)
        try:
            (DeltaTable.forPath(self.spark, path).alias("t").merge(source.alias("s"), predicate)
             .withSchemaEvolution().whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        except Exception as e:
            raise TableError(f"table {path}: upsert failed, nothing was changed: {_first_line(e)}") from e
        return self._latest(path)

    def delete_rows(self, path: str, keys: pa.Table) -> int:
        from delta.tables import DeltaTable

        predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys.column_names)
        try:
            result = (DeltaTable.forPath(self.spark, path).alias("t")
                      .merge(self.spark.createDataFrame(keys).alias("s"), predicate).whenMatchedDelete().execute())
        except Exception as e:
            raise TableError(f"table {path}: delete failed, nothing was changed: {_first_line(e)}") from e
        return int(result.collect()[0]["num_deleted_rows"])

    # ------------------------------------------------------------------ maintenance

    def maintain(self, path: str, checkpoint_every: int, max_files: int) -> Maintenance:
        """OPTIMIZE when a partition holds more than `max_files` files, then VACUUM with the
        table's own retention (`delta.deletedFileRetentionDuration`, 7 days by default) when
        the table's folder holds a data file its snapshot does not, older than that retention
        (a listing: most nights have none, and a VACUUM costs seconds). Checkpoints are Delta's own (every
        `delta.checkpointInterval` commits), so `checkpoint_every` does not apply."""
        if not self.exists(path):
            return Maintenance(path, None)
        try:
            live = set(self._snapshot(path)[0])
            folders: dict[str, int] = {}
            for f in live:
                folder = f.rsplit("/", 1)[0] if "/" in f else ""
                folders[folder] = folders.get(folder, 0) + 1
            compacted = 0
            if folders and max(folders.values()) > max_files:
                metrics = self.spark.sql(f"OPTIMIZE {_quote(path)}").collect()[0]["metrics"]
                compacted = int(metrics["numFilesRemoved"])
            doomed = []
            if compacted or self._vacuum_due(path, live):
                doomed = self.spark.sql(f"VACUUM {_quote(path)} DRY RUN").collect()
                if doomed:
                    self.spark.sql(f"VACUUM {_quote(path)}").collect()
        except Exception as e:
            raise TableError(f"table {path}: maintenance failed (the table is unchanged or compacted, "
                             f"never half-written): {_first_line(e)}") from e
        return Maintenance(path, self._latest(path), compacted, False, len(doomed))

    def _vacuum_due(self, path: str, live: set[str]) -> bool:
        """Whether a data file outside the snapshot is old enough for VACUUM to delete it (its
        modification time precedes its removal, so a younger file cannot be due yet)."""
        spare = {f: t for f, t in self._data_files(path).items() if f not in live}
        if not spare:
            return False
        import time

        return min(spare.values()) <= time.time() * 1000 - self._retention_ms(path)

    def _retention_ms(self, path: str) -> float:
        """`delta.deletedFileRetentionDuration` ("interval 7 days", Delta's default) in ms; 0
        (VACUUM decides) when it does not read as `interval <n> <unit>`."""
        rows = self.spark.sql(f"SHOW TBLPROPERTIES {_quote(path)}").collect()
        text = next((r["value"] for r in rows if r["key"] == "delta.deletedFileRetentionDuration"), "interval 7 days")
        units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
        words = text.lower().split()
        if len(words) == 3 and words[0] == "interval" and words[1].isdigit() and words[2].rstrip("s") in units:
            return int(words[1]) * units[words[2].rstrip("s")] * 1000.0
        return 0.0

    def _data_files(self, path: str) -> dict[str, int]:
        """Every Parquet file under the table's folder outside `_delta_log` (relative path ->
        modification time in ms)."""
        jvm = self.spark._jvm
        root = jvm.org.apache.hadoop.fs.Path(path)
        fs = root.getFileSystem(self.spark._jsc.hadoopConfiguration())
        base = self._qualified(path)
        found, files = {}, fs.listFiles(root, True)
        while files.hasNext():
            status = files.next()
            uri = str(status.getPath().toString())
            rel = uri[len(base) + 1:] if uri.startswith(base + "/") else uri
            if rel.endswith(".parquet") and not rel.startswith("_delta_log"):
                found[rel] = int(status.getModificationTime())
        return found
