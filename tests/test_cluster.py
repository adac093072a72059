"""The nightly job on a real Spark standalone cluster (a master and two workers on 127.0.0.1,
started with the pyspark package's own spark-class), submitted with spark-submit the way a
user would, and compared with a local-mode run of the same config and date.

How the engine reaches the executors: `--py-files engine.zip` (a zip of the engine/ package).
The executors here run a Python environment that has the dependencies but NOT the engine
(a venv that sees this project's site-packages except `engine`), like a cluster node where
only the requirements are installed: the job can only work if the zip was shipped. The driver imports the engine from the checkout
(jobs/nightly.py puts the repository root on sys.path).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine import pipeline, registry, tables
from engine.catalog import Catalog
from engine.config import load_config
from engine.demo import generate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from chaos import SHORT_JVM, short_jvm_options  # noqa: E402  (the C1 compiler only: JVMs that live minutes)
END = dt.date(2026, 10, 20)
DAYS = 14  # the demo's minimum: fewer partitions, less work on both sides
STARTUP_SECONDS = 120  # JVM start and registration, generous for a loaded 2-core machine
JOB_SECONDS = 600

# One small model so training runs on the executors too: a ridge regression per region,
# scored on a 3-day eval window (some of its days are the demo's quarantined fault days).
SMALL_MODEL = """\
model_id: minutes_ridge
feature_set: orders
features: [distance_km, courier_load, items, hour_of_day, is_weekend]
label: delivery_minutes
task: regression
estimator: sklearn.Ridge
grid: {alpha: [0.1, 10.0]}
segment_by: region
train_window_days: 10
eval_window_days: 3
cadence: daily
metric: mae
slo: {max: 100.0}
min_rows: 50
max_quarantined_share: 0.5
"""


# --------------------------------------------------------------------------- processes


def pyspark_bin(name: str) -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(os.path.realpath(java)).parents[1]) if java else None


def base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_"))}
    env.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_DIRS=str(root / "local"), SPARK_DAEMON_MEMORY="512m",
               SPARK_DAEMON_JAVA_OPTS=SHORT_JVM, TZ="UTC")
    home = java_home()
    if home:
        env["JAVA_HOME"] = home
    (root / "local").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class Cluster:
    master_url: str
    webui: int
    worker_dirs: list[Path]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui}/json/", timeout=5) as r:
            return json.load(r)

    def wait_for_workers(self) -> None:
        """Poll the master's JSON until every worker is ALIVE (fail at once if a process died)."""
        names = ["master"] + [f"worker{i}" for i in range(len(self.worker_dirs))]
        deadline = time.monotonic() + STARTUP_SECONDS
        state: dict = {}
        while time.monotonic() < deadline:
            for p, name in zip(self.processes, names):
                if p.poll() is not None:
                    raise AssertionError(f"{name} exited with {p.returncode}:\n{_tail(self.logs / f'{name}.log')}")
            with contextlib.suppress(OSError, ValueError):
                state = self.state()
                if sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE") >= len(self.worker_dirs):
                    return
            time.sleep(0.5)
        raise AssertionError(f"the workers did not register within {STARTUP_SECONDS}s; master says {state}\n"
                             f"{_tail(self.logs / 'master.log')}")


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        # A session of its own: the process and everything it starts (executors, Python
        # workers) share one process group, stopped together at the end.
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


def group_members(pgids: set[int]) -> list[tuple[int, str]]:
    """Live processes (pid, command) in the given process groups."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            state, pgid = fields[0], fields[2]
            if int(pgid) in pgids and state != "Z":
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120].decode()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def stop_groups(processes: list[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM every process group, then SIGKILL what is left after `grace` seconds."""
    pgids = {p.pid for p in processes}  # start_new_session: pgid == pid
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgids) and time.monotonic() < deadline:
        for p in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=0.2)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)


@contextlib.contextmanager
def standalone_cluster(root: Path, workers: int = 2):
    env = base_env(root)
    logs = root / "logs"
    logs.mkdir(parents=True)
    port, webui = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", webui, [root / f"worker{i}" for i in range(workers)], logs)
    spark_class = str(pyspark_bin("spark-class"))
    try:
        cluster.processes.append(_start(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(webui)], env, logs / "master.log"))
        for i, work in enumerate(cluster.worker_dirs):
            work.mkdir()
            cluster.processes.append(_start(
                [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url, "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(work)],
                env, logs / f"worker{i}.log"))
        yield cluster  # started; cluster.wait_for_workers() before submitting
    finally:
        stop_groups(cluster.processes)


# --------------------------------------------------------------------------- shipping


def engine_zip(dest: Path) -> Path:
    """engine/ as a zip for --py-files (what `zip -r engine.zip engine` makes)."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((REPO / "engine").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(REPO))
    return dest


def node_python(root: Path) -> str:
    """A Python like a cluster node's: the project's dependencies are importable, the engine is
    not (whether this venv has it as an editable install or as a regular one)."""
    import pyarrow

    site_packages = Path(pyarrow.__file__).parents[1]
    deps = root / "dependencies"
    deps.mkdir(parents=True)
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if name == "engine" or name.startswith(("__editable__", "retrain")) or name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    Path(target, "project-dependencies.pth").write_text(f"{deps}\n")
    return str(python)


# --------------------------------------------------------------------------- comparing


def rows(path: str, drop: set[str], root: str) -> list[dict]:
    """A table's rows without run-specific columns, the lakehouse root replaced by <root>."""
    table = tables.read_rows(path)
    assert table is not None, f"{path} does not exist"
    out = []
    for r in table.to_pylist():
        out.append({k: (v.replace(root, "<root>") if isinstance(v, str) else v) for k, v in r.items() if k not in drop})
    return out


def same(a, b, rel: float = 1e-9) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    return a == b


def assert_same_rows(name: str, cluster: list[dict], local: list[dict], key: list[str], rel: float = 1e-9) -> None:
    def sort_key(r):
        return tuple(str(r[k]) for k in key)

    cluster, local = sorted(cluster, key=sort_key), sorted(local, key=sort_key)
    assert [sort_key(r) for r in cluster] == [sort_key(r) for r in local], f"{name}: different keys"
    for c, l in zip(cluster, local):
        if not same(c, l, rel):
            diff = {k: (c[k], l[k]) for k in c if not same(c[k], l[k], rel)}
            raise AssertionError(f"{name} {sort_key(c)}: cluster vs local differ in {diff}")


def as_number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def map_rows(r: dict) -> dict:
    """Delta maps come back as lists of (key, value): compare them as dicts."""
    return {k: (dict(v) if k in ("features", "categories") and v is not None else v) for k, v in r.items()}


# --------------------------------------------------------------------------- the test


def make_project(root: Path, source: Path) -> Path:
    (root / "conf" / "models").mkdir(parents=True)
    shutil.copy(REPO / "conf" / "features.yaml", root / "conf" / "features.yaml")
    # Learned checks read sketches (quantiles, distinct estimates) that depend on how rows are
    # split among tasks, so their scores legitimately differ between the two; they have their
    # own tests. Here: every exact table equal.
    project = (REPO / "conf" / "project.yaml").read_text().replace("    enabled: true", "    enabled: false")
    # every JVM of the test (master, workers, driver, executors) lives a minute or two: C1 only
    project = project.replace("  conf:\n", f"  conf:\n    spark.executor.extraJavaOptions: \"{short_jvm_options('executor')}\"\n")
    (root / "conf" / "project.yaml").write_text(project)
    (root / "conf" / "models" / "minutes_ridge.yaml").write_text(SMALL_MODEL)
    shutil.copytree(REPO / "expectations", root / "expectations")
    shutil.copytree(source / "raw", root / "lakehouse" / "raw")
    return root / "conf"


@pytest.mark.timeout(900)
def test_nightly_job_on_a_standalone_cluster_equals_local_mode(spark, tmp_path):
    started = time.monotonic()

    def took(what):
        print(f"{time.monotonic() - started:6.1f}s {what}")

    with standalone_cluster(tmp_path / "cluster") as cluster:
        # While the JVMs start: the demo source, two projects, the zip, a node-like Python.
        source = tmp_path / "source"
        generate(str(source), END, days=DAYS, seed=11)
        cluster_conf = make_project(tmp_path / "on_cluster", source)
        local_conf = make_project(tmp_path / "on_local", source)
        py_files = engine_zip(tmp_path / "engine.zip")
        python = node_python(tmp_path / "node-venv")
        probe = subprocess.run([python, "-c", "import pyarrow, pyspark, sklearn; import engine"],
                               capture_output=True, text=True, cwd=tmp_path)
        assert "No module named 'engine'" in probe.stderr  # the executors can only get it from --py-files
        cluster.wait_for_workers()
        took("two workers registered")

        env = base_env(tmp_path / "cluster")
        env.update(PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
        submit = [
            str(pyspark_bin("spark-submit")), "--master", cluster.master_url, "--deploy-mode", "client",
            "--driver-memory", "1g", "--executor-memory", "1g", "--total-executor-cores", "2",
            "--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={python}",
            "--conf", "spark.ui.enabled=false", "--driver-java-options", short_jvm_options("driver"),
            "--py-files", str(py_files),
            str(REPO / "jobs" / "nightly.py"), "--conf", str(cluster_conf), "--date", END.isoformat(),
        ]
        driver_log = tmp_path / "driver.log"
        job = _start(submit, env, driver_log)
        cluster.processes.append(job)  # stopped with the cluster whatever happens

        # Meanwhile, the same config and date in local mode, in this process.
        local_cfg = load_config(local_conf)
        [local] = pipeline.run(spark, local_cfg, END)
        took("local-mode run done")

        try:
            code = job.wait(timeout=JOB_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"spark-submit did not finish in {JOB_SECONDS}s:\n{_tail(driver_log)}") from None
        took(f"spark-submit exited with {code}")
        executor_logs = sorted(p for w in cluster.worker_dirs for p in w.glob("app-*/*/stderr"))
        detail = f"driver:\n{_tail(driver_log)}\n" + "".join(f"\n{p}:\n{_tail(p, 15)}" for p in executor_logs)
        # 3 = finished, blocked by data quality (the demo's fault days are quarantined).
        assert (code, local.status) == (3, "blocked"), detail
        # Both workers ran an executor of the app, and each fetched the shipped engine.
        apps = [sorted(w.glob("app-*/*")) for w in cluster.worker_dirs]
        assert all(len(a) == 1 for a in apps), apps
        assert all((a[0] / "engine.zip").is_file() for a in apps), detail
        pgids = {p.pid for p in cluster.processes}

    took("cluster stopped")
    left = group_members(pgids)
    assert not left, f"processes left after stopping the cluster: {left}"

    cluster_cfg = load_config(cluster_conf)
    roots = (cluster_cfg.lakehouse, local_cfg.lakehouse)

    def both(name, drop=frozenset()):
        return [rows(Catalog.of(cfg).path(name), set(drop), root) for cfg, root in ((cluster_cfg, roots[0]), (local_cfg, roots[1]))]

    features = both("features/orders")
    assert len(features[0]) > 10_000
    assert_same_rows("features/orders", *features, key=["ds", "order_id"])

    # content_id hashes the partition's file names (random per write): equal tables, other ids
    statuses = both("validation/partitions", {"run_id", "updated_at", "content_id"})
    assert sum(r["status"] == "quarantined" for r in statuses[0]) == 4
    for side in statuses:
        for r in side:
            r["reasons"] = json.loads(r["reasons"])
    assert_same_rows("validation/partitions", *statuses, key=["table", "ds"])
    results = both("validation/results", {"run_id"})
    for side in results:
        for r in side:  # GX's observed values (e.g. a column mean) may differ in the last bits
            r["observed_value"] = json.loads(r["observed_value"])
    assert_same_rows("validation/results", *results, key=["ds", "expectation_index", "expectation_type"])
    # Profiles: the exact statistics are equal. The sketches are left out: quantiles and top
    # values depend on how rows were split among tasks, and a HyperLogLog distinct count of a
    # float column changes when a value differs in its last bit (a sum in another order).
    sketches = {"run_id", "p05", "p25", "p50", "p75", "p95", "top_values", "distinct_count"}
    profiles = both("validation/profiles", sketches)
    for side in profiles:
        for r in side:  # min and max are stored as text
            r["min"], r["max"] = as_number(r["min"]), as_number(r["max"])
    assert_same_rows("validation/profiles", *profiles, key=["ds", "table", "column"])

    sets = [[map_rows(r) for r in side] for side in both("training_sets", {"run_id"})]
    assert {r["segment"] for r in sets[0]} == {"east", "north", "south", "west"}
    assert_same_rows("training_sets", *sets, key=["model_id", "segment", "split", "ds", "row_key"])

    # Same models from the same rows; the fit itself may differ in the last bits (row order).
    volatile = {"run_id", "validation_run_id", "sha256", "trained_at", "updated_at"}
    entries = both("registry", volatile)
    for side in entries:
        for r in side:
            r["train_metrics"], r["eval_metrics"] = json.loads(r["train_metrics"]), json.loads(r["eval_metrics"])
    assert {(r["segment"], r["status"]) for r in entries[0]} == {(s, "champion") for s in ("east", "north", "south", "west")}
    assert_same_rows("registry", *entries, key=["model_id", "segment", "version"], rel=1e-6)
    for tbl in ("features/orders", "validation/partitions", "training_sets", "registry"):
        assert tables.version(Catalog.of(cluster_cfg).path(tbl)) == tables.version(Catalog.of(local_cfg).path(tbl)), tbl

    # The executors wrote the artifacts; each loads with its sha256 verified.
    for champion in registry.champions(spark, cluster_cfg):
        model, meta = registry.load_model(Catalog.of(cluster_cfg), champion)
        assert meta.segment == champion.segment and hasattr(model, "predict")
