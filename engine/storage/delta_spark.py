"""The delta-spark backend: Delta Lake's own Spark writer and reader (what Spark and
Databricks users run). Partition rewrites are `replaceWhere` overwrites, upserts `MERGE`,
old versions `versionAsOf` reads; Delta checkpoints the log itself every
`delta.checkpointInterval` (10) commits. Everything goes through Spark, so it reads and
writes whatever Hadoop filesystem the session has (s3a://, abfss://, gs://, dbfs:/).

Tables it creates have deletion vectors off (`delta.enableDeletionVectors=false`): delta-rs
1.6 cannot read them through PyArrow, and the engine keeps every table readable by both."""
from __future__ import annotations

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
        """From the snapshot's file list (`DataFrame.inputFiles`, no data read); partition
        values from the hive-style folders Delta writes (no column mapping here)."""
        df = self._load(path, version)
        type_ = spark_to_arrow(df.schema).field(column).type
        base = self._qualified(path)
        files: dict[Any, list[str]] = {}
        for uri in df.inputFiles():
            rel = uri[len(base) + 1:] if uri.startswith(base + "/") else uri
            folders = dict(p.split("=", 1) for p in rel.split("/")[:-1] if "=" in p)
            files.setdefault(typed_pv(folders.get(column), type_), []).append(rel)
        return files

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
        return self.version(path)

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
        return self.version(path)

    # ------------------------------------------------------------------ maintenance

    def maintain(self, path: str, checkpoint_every: int, max_files: int) -> Maintenance:
        """OPTIMIZE when a partition holds more than `max_files` files, then VACUUM with the
        table's own retention (`delta.deletedFileRetentionDuration`, 7 days by default).
        Checkpoints are Delta's own (every `delta.checkpointInterval` commits), so
        `checkpoint_every` does not apply."""
        if not self.exists(path):
            return Maintenance(path, None)
        try:
            files = self._files_per_partition(path)
            compacted = 0
            if files and max(files.values()) > max_files:
                metrics = self.spark.sql(f"OPTIMIZE {_quote(path)}").collect()[0]["metrics"]
                compacted = int(metrics["numFilesRemoved"])
            doomed = self.spark.sql(f"VACUUM {_quote(path)} DRY RUN").collect()
            if doomed:
                self.spark.sql(f"VACUUM {_quote(path)}").collect()
        except Exception as e:
            raise TableError(f"table {path}: maintenance failed (the table is unchanged or compacted, "
                             f"never half-written): {_first_line(e)}") from e
        return Maintenance(path, self.version(path), compacted, False, len(doomed))

    def _files_per_partition(self, path: str) -> dict[str, int]:
        df = self._load(path)
        base = self._qualified(path)
        counts: dict[str, int] = {}
        for uri in df.inputFiles():
            folder = uri[len(base) + 1:].rsplit("/", 1)[0] if "/" in uri[len(base) + 1:] else ""
            counts[folder] = counts.get(folder, 0) + 1
        return counts
