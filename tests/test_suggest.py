"""retrain suggest: bounds that held over the history -> a GX 1.x suite GX can load."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from engine.validation.suggest import suggest_suite, write_suite
from engine.validation.suites import load_suite


def _rows():
    rows = []
    for i in range(5):
        d = dt.date(2024, 1, 1) + dt.timedelta(days=i)
        def add(column, statistic, value, detail=None):
            rows.append({"column": column, "statistic": statistic, "value": value,
                         "detail": None if detail is None else json.dumps(detail), "ds": d})
        add("*", "row_count", 100 + 10 * i)
        add("*", "dup_key_fraction", 0.0)
        add("amount", "null_fraction", 0.01 * i)
        add("amount", "min", -1.0 - i)
        add("amount", "max", 50.0 + i)
        add("amount", "mean", 10.0 + i)
        add("amount", "stddev", 3.0)
        add("id", "null_fraction", 0.0)
        add("region", "null_fraction", 0.0)
        add("region", "value_counts", 100, {"North": 60, "South": 40 + i})
        if i == 4:  # a quarantined day: not history, its bounds must not widen the suite
            add("amount", "max", 1e9)
    return rows


def test_suggested_suite_holds_the_history_and_gx_loads_it(tmp_path):
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(4)]  # day 5 quarantined
    suite = suggest_suite(_rows(), name="orders", valid_days=days, entity=["id"])
    path = write_suite(suite, tmp_path / "expectations" / "orders.json")
    loaded = load_suite(path)  # GX 1.x builds every expectation
    by = {(c.type, c.column): c.kwargs for c in loaded.checks}
    assert by[("expect_table_row_count_to_be_between", None)] == {"min_value": 100, "max_value": 130}
    assert ("expect_column_values_to_be_unique", "id") in by
    assert by[("expect_column_values_to_not_be_null", "id")] == {"column": "id"}
    assert by[("expect_column_values_to_not_be_null", "amount")]["mostly"] == 0.97
    assert by[("expect_column_values_to_be_between", "amount")] == {"column": "amount", "min_value": -4.0, "max_value": 53.0}
    assert by[("expect_column_mean_to_be_between", "amount")]["max_value"] == 13.0
    assert by[("expect_column_values_to_be_in_set", "region")]["value_set"] == ["North", "South"]
    assert all(c.severity == "block" for c in loaded.checks)
    assert suite["meta"]["history_partitions"] == 4


def test_suggested_suite_passes_on_its_history(spark):
    """The engine's own evaluation of the suggested suite passes on the data it came from."""
    from engine.validation.evaluate import evaluate
    from engine.validation.suites import parse_suite
    from engine.validation.summaries import summary_aggregations, summary_rows

    days = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    pdf = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "amount": [1.0, None, 3.0, 7.0, -2.0],
                        "region": ["N", "S", "N", "N", "S"], "ds": [days[0]] * 3 + [days[1]] * 2})
    df = spark.createDataFrame(pdf)
    rows = []
    for r in df.groupBy("ds").agg(*summary_aggregations(df.schema, entity=["id"])).collect():
        rows += summary_rows("features/t", r["ds"], r)
    suite = parse_suite(suggest_suite(rows, name="t", valid_days=days, entity=["id"]))
    result = evaluate(spark, df, suite, days)
    failed = [(o.ds, suite.checks[o.index].type) for d in days for o in result.outcomes[d] if not o.success]
    assert failed == []
    assert len(suite.checks) >= 8
