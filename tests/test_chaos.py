"""Crash safety, trials of benchmarks/chaos.py: SIGKILL of the whole process group at a
uniformly random moment of a night, the same command again, and the lakehouse and exit code
compared with a clean night's. `make test` runs one trial on the mini project on delta-rs (the
cheaper backend: a random kill point each time, CHAOS_SEED=<n> repeats one); `make test-slow`
runs 30 of them on the default backend (delta-spark) and two on the demo project.

Subprocess runs of the CLI (each its own SparkSession, as a scheduler would start them);
no SparkSession in this process."""
from __future__ import annotations

import collections
import json
import os
import random
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import chaos  # noqa: E402


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    work = tmp_path_factory.mktemp("chaos")
    results = chaos.main(["--trials", "2", "--seed", "11", "--keep", str(work)])
    return work, results


def _seed() -> int:
    return int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 10**6))


# One trial is three nights (clean, killed, retry) of the mini project, each its own process.
def test_a_night_killed_at_a_random_moment_ends_as_a_clean_night(tmp_path):
    seed = _seed()
    print(f"CHAOS_SEED={seed}")
    [result] = chaos.main(["--mini", "--backend", "delta-rs", "--trials", "1", "--seed", str(seed),
                           "--keep", str(tmp_path)])
    assert result.identical, f"CHAOS_SEED={seed}: {result.line()}"


@pytest.mark.slow
def test_thirty_nights_killed_at_random_moments_end_as_clean_nights(tmp_path):
    seed = _seed()
    results = chaos.main(["--mini", "--trials", "30", "--seed", str(seed), "--keep", str(tmp_path)])
    assert len(results) == 30
    assert [r.line() for r in results if not r.identical] == [], f"CHAOS_SEED={seed}"


@pytest.mark.slow
def test_killed_nights_end_with_the_tables_of_a_clean_night(trials):
    _, results = trials
    assert len(results) == 2
    for r in results:
        assert r.identical, r.line()


@pytest.mark.slow
def test_the_harness_sees_orphans_duplicates_and_changed_rows(trials):
    work, _ = trials
    clean = chaos.state(work / "clean")
    assert clean.tables["features/orders"] and clean.artifacts  # a night with models trained
    assert chaos.differences(clean, work / "clean") == []  # the clean run equals itself

    project = work / "tampered"
    shutil.copytree(work / "clean", project)
    table = project / "lakehouse" / "features" / "orders"
    [first, *_] = sorted(table.rglob("*.parquet"))
    shutil.copy(first, first.with_name("part-orphan.parquet"))
    from deltalake import DeltaTable, write_deltalake

    partitions = project / "lakehouse" / "validation" / "partitions"
    rows = DeltaTable(str(partitions)).to_pyarrow_table()
    write_deltalake(str(partitions), rows.slice(0, 1), mode="append")  # a duplicate verdict
    kinds = collections.Counter(kind for kind, _ in chaos.differences(clean, project))
    assert kinds["orphan file"] == 1
    assert kinds["duplicate rows"] == 1
    assert kinds["validation/partitions differs"] == 1


def test_approximate_statistics_compare_within_tolerance():
    clean = [{"table": "t", "column": "a", "p50": 100.0, "distinct_count": 1000}]
    assert chaos.compare_table(clean, [{"table": "t", "column": "a", "p50": 102.0, "distinct_count": 1010}],
                               "validation/profiles") is None
    assert "approximate" in chaos.compare_table(
        clean, [{"table": "t", "column": "a", "p50": 150.0, "distinct_count": 1000}], "validation/profiles")
    assert chaos.compare_table([{"x": 1.0}], [{"x": 1.0000001}], "features/orders") is not None  # exact elsewhere



def test_tied_top_values_and_last_digits_of_a_text_mean_compare_as_equal():
    """Two clean nights pick different values among those tied at a top-k list's cut-off and
    sum a mean in another order: neither is a difference. Other values or counts are."""
    top = lambda *pairs: json.dumps([{"value": v, "count": n} for v, n in pairs])  # noqa: E731
    clean = [{"table": "t", "column": "c", "top_values": top(("a", 90), ("b", 1)), "detail": '{"x": 1, "y": 1}',
              "observed_value": "63.8585181451613"}]
    same = [{"table": "t", "column": "c", "top_values": top(("a", 90), ("z", 1)), "detail": '{"x": 1, "w": 1}',
             "observed_value": "63.85851814516129"}]
    assert chaos.compare_table(clean, same, "validation/profiles") is None
    for other in ({"top_values": top(("q", 90), ("b", 1))}, {"top_values": top(("a", 50), ("b", 1))},
                  {"observed_value": "70.1"}):
        assert chaos.compare_table(clean, [dict(same[0], **other)], "validation/profiles") is not None
