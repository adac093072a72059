"""Partition summaries for learned checks (the map side).

`summary_aggregations` returns Spark aggregate expressions meant to ride in the validation
stage's one `groupBy("ds").agg(...)` (no extra scan of the feature table); `summary_rows`
turns one aggregated row into long-format rows of `validation/summaries`
(run_id, table, column, statistic, value, detail, ds; column '*' = table-level).

Each expression is aliased `learned::<kind>::<statistic>::<column>`; `kind` says how the
aggregated value becomes rows (a number, a quantile array, value counts, a fingerprint).
Statistics are chosen for what engineering faults change:

table ('*')        row_count, dup_key_fraction (entity key), dup_row_fraction,
                   fingerprint (order-independent hash of the source columns: a stale copy
                   of another day has the same one), lag_mean/lag_p05/p50/p95 (hours between
                   the event time and ds), lag_future_fraction
every column       null_fraction
numeric            zero_fraction, negative_fraction, distinct, min, max, mean, stddev,
                   p05..p95, mode_share (constant fill, sentinel values)
int, boolean       value_counts too (a coded category: the driver keeps value shares of a
                   column with few values)
string             mode_share, mean_length, upper_share, lower_share, digit_share,
                   space_share, value_counts (detail JSON: the driver derives the share of
                   values unseen in history and case/format variants of seen values)
segment column     share:<value> per segment (a partial load of one segment)
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Iterable, Mapping

from engine.validation.plan import kind_of, q

# relative standard deviation of the approximate distinct count behind the duplicate fractions
# (HyperLogLog++): their measurement noise, which learned checks take as a floor of their scale
DUP_RSD = 0.01

PREFIX = "learned::"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SKETCH_K = 200
VALUE_COUNTS_K = 50  # value counts kept per string column (the most frequent ones)
VALUE_COUNTS_TRACKED = 1024
SEGMENTS_K = 200
TABLE = "*"
FINGERPRINT_MOD = 4294967291  # largest prime below 2**32: sums of up to 2**31 rows fit a long

NUMERIC = ("int", "float")


def _kinds(schema) -> dict[str, str]:
    return {f.name: kind_of(f.dataType) for f in schema.fields}


def _alias(kind: str, statistic: str, column: str) -> str:
    return f"{PREFIX}{kind}::{statistic}::{column}"


def summary_aggregations(schema, *, entity: Iterable[str] = (), event_time: str | None = None,
                         segment_columns: Iterable[str] = (), source_columns: Iterable[str] = (),
                         columns: Iterable[str] | None = None) -> list:
    """Aggregate expressions (pyspark Columns) over one partition, for `groupBy("ds").agg`.

    schema: the feature table's schema; entity: its key columns; event_time: the column whose
    lag to ds is summarized; segment_columns: columns whose per-value row shares are kept;
    source_columns: columns copied from the source (fingerprinted); columns: the columns to
    summarize (default: all but ds)."""
    from pyspark.sql import functions as F

    kinds = _kinds(schema)
    names = [c for c in (columns if columns is not None else kinds) if c != "ds" and c in kinds]
    out: list = []

    def add(kind: str, statistic: str, column: str, expr: str) -> None:
        out.append(F.expr(expr).alias(_alias(kind, statistic, column)))

    add("number", "row_count", TABLE, "count(1)")
    entity = [c for c in entity if c in kinds]
    if entity:
        key = ", ".join(q(c) for c in entity)
        # an approximate distinct count may exceed the row count: never a negative fraction
        add("fraction", "dup_key_fraction", TABLE,
            f"CASE WHEN count(1) = 0 THEN NULL ELSE greatest(0D, 1 - approx_count_distinct(xxhash64({key}), {DUP_RSD}) "
            f"/ count(1)) END")
    every = ", ".join(q(c) for c in kinds if c != "ds")
    if every:
        add("fraction", "dup_row_fraction", TABLE,
            f"CASE WHEN count(1) = 0 THEN NULL ELSE greatest(0D, 1 - approx_count_distinct(xxhash64({every}), {DUP_RSD}) "
            f"/ count(1)) END")
    sources = [c for c in source_columns if c in kinds and c != "ds"] or [c for c in kinds if c != "ds"]
    add("fingerprint", "fingerprint", TABLE,
        f"sum(pmod(xxhash64({', '.join(q(c) for c in sources)}), {FINGERPRINT_MOD}))")
    if event_time and event_time in kinds:
        lag = (f"((unix_timestamp(CAST(ds AS TIMESTAMP)) - unix_timestamp(CAST({q(event_time)} AS TIMESTAMP)))"
               f" / 3600.0)")
        add("number", "lag_mean", TABLE, f"avg({lag})")
        add("fraction", "lag_future_fraction", TABLE,
            f"CASE WHEN count(1) = 0 THEN NULL ELSE count_if({lag} < -24) / count(1) END")
        add("quantiles", "lag", TABLE, _quantiles(f"CAST({lag} AS DOUBLE)"))

    for c in names:
        kind = kinds[c]
        v = f"nanvl({q(c)}, NULL)" if kind == "float" else q(c)
        add("fraction", "null_fraction", c, f"CASE WHEN count(1) = 0 THEN NULL ELSE 1 - count({v}) / count(1) END")
        if kind in NUMERIC or kind == "boolean":
            x = f"CAST({v} AS DOUBLE)"
            add("fraction", "zero_fraction", c, f"CASE WHEN count({v}) = 0 THEN NULL ELSE count_if({x} = 0) / count({v}) END")
            add("fraction", "negative_fraction", c, f"CASE WHEN count({v}) = 0 THEN NULL ELSE count_if({x} < 0) / count({v}) END")
            add("count", "distinct", c, f"approx_count_distinct({v})")
            for stat, fn in (("min", "min"), ("max", "max"), ("mean", "avg"), ("stddev", "stddev_samp")):
                add("number", stat, c, f"{fn}({x})")
            add("quantiles", "", c, _quantiles(x))
            add("mode", "mode_share", c, f"approx_top_k({x}, 1, 256)")
            if kind == "int" or kind == "boolean":  # a coded category (precinct 1..5): its value shares
                add("counts", "value_counts", c, f"approx_top_k(CAST({v} AS STRING), {VALUE_COUNTS_K}, "
                                                 f"{VALUE_COUNTS_TRACKED})")
        elif kind == "string":
            add("mode", "mode_share", c, f"approx_top_k({v}, 1, 256)")
            add("number", "mean_length", c, f"avg(length({v}))")
            for stat, cond in (
                ("upper_share", f"{v} = upper({v}) AND {v} <> lower({v})"),
                ("lower_share", f"{v} = lower({v}) AND {v} <> upper({v})"),
                ("digit_share", f"{v} RLIKE '[0-9]'"),
                ("space_share", f"{v} RLIKE '^\\\\s|\\\\s$|\\\\s\\\\s'"),
            ):
                add("fraction", stat, c, f"CASE WHEN count({v}) = 0 THEN NULL ELSE count_if({cond}) / count({v}) END")
            add("counts", "value_counts", c, f"approx_top_k({v}, {VALUE_COUNTS_K}, {VALUE_COUNTS_TRACKED})")
    for c in segment_columns:
        if c in kinds:
            add("shares", "share", c, f"approx_top_k(CAST({q(c)} AS STRING), {SEGMENTS_K}, {4 * SEGMENTS_K})")
    return out


def _quantiles(x: str) -> str:
    ps = ", ".join(repr(float(p)) for p in QUANTILES)
    return (f"CASE WHEN count({x}) > 0 THEN kll_sketch_get_quantile_double("
            f"kll_sketch_agg_double({x}, {SKETCH_K}), array({ps})) END")


def quantile_name(p: float) -> str:
    return f"p{round(p * 100):02d}"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _item(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def summary_rows(table: str, ds: dt.date, agg_row: Mapping[str, Any] | Any, *, run_id: str = "") -> list[dict]:
    """Long-format `validation/summaries` rows from one aggregated row (a pyspark Row or a
    mapping holding at least the aliases of `summary_aggregations`; other keys are ignored)."""
    values = agg_row.asDict() if hasattr(agg_row, "asDict") else dict(agg_row)
    rows_count = _num(values.get(_alias("number", "row_count", TABLE))) or 0.0
    out: list[dict] = []

    def row(column: str, statistic: str, value: float | None, detail: Any = None) -> None:
        out.append({"run_id": run_id, "table": table, "column": column, "statistic": statistic,
                    "value": value, "detail": None if detail is None else json.dumps(detail, sort_keys=True),
                    "ds": ds})

    for alias, value in values.items():
        if not alias.startswith(PREFIX):
            continue
        kind, statistic, column = alias[len(PREFIX):].split("::", 2)
        if kind in ("number", "fraction", "count"):
            row(column, statistic, _num(value))
        elif kind == "fingerprint":
            row(column, statistic, _num(value), None if value is None else str(int(value)))
        elif kind == "quantiles":
            prefix = f"{statistic}_" if statistic else ""
            for p, v in zip(QUANTILES, value or [None] * len(QUANTILES)):
                row(column, prefix + quantile_name(p), _num(v))
        elif kind == "mode":
            top = [t for t in (value or []) if t["item"] is not None]
            row(column, statistic, (top[0]["count"] / rows_count) if top and rows_count else None)
        elif kind == "counts":
            counts = {_item(t["item"]): int(t["count"]) for t in (value or []) if t["item"] is not None}
            row(column, statistic, float(sum(counts.values())), counts)
        elif kind == "shares":
            for t in value or []:
                if t["item"] is not None and rows_count:
                    row(column, f"share:{_item(t['item'])}", t["count"] / rows_count)
    return out
