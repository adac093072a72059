"""The evaluation's hook for extra aggregations (e.g. learned-check partition summaries):
they ride on the same grouped aggregation and come back per ds."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from engine.validation.evaluate import evaluate
from engine.validation.suites import parse_suite

D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 6, 2)


def test_extra_aggregations_ride_on_the_grouped_aggregation(spark):
    df = spark.createDataFrame([(D1, 1.0, "a"), (D1, None, "b"), (D1, 3.0, "b")], "ds date, x double, s string")
    suite = parse_suite({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}]})
    extra = [F.count("x").alias("m0"), F.max("s").alias("s_max"), F.expr("sum(x)").alias("x_sum")]
    got = evaluate(spark, df, suite, [D1, D2], extra_aggregations=extra, profile=True)
    assert got.jobs == 1  # no extra Spark job for the extras
    assert got.extras[D1].asDict() == {"m0": 2, "s_max": "b", "x_sum": 4.0}  # an alias like m0 cannot clash
    assert got.extras[D2].asDict() == {"m0": None, "s_max": None, "x_sum": None}  # no rows that day
    assert not got.outcomes[D1][0].success and got.outcomes[D2][0].success
    assert [p.column for p in got.profiles[D1]] == ["x", "s"] and got.profiles[D1][0].null_fraction == 1 / 3
    plain = evaluate(spark, df, suite, [D1], profile=False)
    assert plain.extras == {}
