import datetime as dt
import os
import time

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from engine import tables
from engine.storage import delta_rs
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

    monkeypatch.setattr(delta_rs, "_commit", crash)
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


# --------------------------------------------------------------------------- both backends

BOTH = pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"], indirect=True)


def delta_rs_view(path):
    """The table as delta-rs reads it (what `status`/`report` use without a JVM)."""
    from deltalake import DeltaTable

    return DeltaTable(path)


@BOTH
def test_backend_writes_replaces_time_travels_and_upserts(spark, backend, tmp_path):
    assert tables.backend_name(spark) == backend
    path = str(tmp_path / "t")
    ts = dt.datetime(2026, 10, 1, 12, 0)
    assert tables.write(spark, rows(spark, [(1, "a", 1.5, ts, D1), (2, None, None, ts, D1), (3, "c", 3.0, ts, D2)]),
                        path, partition_by=["ds"]) == 0
    assert tables.write(spark, rows(spark, [(9, "z", 9.0, None, D1)]), path, mode="overwrite", partition_by=["ds"],
                        replace_partitions=[D1]) == 1
    assert [(r[0], r[4]) for r in content(spark, path)] == [(3, D2), (9, D1)]
    assert [r[0] for r in content(spark, path, version=0)] == [1, 2, 3]  # VERSION AS OF
    assert tables.partition_values(path, spark=spark) == [D1, D2]
    assert sorted(tables.partition_files(path, spark=spark)) == [D1, D2]
    assert all(f.startswith("ds=2026-10-01/") for f in tables.partition_files(path, spark=spark)[D1])
    assert tables.num_records(path, spark=spark) == 2 and tables.num_records(path, 0, [D1], spark=spark) == 2
    assert tables.arrow_schema(path, spark=spark).names == ["id", "name", "amount", "ts", "ds"]
    with pytest.raises(TableError, match="outside the partitions it replaces.*nothing was committed"):
        tables.write(spark, rows(spark, [(4, "d", 4.0, None, D2)]), path, mode="overwrite", partition_by=["ds"],
                     replace_partitions=[D1])
    assert tables.version(path, spark) == 1

    small = str(tmp_path / "small")
    tables.write_rows(spark, small, pa.table({"k": ["a", "b"], "v": [1, 2]}))
    tables.upsert_rows(spark, small, pa.table({"k": ["b", "c"], "v": [20, 30], "note": ["x", None]}), keys=["k"])
    got = sorted(tables.read_rows(small, spark=spark).to_pylist(), key=lambda r: r["k"])
    assert got == [{"k": "a", "v": 1, "note": None}, {"k": "b", "v": 20, "note": "x"},
                   {"k": "c", "v": 30, "note": None}]
    # what either backend writes, delta-rs reads: reader 1 / writer 2, no deletion vectors
    for table in (path, small):
        protocol = delta_rs_view(table).protocol()
        assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
        assert not protocol.reader_features and not protocol.writer_features
    assert sorted(r["k"] for r in delta_rs_view(small).to_pyarrow_table().to_pylist()) == ["a", "b", "c"]
    assert tables.read_rows(small).num_rows == 3  # spark=None: delta-rs, no JVM
    # delete by keys: rows equal on every key column go, in one commit
    before = tables.version(small, spark)
    assert tables.delete_rows(spark, small, pa.table({"k": ["a", "c", "nope"], "v": [1, 99, 1]})) == 1
    assert sorted(r["k"] for r in tables.read_rows(small, spark=spark).to_pylist()) == ["b", "c"]
    assert tables.version(small, spark) == before + 1
    assert tables.delete_rows(spark, str(tmp_path / "absent"), pa.table({"k": ["a"]})) == 0


@BOTH
def test_schema_evolution_adds_and_drops_columns(spark, backend, tmp_path):
    path = str(tmp_path / "features")
    first = spark.createDataFrame([(1, "a", D1), (2, "b", D2)], "id long, name string, ds date")
    tables.write(spark, first, path, partition_by=["ds"])
    renamed = spark.createDataFrame([(3, 0.5, D1)], "id long, score double, ds date")  # drops name, adds score
    with pytest.raises(TableError, match="schema mismatch: the table has .*pass schema_mode='merge'"):
        tables.write(spark, renamed, path, mode="overwrite", partition_by=["ds"], replace_partitions=[D1])
    assert tables.version(path, spark) == 0
    v = tables.write(spark, renamed, path, mode="overwrite", partition_by=["ds"], replace_partitions=[D1],
                     schema_mode="merge")
    assert v == 1
    assert sorted(tables.arrow_schema(path, spark=spark).names) == ["ds", "id", "name", "score"]
    got = sorted(tables.read(spark, path).select("id", "name", "score", "ds").collect())
    assert [tuple(r) for r in got] == [(2, "b", None, D2), (3, None, 0.5, D1)]
    assert sorted(delta_rs_view(path).to_pyarrow_table().column("id").to_pylist()) == [2, 3]  # delta-rs reads it
    assert [tuple(r) for r in tables.read(spark, path, version=0).select("id", "name").collect()] in (
        [(1, "a"), (2, "b")], [(2, "b"), (1, "a")])
    appended = spark.createDataFrame([(4, 1.0, 7, D2)], "id long, score double, rank int, ds date")
    tables.write(spark, appended, path, partition_by=["ds"], schema_mode="merge")  # an append that adds a column
    assert "rank" in tables.arrow_schema(path, spark=spark).names
    assert tables.num_records(path, spark=spark) == 3
    retyped = spark.createDataFrame([(5, "high", D2)], "id long, score string, ds date")
    with pytest.raises(TableError, match="column score is double in the table and string in the write"):
        tables.write(spark, retyped, path, partition_by=["ds"], schema_mode="merge")
    with pytest.raises(TableError, match="schema_mode='overwrite' replaces the whole table's schema"):
        tables.write(spark, renamed, path, mode="overwrite", partition_by=["ds"], replace_partitions=[D1],
                     schema_mode="overwrite")
    tables.write(spark, renamed, path, mode="overwrite", partition_by=["ds"], schema_mode="overwrite")
    assert tables.arrow_schema(path, spark=spark).names == ["id", "score", "ds"]
    assert [r.id for r in tables.read(spark, path).collect()] == [3]


def test_unknown_backend_and_missing_jars_are_one_line_errors(spark, tmp_path, monkeypatch):
    from engine.errors import BackendError
    from engine.spark import session_conf

    monkeypatch.setenv("RETRAIN_JARS", str(tmp_path / "no-jars"))
    with pytest.raises(BackendError, match=r"delta-spark, but Delta Lake's Spark jars are not in .*make install"):
        session_conf({"spark.retrain.storage.backend": "delta-spark"})
    assert "spark.jars" not in session_conf({})  # no jars: a plain session on delta-rs
    with pytest.raises(BackendError, match="expected one of delta-spark, delta-rs"):
        session_conf({"spark.retrain.storage.backend": "delta-lake"})
    before = spark.conf.get("spark.retrain.storage.backend")
    spark.conf.set("spark.retrain.storage.backend", "delta-lake")
    try:
        with pytest.raises(BackendError, match="spark.retrain.storage.backend='delta-lake'"):
            tables.exists(str(tmp_path / "t"), spark)
    finally:
        spark.conf.set("spark.retrain.storage.backend", before)


# --------------------------------------------------------------------------- statistics and sizes


def add_actions(path, version=None):
    from deltalake import DeltaTable

    table = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    return sorted(pa.table(table.get_add_actions(flatten=True)).to_pylist(), key=lambda a: a["path"])


def test_commit_records_real_sizes_and_per_column_statistics(spark, table):
    actions = add_actions(table)
    assert {os.path.join(table, a["path"]): a["size_bytes"] for a in actions} == {
        f: os.path.getsize(f) for f in parquet_files(table)}
    ts = dt.datetime(2026, 10, 1, 12, 0)
    one_task = rows(spark, [(1, "a", 1.5, ts, D3), (2, None, None, ts, D3)]).coalesce(1)
    tables.write(spark, one_task, table, partition_by=["ds"])
    (a,) = [a for a in add_actions(table) if a["partition.ds"] == D3]
    assert (a["num_records"], a["min.id"], a["max.id"], a["min.amount"], a["max.amount"]) == (2, 1, 2, 1.5, 1.5)
    assert (a["null_count.name"], a["null_count.amount"], a["null_count.id"]) == (1, 1, 0)
    assert a["min.name"] == a["max.name"] == "a"
    assert a["min.ts"] == a["max.ts"] == dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_delta_rs_skips_files_by_the_recorded_statistics(spark, table):
    from deltalake import DeltaTable

    tables.write(spark, rows(spark, [(100, "big", 1.0, None, D3)]), table, partition_by=["ds"])
    kept = DeltaTable(table).file_uris(file_pruning_predicate="id >= 100")
    assert [u.split("/")[-2] for u in kept] == ["ds=2026-10-03"]
    assert len(DeltaTable(table).file_uris(file_pruning_predicate="amount > 2")) == 1  # only D2's file (3.0)


def test_statistics_are_left_out_where_delta_cannot_state_them(spark, tmp_path):
    path = str(tmp_path / "edge")
    long = "x" * 40
    df = spark.createDataFrame([(float("nan"), long, D1), (1.0, "b", D1)], "v double, s string, ds date")
    tables.write(spark, df.coalesce(1), path, partition_by=["ds"])
    (a,) = add_actions(path)
    assert a["min.v"] is None and a["max.v"] is None  # NaN: no bounds rather than wrong ones
    assert (a["min.s"], a["max.s"]) == ("b", None)  # a truncated max would be too small: left out
    assert a["null_count.v"] == 0 and a["num_records"] == 2


def test_replace_partition_commits_removes_and_records_the_predicate(spark, table):
    from deltalake import DeltaTable

    tables.write(spark, rows(spark, [(9, "z", 9.0, None, D1)]), table, mode="overwrite", partition_by=["ds"],
                 replace_partitions=[D1])
    last = DeltaTable(table).history(1)[0]
    assert last["replaceWhere"] == "ds IN ('2026-10-01')"
    assert sorted(a["partition.ds"] for a in add_actions(table)) == [D1, D2]
    assert [a["min.id"] for a in add_actions(table) if a["partition.ds"] == D1] == [9]


# --------------------------------------------------------------------------- damaged tables


def damaged_copy(table, tmp_path):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(table, copy)
    return copy


def zeroed_copy(table, tmp_path):
    """A copy of the table whose ds=2026-10-02 file is zeros of the size the log recorded."""
    copy = damaged_copy(table, tmp_path)
    (victim,) = [f for f in parquet_files(copy) if "ds=2026-10-02" in f]
    size = os.path.getsize(victim)
    with open(victim, "wb") as f:
        f.write(b"\0" * size)
    return copy, victim


def test_truncated_parquet_file_names_table_partition_and_file(spark, table, tmp_path):
    copy = damaged_copy(table, tmp_path)
    (victim,) = [f for f in parquet_files(copy) if "ds=2026-10-02" in f]
    with open(victim, "r+b") as f:
        f.truncate(100)
    rel = os.path.relpath(victim, copy)
    expected = f"table {copy}: partition ds=2026-10-02: file {rel} has 100 bytes; the Delta log (version 0) expects "
    with pytest.raises(TableError) as e:
        tables.read(spark, copy)
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)
    with pytest.raises(TableError, match="truncated or overwritten"):
        tables.read_rows(copy)
    assert sorted(r.id for r in tables.read(spark, copy, partitions=[D1]).collect()) == [1, 2]  # others still read


def test_corrupt_parquet_of_the_same_size_names_the_file(spark, table, tmp_path):
    copy, victim = zeroed_copy(table, tmp_path)
    with pytest.raises(TableError) as e:
        tables.read_rows(copy)
    message = str(e.value)
    assert message.startswith(f"table {copy}: partition ds=2026-10-02: file {os.path.relpath(victim, copy)} of "
                              "version 0 is not readable Parquet (expected a Parquet file with the table's schema)")
    assert "\n" not in message


def test_corrupt_parquet_failing_a_spark_action_maps_to_one_line(spark, table, tmp_path):
    copy, victim = zeroed_copy(table, tmp_path)
    df = tables.read(spark, copy)  # same size: the log check passes; Spark fails when it reads
    with pytest.raises(Exception) as e:
        df.collect()
    error = tables.read_failure(copy, e.value)
    assert isinstance(error, TableError)
    assert str(error).startswith(f"table {copy}: partition ds=2026-10-02: file {os.path.relpath(victim, copy)} "
                                 "is not readable Parquet")
    assert "\n" not in str(error)
    assert tables.read_failure(copy, RuntimeError("something else")) is None


def test_missing_data_file_names_the_partition(spark, table, tmp_path):
    copy = damaged_copy(table, tmp_path)
    for f in parquet_files(copy):
        if "ds=2026-10-01" in f:
            os.remove(f)
    with pytest.raises(TableError, match=r"partition ds=2026-10-01: file .* is missing from storage; the Delta log "
                                         r"\(version 0\) expects it with \d+ bytes"):
        tables.read(spark, copy)


def test_damaged_or_missing_log_entries_are_one_line_errors(spark, table, tmp_path):
    tables.write(spark, rows(spark, [(5, "e", 5.0, None, D3)]), table, partition_by=["ds"])
    log = os.path.join(table, "_delta_log")
    truncated = damaged_copy(table, tmp_path / "a")
    commit = os.path.join(truncated, "_delta_log", "00000000000000000001.json")
    with open(commit, "r+b") as f:
        f.truncate(os.path.getsize(commit) // 2)
    with pytest.raises(TableError) as e:
        tables.read(spark, truncated)
    assert str(e.value).startswith(f"table {truncated}: cannot load the latest version from its Delta log "
                                   "(_delta_log/): expected a complete, readable JSON commit")
    assert "\n" not in str(e.value)

    first_missing = damaged_copy(table, tmp_path / "b")
    os.remove(os.path.join(first_missing, "_delta_log", "00000000000000000000.json"))
    with pytest.raises(TableError, match=r"cannot load the latest version from its Delta log"):
        tables.read_rows(first_missing)
    assert sorted(os.listdir(log))[:2] == ["00000000000000000000.json", "00000000000000000001.json"]  # original intact


def test_log_without_a_readable_table_is_damaged_not_missing(tmp_path):
    path = tmp_path / "t"
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / "00000000000000000003.json").write_text("{}")
    with pytest.raises(TableError, match=r"cannot load the latest version from its Delta log .*No table metadata"):
        tables.read_rows(str(path))


# --------------------------------------------------------------------------- maintenance


def test_maintain_compacts_checkpoints_and_keeps_time_travel(tmp_path):
    path = str(tmp_path / "runs")
    for night in range(12):
        tables.write_rows(None, path, pa.table({"run_id": [f"r{night}"], "n": [night]}))
    done = tables.maintain(path, checkpoint_every=10, max_files=8)
    assert (done.compacted, done.checkpoint, done.vacuumed) == (12, True, 0)
    assert len(add_actions(path)) == 1
    assert sorted(tables.read_rows(path)["n"].to_pylist()) == list(range(12))
    assert sorted(tables.read_rows(path, 3)["n"].to_pylist()) == [0, 1, 2, 3]  # removed files stay for old versions
    assert os.path.exists(os.path.join(path, "_delta_log", "_last_checkpoint"))
    again = tables.maintain(path, checkpoint_every=10, max_files=8)
    assert (again.compacted, again.checkpoint, again.version) == (0, False, done.version)  # idempotent: no commit


def test_maintain_small_tables_covers_every_small_table(tmp_path):
    from engine import catalog

    cat = catalog.Catalog(str(tmp_path / "lake"))
    tables.write_rows(None, cat.runs, pa.table({"run_id": ["r1"], "stage": ["features"]}))
    done = tables.maintain_small_tables(cat)
    assert [d.path for d in done] == [cat.path(spec) for spec in catalog.SMALL_TABLES]
    assert [d.version for d in done if d.path == cat.runs] == [0]
    assert all(d.version is None for d in done if d.path != cat.runs)  # absent tables are left alone


def test_maintain_vacuums_only_files_removed_longer_ago_than_delta_retention(tmp_path):
    from deltalake import DeltaTable
    from deltalake.transaction import RemoveAction

    path = str(tmp_path / "small")
    for n in range(3):
        tables.write_rows(None, path, pa.table({"n": [n]}))
    old, recent, _ = add_actions(path)
    now = time.time() * 1000
    table = DeltaTable(path)
    table.create_write_transaction([
        RemoveAction(path=old["path"], data_change=True, deletion_timestamp=int(now - 40 * 86400_000),
                     size=old["size_bytes"], partition_values={}),
        RemoveAction(path=recent["path"], data_change=True, deletion_timestamp=int(now),
                     size=recent["size_bytes"], partition_values={}),
    ], mode="append", schema=table.schema())
    done = tables.maintain(path, max_files=100)  # Delta's default retention of removed files: 7 days
    assert done.vacuumed == 1
    assert not os.path.exists(os.path.join(path, old["path"]))
    assert os.path.exists(os.path.join(path, recent["path"]))  # still read by versions inside the retention
    assert len(tables.read_rows(path)) == 1


def test_num_records_comes_from_the_log(tmp_path):
    path = str(tmp_path / "counted")
    tables.write_rows(None, path, pa.table({"n": [1, 2, 3], "ds": [D1, D1, D2]}), partition_by=["ds"])
    tables.write_rows(None, path, pa.table({"n": [4], "ds": [D2]}), partition_by=["ds"])
    assert tables.num_records(path) == 4
    assert tables.num_records(path, partitions=[D2]) == 2
    assert tables.num_records(path, 0, partitions=[D2]) == 1


def test_small_tables_gain_columns_between_releases(tmp_path):
    """An existing lakehouse keeps working when a release adds columns to the engine's tables:
    appends and upserts merge the schema; old rows read the new column as null."""
    path = str(tmp_path / "runs")
    tables.write_rows(None, path, pa.table({"run_id": ["a"], "stage": ["features"]}))
    tables.write_rows(None, path, pa.table({"run_id": ["b"], "stage": ["features"], "spark_jobs": [3]}))
    tables.upsert_rows(None, path, pa.table({"run_id": ["a"], "stage": ["features"], "spark_jobs": [5],
                                             "seconds": [1.5]}), keys=["run_id", "stage"])
    rows = sorted(tables.read_rows(path).to_pylist(), key=lambda r: r["run_id"])
    assert rows == [{"run_id": "a", "stage": "features", "spark_jobs": 5, "seconds": 1.5},
                    {"run_id": "b", "stage": "features", "spark_jobs": 3, "seconds": None}]
