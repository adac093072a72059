import datetime as dt
import os

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from engine import tables
from engine.errors import TableError

D1, D2, D3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
SCHEMA = "id long, name string, amount double, ts timestamp, ds date"


def rows(spark, data):
    return spark.createDataFrame(data, SCHEMA)


def content(spark, path, version=None):
    return sorted(tuple(r) for r in tables.read(spark, path, version).collect())


def parquet_files(path):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet"))


@pytest.fixture
def table(spark, tmp_path):
    path = str(tmp_path / "t")
    ts = dt.datetime(2026, 10, 1, 12, 0)
    df = rows(spark, [(1, "a", 1.5, ts, D1), (2, None, None, ts, D1), (3, "c", 3.0, ts, D2)])
    tables.write(spark, df.repartition(3), path, partition_by=["ds"])
    return path


def test_round_trip_keeps_types_nulls_and_partitions(spark, table):
    df = tables.read(spark, table)
    assert [f.simpleString() for f in df.schema.fields] == [
        "id:bigint", "name:string", "amount:double", "ts:timestamp", "ds:date"]
    got = content(spark, table)
    assert [(r[0], r[1], r[2], r[4]) for r in got] == [(1, "a", 1.5, D1), (2, None, None, D1), (3, "c", 3.0, D2)]
    assert tables.partition_values(table) == [D1, D2]
    assert tables.version(table) == 0


def test_files_are_written_by_executors_one_commit_per_write(spark, table):
    df = rows(spark, [(i, "x", float(i), None, D3) for i in range(10)]).repartition(4)
    version = tables.write(spark, df, table, partition_by=["ds"])
    assert version == 1
    log = sorted(os.listdir(os.path.join(table, "_delta_log")))
    assert [f for f in log if f.endswith(".json")] == ["00000000000000000000.json", "00000000000000000001.json"]
    assert len([f for f in parquet_files(table) if "ds=2026-10-03" in f]) == 4  # one file per task


def test_replace_partition_is_atomic_and_old_version_stays_readable(spark, table):
    before = content(spark, table)
    untouched = [f for f in parquet_files(table) if "ds=2026-10-02" in f]
    new = rows(spark, [(9, "z", 9.0, None, D1)])
    version = tables.write(spark, new, table, mode="overwrite", partition_by=["ds"], replace_partitions=[D1])
    assert version == 1
    after = content(spark, table)
    assert [(r[0], r[4]) for r in after] == [(3, D2), (9, D1)]
    assert content(spark, table, version=0) == before  # time travel
    assert [f for f in parquet_files(table) if "ds=2026-10-02" in f] == untouched


def test_rewriting_same_rows_gives_identical_contents(spark, table):
    before = content(spark, table)
    again = tables.read(spark, table).where(F.col("ds") == D1)
    tables.write(spark, again.localCheckpoint(), table, mode="overwrite", partition_by=["ds"], replace_partitions=[D1])
    assert content(spark, table) == before


def test_crash_between_writing_files_and_commit_leaves_table_unchanged(spark, table, monkeypatch):
    before, version = content(spark, table), tables.version(table)
    files_before = parquet_files(table)

    def crash(*args, **kwargs):
        raise RuntimeError("driver died before the commit")

    monkeypatch.setattr(tables, "_commit", crash)
    with pytest.raises(TableError, match="commit failed, nothing was changed"):
        tables.write(spark, rows(spark, [(7, "n", 7.0, None, D1)]), table, mode="overwrite",
                     partition_by=["ds"], replace_partitions=[D1])
    monkeypatch.undo()
    assert tables.version(table) == version
    assert content(spark, table) == before
    assert parquet_files(table) == files_before  # the uncommitted files were tidied away


def test_failing_task_commits_nothing(spark, table):
    before, version = content(spark, table), tables.version(table)

    @F.udf("double")
    def explode(x):
        if x == 5:
            raise ValueError("bad row")
        return float(x)

    df = spark.range(10).select(F.col("id"), F.lit("x").alias("name"), explode("id").alias("amount"),
                                F.lit(None).cast("timestamp").alias("ts"), F.lit(D1).alias("ds"))
    with pytest.raises(Exception, match="bad row"):
        tables.write(spark, df.repartition(2), table, mode="overwrite", partition_by=["ds"], replace_partitions=[D1])
    assert tables.version(table) == version
    assert content(spark, table) == before


def test_rows_outside_replaced_partitions_are_refused(spark, table):
    with pytest.raises(TableError, match=r"ds=\['2026-10-02'\] outside the partitions it replaces"):
        tables.write(spark, rows(spark, [(1, "a", 1.0, None, D2)]), table, mode="overwrite",
                     partition_by=["ds"], replace_partitions=[D1])
    assert tables.version(table) == 0


def test_schema_mismatch_names_table_and_columns(spark, table):
    other = spark.createDataFrame([(1, D1)], "id string, ds date")
    with pytest.raises(TableError, match="schema mismatch: the table has .*id: int64.*the write has .*id: string"):
        tables.write(spark, other, table, partition_by=["ds"])


def test_read_missing_table_is_a_clear_error(spark, tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        tables.read(spark, str(tmp_path / "missing"))


def test_read_some_partitions_only(spark, table):
    df = tables.read(spark, table, partitions=[D2])
    assert [r.id for r in df.collect()] == [3]


def test_small_tables_write_upsert_and_read(spark, tmp_path):
    path = str(tmp_path / "small")
    tables.write_rows(spark, path, pa.table({"k": ["a", "b"], "v": [1, 2]}))
    tables.upsert_rows(spark, path, pa.table({"k": ["b", "c"], "v": [20, 30]}), keys=["k"])
    got = sorted((r["k"], r["v"]) for r in tables.read_rows(path).to_pylist())
    assert got == [("a", 1), ("b", 20), ("c", 30)]
    assert sorted(r.k for r in tables.read(spark, path).collect()) == ["a", "b", "c"]


def _delta_jars_present(spark) -> bool:
    try:
        spark._jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension")
        return True
    except Exception:
        return False


def test_delta_spark_backend_round_trip(spark, tmp_path):
    if not _delta_jars_present(spark):
        pytest.skip("Delta's Spark jars are not on the classpath (Maven Central is unreachable here); "
                    "the delta-spark backend runs under spark-submit --packages io.delta:delta-spark_2.13:4.x")
    from delta import configure_spark_with_delta_pip  # noqa: F401  (jars present: exercise the backend)

    path = str(tmp_path / "ds")
    df = rows(spark, [(1, "a", 1.0, None, D1)])
    tables._write_delta_spark(spark, df, path, "overwrite", ["ds"], None, "ds")
    assert spark.read.format("delta").load(path).count() == 1
