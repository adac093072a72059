"""`format: jdbc` sources against a real PostgreSQL (Debian's `postgresql` package: initdb
into a temporary folder, the server on 127.0.0.1 on a free port, stopped by its PID), read
through Spark's JDBC source with the PostgreSQL driver from Maven (jars/lib/jdbc)."""
from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from engine import features, tables
from engine.config import load_config
from engine.errors import ConfigError, SourceError
from tests.servers import stop

D1, D2, D3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
USER, PASSWORD = "retrain", "s3cret-from-the-environment"
FEATURES = """\
feature_sets:
  shop:
    source: orders
    entity: [order_id]
    columns: [customer_id, amount]
    features: {big: "CAST(amount > 10 AS INT)"}
    rolling:
      - {name: customer_orders_2d, by: [customer_id], column: "1", agg: count, days: 2}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server with an orders table (3 days); yields its JDBC url."""
    bindir = _bin()
    if bindir is None or shutil.which("psql") is None:
        reason = "PostgreSQL not installed (Debian package 'postgresql'; deploy/ci-system-packages.sh installs it)"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    if not glob.glob(str(Path(__file__).resolve().parents[1] / "jars" / "lib" / "jdbc" / "postgresql-*.jar")) \
            and not os.environ.get("RETRAIN_JARS"):
        pytest.fail("the PostgreSQL JDBC driver is not in jars/lib/jdbc: run `make install` (Maven, jars/pom.xml)")
    # The server refuses to run as root: as root, run it as the package's `postgres` user.
    as_user = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="retrain-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    (root / "pw").write_text(PASSWORD)
    if as_user is not None:
        for p in (root, sockets, root / "pw"):
            os.chown(p, as_user, -1)
    port = _free_port()
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={root / 'pw'}",
                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"],
                   check=True, capture_output=True, user=as_user)
    log = open(root / "server.log", "w")
    if as_user is not None:
        os.chown(root / "server.log", as_user, -1)
    proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                             "-k", str(sockets), "-c", "fsync=off", "-c", "shared_buffers=16MB"],
                            stdout=log, stderr=subprocess.STDOUT, user=as_user, start_new_session=True)
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(psql + ["-c", "SELECT 1"], env=env, capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start: {(root / 'server.log').read_text()[-1500:]}")
            time.sleep(0.3)
        # customer i % 5 on day i % 3: every (customer, day) has 2 orders
        rows = ",".join(f"({i}, {i % 5}, {i * 2.5}, DATE '{(D1 + dt.timedelta(days=i % 3)).isoformat()}')"
                        for i in range(30))
        subprocess.run(psql + ["-c", "CREATE TABLE orders (order_id bigint, customer_id int, amount double precision, "
                                     f"ds date); INSERT INTO orders VALUES {rows};"],
                       env=env, check=True, capture_output=True)
        yield f"jdbc:postgresql://127.0.0.1:{port}/postgres"
    finally:
        stop(proc, timeout=20)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def project(tmp_path: Path, url: str, **source) -> object:
    conf = tmp_path / "conf"
    conf.mkdir(parents=True)
    lines = [f"  orders:", "    format: jdbc", f"    url: {url}",
             "    user_env: RETRAIN_TEST_PG_USER", "    password_env: RETRAIN_TEST_PG_PASSWORD"]
    lines += [f"    {k}: {v}" for k, v in (source or {"table": "orders", "partition_column": "ds",
                                                      "num_partitions": 2}).items()]
    (conf / "project.yaml").write_text("lakehouse: ./lakehouse\nsources:\n" + "\n".join(lines) + "\n")
    (conf / "features.yaml").write_text(FEATURES)
    return load_config(conf)


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("RETRAIN_TEST_PG_USER", USER)
    monkeypatch.setenv("RETRAIN_TEST_PG_PASSWORD", PASSWORD)


def test_jdbc_source_days_rows_and_a_feature_table(spark, postgres, tmp_path, credentials):
    cfg = project(tmp_path, postgres)
    assert "s3cret" not in (tmp_path / "conf" / "project.yaml").read_text()  # only variable names in YAML
    assert features.source_dates(spark, cfg, "orders") == [D1, D2, D3]
    df = features.read_source(spark, cfg, "orders", D2, D3)
    assert df.rdd.getNumPartitions() == 2  # parallel queries over ds
    assert sorted(r.order_id for r in df.collect()) == [i for i in range(30) if i % 3 in (1, 2)]
    version, rows = features.write_features(spark, cfg, cfg.feature_sets["shop"], [D2, D3])
    assert (version, rows) == (0, 20)
    shop = tables.read(spark, cfg.lakehouse + "/features/shop").collect()
    got = {r.order_id: (r.ds, r.big, r.customer_orders_2d) for r in shop}
    assert got[4] == (D2, 0, 2) and got[5] == (D3, 1, 4)  # 2 orders a day before: D1 for D2, D1 + D2 for D3


def test_credentials_come_only_from_the_environment(spark, postgres, tmp_path, monkeypatch):
    monkeypatch.delenv("RETRAIN_TEST_PG_PASSWORD", raising=False)
    monkeypatch.setenv("RETRAIN_TEST_PG_USER", USER)
    cfg = project(tmp_path / "a", postgres)
    with pytest.raises(SourceError, match="source orders: environment variable RETRAIN_TEST_PG_PASSWORD "
                                          r"\(password_env\) is not set"):
        features.source_dates(spark, cfg, "orders")
    monkeypatch.setenv("RETRAIN_TEST_PG_PASSWORD", "wrong")
    with pytest.raises(SourceError) as e:
        features.source_dates(spark, cfg, "orders")
    assert str(e.value).startswith(f"source orders ({postgres} orders): ") and "\n" not in str(e.value)
    assert "wrong" not in str(e.value)
    with pytest.raises(ConfigError, match="url must not contain a password"):
        project(tmp_path / "b", postgres + "?user=retrain&password=x", table="orders")
    with pytest.raises(ConfigError, match="exactly one of table or query"):
        project(tmp_path / "c", postgres, table="orders", query="'SELECT 1'")


def test_query_source_with_ds_alias(spark, postgres, tmp_path, credentials):
    cfg = project(tmp_path, postgres, query="'SELECT order_id, customer_id, amount, ds FROM orders WHERE amount > 50'")
    assert features.source_dates(spark, cfg, "orders") == [D1, D2, D3]
    assert sorted(r.order_id for r in features.read_source(spark, cfg, "orders", D1, D1).collect()) == [21, 24, 27]
