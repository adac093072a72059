"""Partition summaries: one grouped aggregation, long-format rows."""
from __future__ import annotations

import datetime as dt

from engine.validation.summaries import summary_aggregations, summary_rows

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def _frame(spark):
    rows = []
    for i in range(10):  # day 1: 10 rows, one null amount, one zero, one negative
        amount = None if i == 0 else (0.0 if i == 1 else (-5.0 if i == 2 else float(i)))
        rows.append((f"k{i}", dt.datetime(2023, 12, 31, 12), amount, "North" if i < 6 else "south", "N" if i < 6 else "S", D1))
    for i in range(10):  # day 2: a stale copy of day 1's source columns
        r = rows[i]
        rows.append((r[0], r[1], r[2], r[3], r[4], D2))
    for i in range(4):  # day 3: duplicated keys, constant fill, upper-case corruption
        rows.append(("k0", dt.datetime(2024, 1, 2, 6), 7.0, "NORTH", "N", D3))
    return spark.createDataFrame(rows, "id string, ts timestamp, amount double, region string, seg string, ds date")


def _by_day(spark):
    df = _frame(spark)
    aggs = summary_aggregations(df.schema, entity=["id"], event_time="ts", segment_columns=["seg"],
                                source_columns=["id", "ts", "amount", "region", "seg"])
    out = {}
    for r in df.groupBy("ds").agg(*aggs).collect():  # one aggregation for all partitions
        out[r["ds"]] = {(x["column"], x["statistic"]): x for x in summary_rows("features/t", r["ds"], r, run_id="r1")}
    return out


def test_summary_rows_hold_what_faults_change(spark):
    days = _by_day(spark)
    d1, d2, d3 = days[D1], days[D2], days[D3]
    assert d1[("*", "row_count")]["value"] == 10
    assert abs(d1[("amount", "null_fraction")]["value"] - 0.1) < 1e-9
    assert abs(d1[("amount", "zero_fraction")]["value"] - 1 / 9) < 1e-9
    assert abs(d1[("amount", "negative_fraction")]["value"] - 1 / 9) < 1e-9
    assert d1[("amount", "min")]["value"] == -5.0 and d1[("amount", "max")]["value"] == 9.0
    assert d1[("amount", "p50")]["value"] is not None
    assert abs(d1[("seg", "share:N")]["value"] - 0.6) < 1e-9
    assert abs(d1[("region", "lower_share")]["value"] - 0.4) < 1e-9
    assert abs(d1[("*", "lag_mean")]["value"] - 12.0) < 1e-9
    assert d1[("*", "dup_key_fraction")]["value"] == 0
    assert '"North": 6' in d1[("region", "value_counts")]["detail"]
    assert d1[("*", "fingerprint")]["run_id"] == "r1" and d1[("*", "fingerprint")]["table"] == "features/t"
    # a stale copy: same fingerprint although ds differs
    assert d2[("*", "fingerprint")]["detail"] == d1[("*", "fingerprint")]["detail"]
    assert d3[("*", "fingerprint")]["detail"] != d1[("*", "fingerprint")]["detail"]
    # duplicated keys, constant fill, case corruption, one segment only
    assert d3[("*", "dup_key_fraction")]["value"] == 0.75
    assert d3[("amount", "mode_share")]["value"] == 1.0
    assert d3[("region", "upper_share")]["value"] == 1.0
    assert ("seg", "share:S") not in d3 and d3[("seg", "share:N")]["value"] == 1.0
    assert abs(d3[("*", "lag_mean")]["value"] - 18.0) < 1e-9


def test_a_coded_category_gets_value_counts_and_duplicate_fractions_are_never_negative(spark):
    rows = [(D1, f"k{i}", i % 3) for i in range(300)]  # precinct 0..2: an integer category
    df = spark.createDataFrame(rows, "ds date, id string, precinct int")
    aggs = summary_aggregations(df.schema, entity=["id"])
    (r,) = df.groupBy("ds").agg(*aggs).collect()
    got = {(x["column"], x["statistic"]): x for x in summary_rows("features/t", D1, r)}
    assert '"0": 100' in got[("precinct", "value_counts")]["detail"]
    assert got[("*", "dup_key_fraction")]["value"] >= 0 and got[("*", "dup_row_fraction")]["value"] >= 0


def test_summary_rows_of_an_empty_or_foreign_row():
    assert summary_rows("features/t", D1, {"other": 1}) == []
