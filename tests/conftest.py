"""One session-scoped SparkSession for the whole suite, tuned for speed on small data.

It has Delta Lake's jars when `make install` fetched them (jars/lib/), so both storage
backends run in the one JVM: the suite defaults to delta-rs (`spark.retrain.storage.backend`);
a test or module switches with the `backend` fixture below, e.g.
`@pytest.mark.parametrize("backend", ["delta-rs", "delta-spark"], indirect=True)`."""
from __future__ import annotations

import os
import sys

import pytest

os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only

# pytest-xdist workers run under execnet, whose __main__ module has neither __spec__ nor
# __file__: PySpark's connect package then believes it is running doctests and exits the worker
# (pyspark/sql/connect/utils.py check_dependencies, reached through `import great_expectations`).
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

BACKEND_CONF = "spark.retrain.storage.backend"


@pytest.fixture(scope="session")
def spark():
    from engine.spark import get_spark

    session = get_spark(
        "retrain-tests",
        master="local[2]",
        conf={
            # one shuffle partition: the suite's two workers share two cores, and its data is
            # small (the chaos trials and the standalone cluster run with two or more)
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.memory": "2g",
            "spark.python.worker.reuse": "true",
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
            BACKEND_CONF: "delta-rs",
        },
    )
    yield session
    session.stop()


def use_backend(spark, name: str):
    """Switch the session's storage backend; returns the previous one (to restore)."""
    from engine.spark import MAKE_INSTALL, delta_available

    if name == "delta-spark" and not delta_available(spark):
        pytest.fail(f"the delta-spark backend needs Delta Lake's jars in this session: {MAKE_INSTALL}")
    before = spark.conf.get(BACKEND_CONF)
    spark.conf.set(BACKEND_CONF, name)
    return before


class on:
    """`with on(spark, "delta-spark"):` the session's tables go through that backend."""

    def __init__(self, spark, name):
        self.spark, self.name = spark, name

    def __enter__(self):
        self.before = use_backend(self.spark, self.name)

    def __exit__(self, *exc):
        self.spark.conf.set(BACKEND_CONF, self.before)


@pytest.fixture
def backend(request, spark):
    """The storage backend a test runs on (parametrize indirectly); restored afterwards."""
    name = getattr(request, "param", "delta-rs")
    before = use_backend(spark, name)
    yield name
    spark.conf.set(BACKEND_CONF, before)


# Files that take minutes (measured: `--durations` of a whole run), collected first so that
# pytest-xdist's workers (`--dist loadfile`: whole files per worker, in collection order) start
# them early and finish together, instead of one worker running a long file while the other
# idles. The order of every other file, and of the tests inside a file, is unchanged.
SLOW_FILES_FIRST = ("test_cluster.py", "test_pipeline.py", "test_chaos.py", "test_bad_inputs.py", "test_signals.py",
                    "test_backends.py", "test_notebooks.py", "test_validation_demo.py", "test_report_html.py",
                    "test_golden_signals.py", "test_object_store.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort
