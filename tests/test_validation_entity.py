"""Entity keys are keys: duplicated entity keys fail the partition (table-level, named),
with or without a suite, counted exactly in the exact pass."""
from __future__ import annotations

import datetime as dt

from engine.validation import entity
from engine.validation.evaluate import evaluate
from engine.validation.suites import parse_suite
from engine.validation.verdicts import QUARANTINED, VALID, decide

D1, D2, D3 = dt.date(2026, 5, 1), dt.date(2026, 5, 2), dt.date(2026, 5, 3)
SCHEMA = "ds date, order_id string, region string, amount double"


def test_duplicated_keys_fail_the_partition_without_a_suite(spark):
    rows = [(D1, f"o{i}", "n", 1.0) for i in range(200)] + [(D1, "o7", "n", 2.0), (D1, "o7", "s", 3.0), (D1, "o9", "n", 1.0)]
    rows += [(D2, f"o{i}", "n", 1.0) for i in range(50)]
    df = spark.createDataFrame(rows, SCHEMA)
    got = evaluate(spark, df, None, [D1, D2, D3], entity=["order_id"], profile=False)
    check = got.checks[-1]
    assert (check.type, check.index, check.severity, check.column) == (entity.CHECK_TYPE, entity.ENTITY_INDEX, "block", None)
    bad, good, empty = (got.outcomes[d][-1] for d in (D1, D2, D3))
    assert not bad.success and bad.result["unexpected_count"] == 3 and bad.observed_value == 3
    assert bad.result["element_count"] == 203 and bad.result["distinct_keys"] == 200
    assert good.success and good.result["unexpected_count"] == 0
    assert empty.success and empty.result["element_count"] == 0
    assert entity.describe(check, bad) == "entity [order_id] has 3 duplicated keys (1.5% of rows)"
    assert got.jobs == 2  # the aggregation and the exact pass
    # verdicts treat it like a blocking expectation
    assert decide("features/orders", D1, got.checks, got.outcomes[D1]).status == QUARANTINED
    assert decide("features/orders", D2, got.checks, got.outcomes[D2]).status == VALID


def test_composite_keys_with_nulls_are_compared_exactly(spark):
    rows = [(D1, "a", None, 1.0), (D1, None, "a", 1.0), (D1, "a", "b", 1.0), (D1, "a", None, 2.0),
            (D1, None, None, 1.0), (D1, None, None, 2.0)]
    df = spark.createDataFrame(rows, SCHEMA)
    got = evaluate(spark, df, None, [D1], entity=["order_id", "region"], profile=False)
    o = got.outcomes[D1][-1]
    assert o.result["unexpected_count"] == 2  # (a, NULL) twice, (NULL, NULL) twice
    assert entity.describe(got.checks[-1], o) == "entity [order_id, region] has 2 duplicated keys (33.3% of rows)"
    assert entity.describe(got.checks[-1], entity.outcome(["k"], D1, _metrics(1_000_000, 998_742), [])) == \
        "entity [order_id, region] has 1,258 duplicated keys (0.1% of rows)"


def _metrics(rows, distinct):
    from engine.validation.plan import PartitionMetrics

    return PartitionMetrics([], {("rows",): rows, ("entity_distinct",): distinct})


def test_entity_check_rides_with_a_suite_and_a_missing_column_is_named(spark):
    rows = [(D1, "o1", "n", 1.0), (D1, "o1", "n", 1.0)]
    df = spark.createDataFrame(rows, SCHEMA)
    suite = parse_suite({"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_median_to_be_between", "kwargs": {"column": "amount", "min_value": 0, "max_value": 2}},
    ]})
    got = evaluate(spark, df, suite, [D1], entity=["order_id"], profile=False)
    assert [c.index for c in got.checks] == [0, 1, entity.ENTITY_INDEX]
    unique, median, keys = got.outcomes[D1]
    assert not unique.success and median.success and median.result["observed_value"] == 1.0
    assert not keys.success and keys.result["unexpected_count"] == 1
    assert got.jobs == 2  # value counts, median window and entity keys share one exact pass
    missing = evaluate(spark, df, None, [D1], entity=["order_id", "customer"], profile=False)
    o = missing.outcomes[D1][-1]
    assert not o.success and "customer" in o.exception
    assert "customer" in entity.describe(missing.checks[-1], o)
