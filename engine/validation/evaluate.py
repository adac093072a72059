"""MAP 2, the evaluation: every partition of a run against its suite, all partitions at once.

Fast path — one grouped aggregation per table (`groupBy(ds)`, one Spark job) computes every
metric the natively supported expectations need plus the per-column profile: row and null
counts, unexpected counts per expectation (values out of range / set, regex misses, ...),
min/max/mean/stddev, quantile sketches (KLL), approximate distinct counts and top values.
Every aggregate keeps a bounded buffer per (ds, column), so a partition larger than an
executor's memory streams. From the few aggregated rows, the driver asks **GX's own
expectation classes** for the verdict (`Expectation._validate(metrics)`), so success,
`mostly`, strict bounds, empty partitions and the result / observed_value formats are GX's
by construction; the engine only has to compute each metric the way GX's pandas metric
providers do (nulls and NaN are both missing, as GX pandas sees Spark's rows).

Exact distinct and duplicate counts (to_be_unique, unique_value_count, proportion of unique
values) need value-level counts: one more job, a shuffle aggregation over (ds, column, value)
that spills to disk, only when the suite has such expectations. An exact median needs one
more small job: the values in a narrow window around the sketch's median are counted.

Anything else — other expectation types, other column types, row conditions, Python-only
regex syntax — runs through GX itself: the pandas engine inside `groupBy(ds).applyInPandas`,
one GX run per partition, on the columns those expectations use (that path holds one
partition's used columns in memory).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from engine.validation.gxrun import FALLBACK_SCHEMA, fallback_udf, jsonable, validate_pandas
from engine.validation.suites import Check, Suite

log = logging.getLogger("retrain.validation")

PROFILE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Quantiles come from DataSketches KLL sketches (kll_sketch_agg_double, Spark >= 4.1): bounded
# memory, much cheaper per row than percentile_approx. Profile quantiles are estimates
# (k=200: ~1.3% rank error); for an exact median the sketch (k=4096: ~0.07% rank error) only
# brackets it: the values ranked 0.5 ± MEDIAN_WINDOW are counted exactly in a second pass.
PROFILE_SKETCH_K = 200
MEDIAN_SKETCH_K = 4096
MEDIAN_WINDOW = 2e-3
TOP_K = 5
RESULT_FORMAT = {"result_format": "BASIC"}


# --------------------------------------------------------------------------- results


@dataclass
class CheckOutcome:
    """One expectation on one partition: GX's verdict and result dict."""

    index: int  # the check's index in the suite
    ds: dt.date
    success: bool
    result: dict[str, Any]  # GX 'result' (BASIC format), JSON-safe
    exception: str | None = None  # GX raised while evaluating (success is then False)
    engine: str = "native"  # native (aggregation) | gx (GX pandas on the partition)

    @property
    def observed_value(self) -> Any:
        """GX's observed_value; for map expectations the counts GX reports instead."""
        if "observed_value" in self.result:
            return self.result["observed_value"]
        if "unexpected_count" in self.result:
            keys = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
            return {k: self.result[k] for k in keys if k in self.result}
        return None

    @property
    def unexpected_percent(self) -> float | None:
        value = self.result.get("unexpected_percent")
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class ColumnProfile:
    column: str
    dtype: str
    row_count: int
    null_fraction: float | None
    distinct_count: int | None  # approximate (HyperLogLog++)
    min: str | None
    max: str | None
    mean: float | None
    stddev: float | None
    quantiles: dict[float, float | None] = field(default_factory=dict)  # p05 .. p95 (approximate)
    top_values: list[dict[str, Any]] = field(default_factory=list)  # [{value, count}] (approximate)


@dataclass
class Evaluation:
    columns: list[str]
    outcomes: dict[dt.date, list[CheckOutcome]]  # in suite order
    profiles: dict[dt.date, list[ColumnProfile]]
    native_types: list[str]
    gx_types: list[str]
    jobs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per step: aggregation, value_counts, ...


# --------------------------------------------------------------------------- columns


def _kind(dtype) -> str:
    from pyspark.sql import types as T

    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "int"
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return "float"
    if isinstance(dtype, T.StringType):
        return "string"
    if isinstance(dtype, T.DateType):
        return "date"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return "timestamp"
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    return "other"


def q(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def sql_lit(value: Any) -> str:
    """A Python value as an exact Spark SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L" if abs(value) > 2**31 - 1 else str(value)
    if isinstance(value, float):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) else repr(value)
        return f"CAST('{text}' AS DOUBLE)"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


class Plan:
    """The metrics one grouped aggregation computes (Spark SQL aggregate expressions),
    deduplicated by key."""

    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds
        self.exprs: dict[tuple, str] = {}
        self.percentiles: dict[str, set[float]] = {}  # column -> quantile ranks (from a KLL sketch)
        self.distinct: set[str] = set()  # columns needing exact distinct / duplicate counts
        self.median: set[str] = set()  # columns needing the exact median

    def missing(self, c: str) -> str:
        """GX pandas' notion of missing: null, and NaN in floating columns."""
        return f"({q(c)} IS NULL OR isnan({q(c)}))" if self.kinds[c] == "float" else f"({q(c)} IS NULL)"

    def present(self, c: str) -> str:
        return f"(NOT {self.missing(c)})"

    def value(self, c: str) -> str:
        """The column with missing values as NULL (aggregates skip NULLs by themselves, so only
        NaN needs a guard: cheaper than a CASE on every row)."""
        return f"nanvl({q(c)}, NULL)" if self.kinds[c] == "float" else q(c)

    def add(self, key: tuple, expr: str) -> tuple:
        self.exprs.setdefault(key, expr)
        return key

    # shared metrics
    def rows(self) -> tuple:
        return self.add(("rows",), "count(1)")

    def nulls(self, c: str) -> tuple:
        return self.add(("missing", c), f"count(1) - count({self.value(c)})")

    def stat(self, name: str, c: str) -> tuple:
        fn = {"min": "min", "max": "max", "mean": "avg", "std": "stddev_samp"}[name]
        return self.add((name, c), f"{fn}({self.value(c)})")

    def quantiles(self, c: str, ps: Iterable[float]) -> None:
        self.percentiles.setdefault(c, set()).update(ps)


# --------------------------------------------------------------------------- native expectations


class Native:
    """How the engine evaluates one expectation type from aggregated metrics."""

    kinds: tuple[str, ...] = ()  # column kinds evaluated natively

    def unsupported(self, check: Check, kinds: dict[str, str]) -> str | None:
        """None if the engine evaluates this check itself, else why it goes to GX."""
        col = check.column
        if col is not None and col in kinds and kinds[col] not in self.kinds:
            return f"column type {kinds[col]}"
        return None

    def request(self, check: Check, plan: Plan) -> None:
        raise NotImplementedError

    def metrics(self, check: Check, m: "PartitionMetrics") -> dict[str, Any]:
        raise NotImplementedError


class _MapNative(Native):
    """ColumnMapExpectation: GX counts unexpected values among the non-missing ones."""

    examples = True

    def condition(self, check: Check, plan: Plan) -> str:  # SQL: the expected condition on present values
        raise NotImplementedError

    def request(self, check: Check, plan: Plan) -> None:
        c = check.column
        plan.rows()
        plan.nulls(c)
        bad = f"{plan.present(c)} AND NOT ({self.condition(check, plan)})"
        plan.add(("unexpected", check.index), f"count(CASE WHEN {bad} THEN 1 END)")
        if self.examples:
            plan.add(("unexpected_min", check.index), f"min(CASE WHEN {bad} THEN {q(c)} END)")
            plan.add(("unexpected_max", check.index), f"max(CASE WHEN {bad} THEN {q(c)} END)")

    def unexpected(self, check: Check, m: "PartitionMetrics") -> int:
        return m.get(("unexpected", check.index), 0)

    def metrics(self, check: Check, m: "PartitionMetrics") -> dict[str, Any]:
        mm = check.expectation.map_metric
        unexpected = self.unexpected(check, m)
        out = {
            "table.row_count": m.rows,
            "column_values.nonnull.unexpected_count": m.get(("missing", check.column), 0),
            f"{mm}.unexpected_count": unexpected,
        }
        if self.examples:
            ex = [m.get(("unexpected_min", check.index)), m.get(("unexpected_max", check.index))]
            out[f"{mm}.unexpected_values"] = list(dict.fromkeys(v for v in ex if v is not None)) if unexpected else []
        return out


class NotNull(_MapNative):
    kinds = ("int", "float", "string", "date", "timestamp", "boolean", "other")
    examples = False

    def request(self, check: Check, plan: Plan) -> None:
        plan.rows()
        plan.nulls(check.column)

    def unexpected(self, check: Check, m: "PartitionMetrics") -> int:
        return m.get(("missing", check.column), 0)


class Null(NotNull):
    def unexpected(self, check: Check, m: "PartitionMetrics") -> int:
        return m.rows - m.get(("missing", check.column), 0)


class Between(_MapNative):
    kinds = ("int", "float", "date")

    def unsupported(self, check, kinds):
        why = super().unsupported(check, kinds)
        if why:
            return why
        e = check.expectation
        lo, hi = e.min_value, e.max_value
        bounds = [b for b in (lo, hi) if b is not None]
        if kinds.get(check.column) == "date":
            ok = all(type(b) is dt.date for b in bounds)
        else:
            ok = all(_is_number(b) for b in bounds)
        if not ok:
            return "bounds of another type than the column"
        if lo is not None and hi is not None and lo > hi:
            return "min_value > max_value (GX reports the error)"
        if not isinstance(e.strict_min, bool) or not isinstance(e.strict_max, bool):
            return "strict_min/strict_max not booleans"
        return None

    def condition(self, check, plan):
        e = check.expectation
        col = q(check.column)
        parts = ["true"]
        if e.min_value is not None:
            parts.append(f"{col} {'>' if e.strict_min else '>='} {sql_lit(e.min_value)}")
        if e.max_value is not None:
            parts.append(f"{col} {'<' if e.strict_max else '<='} {sql_lit(e.max_value)}")
        return " AND ".join(parts)


class InSet(_MapNative):
    kinds = ("int", "float", "string")
    negate = False

    def unsupported(self, check, kinds):
        why = super().unsupported(check, kinds)
        if why:
            return why
        values = check.expectation.value_set
        if not isinstance(values, list):
            return "value_set is not a list"
        if kinds.get(check.column) == "string":
            ok = all(isinstance(v, str) for v in values)
        else:
            ok = all(_is_number(v) for v in values)
        return None if ok else "value_set of another type than the column"

    def condition(self, check, plan):
        values = list(check.expectation.value_set)
        inside = f"{q(check.column)} IN ({', '.join(sql_lit(v) for v in values)})" if values else "false"
        return f"NOT ({inside})" if self.negate else inside


class NotInSet(InSet):
    negate = True


_JAVA_ONLY_OR_DIFFERENT = re.compile(r"\(\?P|\(\?<[A-Za-z]|\\[ZzpPhHRXvVQE]|\[\[|&&|\\0|\\x\{|\(\?[a-z]*[dux]")


class MatchRegex(_MapNative):
    kinds = ("string",)

    def unsupported(self, check, kinds):
        why = super().unsupported(check, kinds)
        if why:
            return why
        regex = check.expectation.regex
        if not isinstance(regex, str):
            return "regex is not a string"
        try:
            re.compile(regex)
        except re.error:
            return "not a Python regex (GX reports the error)"
        if _JAVA_ONLY_OR_DIFFERENT.search(regex):
            return "regex syntax that Java and Python read differently"
        return None

    def condition(self, check, plan):
        return f"{q(check.column)} RLIKE {sql_lit(check.expectation.regex)}"


class Unique(_MapNative):
    kinds = ("int", "float", "string", "date")
    examples = False

    def request(self, check, plan):
        plan.rows()
        plan.nulls(check.column)
        plan.distinct.add(check.column)

    def unexpected(self, check, m):
        return m.get(("dup_rows", check.column), 0)


class _Aggregate(Native):
    kinds = ("int", "float")
    metric = ""

    def unsupported(self, check, kinds):
        why = super().unsupported(check, kinds)
        if why:
            return why
        e = check.expectation
        if not all(b is None or _is_number(b) for b in (e.min_value, e.max_value)):
            return "bounds that are not numbers"
        return None


class ColumnStat(_Aggregate):
    def __init__(self, stat: str, metric: str):
        self.stat, self.metric = stat, metric

    def request(self, check, plan):
        plan.stat(self.stat, check.column)

    def metrics(self, check, m):
        return {self.metric: m.get((self.stat, check.column))}


class Median(_Aggregate):
    metric = "column.median"

    def request(self, check, plan):
        plan.rows()
        plan.nulls(check.column)
        plan.quantiles(check.column, (0.5 - MEDIAN_WINDOW, 0.5 + MEDIAN_WINDOW))
        plan.median.add(check.column)

    def metrics(self, check, m):
        return {self.metric: m.get(("median", check.column))}


class DistinctCount(_Aggregate):
    kinds = ("int", "float", "string", "date")
    metric = "column.distinct_values.count"

    def unsupported(self, check, kinds):
        return Native.unsupported(self, check, kinds) or _Aggregate.unsupported(self, check, kinds)

    def request(self, check, plan):
        plan.rows()
        plan.nulls(check.column)
        plan.distinct.add(check.column)

    def metrics(self, check, m):
        return {self.metric: m.get(("distinct", check.column), 0)}


class UniqueProportion(DistinctCount):
    metric = "column.unique_proportion"

    def metrics(self, check, m):
        from great_expectations.expectations.metrics.column_aggregate_metrics.column_proportion_of_unique_values import (
            unique_proportion,
        )

        return {self.metric: unique_proportion({
            "table.row_count": m.rows,
            "column.distinct_values.count": m.get(("distinct", check.column), 0),
            "column_values.nonnull.unexpected_count": m.get(("missing", check.column), 0),
        })}


class RowCount(Native):
    def unsupported(self, check, kinds):
        e = check.expectation
        if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in (e.min_value, e.max_value)):
            return "bounds that are not integers"
        return None

    def request(self, check, plan):
        plan.rows()

    def metrics(self, check, m):
        return {"table.row_count": m.rows}


class TableColumns(Native):
    def unsupported(self, check, kinds):
        return None

    def request(self, check, plan):
        pass

    def metrics(self, check, m):
        return {"table.columns": list(m.columns)}


NATIVE: dict[str, Native] = {
    "expect_column_values_to_not_be_null": NotNull(),
    "expect_column_values_to_be_null": Null(),
    "expect_column_values_to_be_between": Between(),
    "expect_column_values_to_be_in_set": InSet(),
    "expect_column_values_to_not_be_in_set": NotInSet(),
    "expect_column_values_to_be_unique": Unique(),
    "expect_column_values_to_match_regex": MatchRegex(),
    "expect_column_min_to_be_between": ColumnStat("min", "column.min"),
    "expect_column_max_to_be_between": ColumnStat("max", "column.max"),
    "expect_column_mean_to_be_between": ColumnStat("mean", "column.mean"),
    "expect_column_stdev_to_be_between": ColumnStat("std", "column.standard_deviation"),
    "expect_column_median_to_be_between": Median(),
    "expect_column_unique_value_count_to_be_between": DistinctCount(),
    "expect_column_proportion_of_unique_values_to_be_between": UniqueProportion(),
    "expect_table_row_count_to_be_between": RowCount(),
    "expect_table_columns_to_match_set": TableColumns(),
    "expect_column_to_exist": TableColumns(),
}

# kwargs the native path understands; anything else (row_condition, ...) goes to GX
_GENERIC_KWARGS = {"column", "mostly", "min_value", "max_value", "strict_min", "strict_max", "value_set",
                   "regex", "column_set", "exact_match", "column_index", "result_format", "catch_exceptions",
                   "meta", "severity"}


def supported_types() -> list[str]:
    """Expectation types the engine evaluates from its aggregation (others run through GX)."""
    return sorted(NATIVE)


def route(check: Check, kinds: dict[str, str]) -> str | None:
    """None when the engine evaluates `check` natively, else the reason it runs through GX."""
    native = NATIVE.get(check.type)
    if native is None:
        return "type not evaluated by the engine"
    extra = set(check.kwargs) - _GENERIC_KWARGS
    if extra:
        return f"kwargs {sorted(extra)}"
    if check.kwargs.get("row_condition") or check.kwargs.get("condition_parser"):
        return "row_condition"
    return native.unsupported(check, kinds)


# --------------------------------------------------------------------------- metrics of a partition


class PartitionMetrics:
    def __init__(self, columns: list[str], values: dict[tuple, Any] | None = None):
        self.columns = columns
        self.values = values or {}

    @property
    def rows(self) -> int:
        return int(self.values.get(("rows",), 0) or 0)

    def get(self, key: tuple, default: Any = None) -> Any:
        value = self.values.get(key, default)
        return default if value is None else value


# --------------------------------------------------------------------------- evaluation


def evaluate(spark, df, suite: Suite | None, dates: list[dt.date], *, profile: bool = True) -> Evaluation:
    """Validate every `ds` partition of `df` listed in `dates` (a date with no rows is an
    empty partition) and profile its columns. Spark work: one grouped aggregation, plus one
    value-count job when the suite needs exact distinct counts or medians, plus one
    applyInPandas job when some expectations run through GX."""
    from pyspark.sql import functions as F

    dates = sorted(set(dates))
    columns = list(df.columns)
    kinds = {f.name: _kind(f.dataType) for f in df.schema.fields}
    dtypes = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    checks = suite.checks if suite else []
    native, gx = [], []
    for check in checks:
        why = route(check, kinds)
        if why is None:
            native.append(check)
        else:
            gx.append(check)
            log.debug("validation: %s (#%d) runs through GX: %s", check.type, check.index, why)

    plan = Plan(kinds)
    plan.rows()
    missing_column: dict[int, str] = {}
    for check in native:
        c = check.column
        if c is not None and check.type != "expect_column_to_exist" and c not in kinds:
            missing_column[check.index] = c
            continue
        NATIVE[check.type].request(check, plan)
    profiled = [c for c in columns if c != "ds"] if profile else []
    for c in profiled:
        _request_profile(plan, c)

    part = df.where(F.col("ds").isin(dates)) if dates else df.limit(0)
    metrics = {d: PartitionMetrics(columns) for d in dates}
    jobs = 0
    # ---- job 1: the grouped aggregation
    keys = list(plan.exprs)
    pct_cols = sorted(plan.percentiles)
    exprs = [F.expr(plan.exprs[k]).alias(f"m{i}") for i, k in enumerate(keys)]
    for j, c in enumerate(pct_cols):
        ps = ", ".join(sql_lit(float(p)) for p in sorted(plan.percentiles[c]))
        k = MEDIAN_SKETCH_K if c in plan.median else PROFILE_SKETCH_K
        value = plan.value(c)
        exprs.append(F.expr(
            f"CASE WHEN count({value}) > 0 THEN kll_sketch_get_quantile_double("
            f"kll_sketch_agg_double(CAST({value} AS DOUBLE), {k}), array({ps})) END"
        ).alias(f"q{j}"))
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    rows = part.groupBy("ds").agg(*exprs).collect() if dates else []
    jobs += 1
    seconds["aggregation"] = time.perf_counter() - clock
    for row in rows:
        values = {k: row[f"m{i}"] for i, k in enumerate(keys)}
        for j, c in enumerate(pct_cols):
            qs = row[f"q{j}"]
            if qs is not None:
                values[("pct", c)] = dict(zip(sorted(plan.percentiles[c]), qs))
        metrics[row["ds"]] = PartitionMetrics(columns, values)

    # ---- job 2: exact distinct / duplicate counts; job 3: exact medians
    if plan.distinct:
        clock = time.perf_counter()
        jobs += _value_counts(part, plan, metrics)
        seconds["value_counts"] = time.perf_counter() - clock
    if plan.median:
        clock = time.perf_counter()
        jobs += _medians(part, plan, metrics)
        seconds["medians"] = time.perf_counter() - clock

    # ---- verdicts from GX's own expectation classes
    outcomes: dict[dt.date, dict[int, CheckOutcome]] = {d: {} for d in dates}
    for d in dates:
        m = metrics[d]
        for check in native:
            if check.index in missing_column:
                outcomes[d][check.index] = CheckOutcome(
                    check.index, d, False, {}, f'column "{missing_column[check.index]}" does not exist', "native")
                continue
            outcomes[d][check.index] = _verdict(check, NATIVE[check.type].metrics(check, m), d)

    # ---- job 3: GX itself for the rest
    if gx and dates:
        jobs += 1
        clock = time.perf_counter()
        for o in _run_gx(spark, part, gx, columns, dates):
            outcomes[o.ds][o.index] = o
        seconds["gx"] = time.perf_counter() - clock

    profiles = {d: [_profile(c, dtypes[c], kinds[c], metrics[d]) for c in profiled] for d in dates}
    ordered = {d: [outcomes[d][c.index] for c in checks] for d in dates}
    return Evaluation(columns=columns, outcomes=ordered, profiles=profiles,
                      native_types=sorted({c.type for c in native}), gx_types=sorted({c.type for c in gx}),
                      jobs=jobs, seconds=seconds)


def _verdict(check: Check, gx_metrics: dict[str, Any], ds: dt.date) -> CheckOutcome:
    """GX's verdict for a check from metrics the engine computed (GX's `_validate`)."""
    try:
        out = check.expectation._validate(metrics=gx_metrics, runtime_configuration=RESULT_FORMAT,
                                          execution_engine=None)
    except Exception as e:  # GX catches exceptions per expectation (catch_exceptions=True)
        return CheckOutcome(check.index, ds, False, {}, f"{type(e).__name__}: {e}", "native")
    return CheckOutcome(check.index, ds, bool(out.get("success")), jsonable(out.get("result") or {}), None, "native")


def _value_counts(part, plan: Plan, metrics: dict[dt.date, PartitionMetrics]) -> int:
    """Exact distinct counts and duplicate row counts (values appearing more than once).

    One shuffle aggregation over (ds, column, value) — present values of every column that
    needs them, exploded into one stream — then per (ds, column); hash aggregation spills to
    disk, so a partition larger than memory is fine. Only per-column totals reach the driver."""
    from pyspark.sql import functions as F

    elements = []
    for c in sorted(plan.distinct):
        col = q(c)
        if plan.kinds[c] == "float":  # -0.0 and 0.0 are one value for pandas
            col = f"CASE WHEN {col} = 0 THEN CAST(0.0 AS DOUBLE) ELSE CAST({col} AS DOUBLE) END"
        elements.append(f"CASE WHEN {plan.present(c)} THEN named_struct('c', {sql_lit(c)}, 'v', CAST({col} AS STRING)) END")
    exploded = (part.select("ds", F.explode(F.expr(f"array({', '.join(elements)})")).alias("e"))
                .where(F.col("e").isNotNull())
                .select("ds", F.col("e.c").alias("c"), F.col("e.v").alias("v")))
    per_value = exploded.groupBy("ds", "c", "v").agg(F.count(F.lit(1)).alias("n"))
    totals = per_value.groupBy("ds", "c").agg(
        F.count(F.lit(1)).alias("values"),
        F.sum(F.when(F.col("n") > 1, F.col("n")).otherwise(0)).alias("dup_rows"),
    ).collect()
    for r in totals:
        m = metrics[r["ds"]]
        m.values[("distinct", r["c"])] = int(r["values"])
        m.values[("dup_rows", r["c"])] = int(r["dup_rows"])
    return 1


def _medians(part, plan: Plan, metrics: dict[dt.date, PartitionMetrics]) -> int:
    """Exact medians, as pandas computes them, without sorting a partition.

    The sketch gave lo = q(0.5 - w) and hi = q(0.5 + w) per partition (a tiny table,
    broadcast-joined on ds). One grouped aggregation counts the values below lo, equal to lo
    and equal to hi, and collects the values strictly between (about 2w of the partition:
    bounded); the middle ranks are then read off on the driver. If the sketch missed (it
    holds w.h.p.), Spark's exact percentile computes that median instead."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns = sorted(plan.median)
    bounds = []
    for d, m in metrics.items():
        row: list[Any] = [d]
        for c in columns:
            qs = m.get(("pct", c))
            row += [float(qs[0.5 - MEDIAN_WINDOW]), float(qs[0.5 + MEDIAN_WINDOW])] if qs else [None, None]
        if any(v is not None for v in row[1:]):
            bounds.append(tuple(row))
    if not bounds:
        return 0
    schema = T.StructType([T.StructField("ds", T.DateType())] + [
        T.StructField(f"{side}{j}", T.DoubleType()) for j in range(len(columns)) for side in ("lo", "hi")])
    table = part.sparkSession.createDataFrame(bounds, schema)
    exprs = []
    for j, c in enumerate(columns):
        x, present, lo, hi = f"CAST({q(c)} AS DOUBLE)", plan.present(c), f"lo{j}", f"hi{j}"
        exprs += [
            F.expr(f"first({lo})").alias(f"lo{j}"),
            F.expr(f"first({hi})").alias(f"hi{j}"),
            F.expr(f"count(CASE WHEN {present} AND {x} < {lo} THEN 1 END)").alias(f"below{j}"),
            F.expr(f"count(CASE WHEN {present} AND {x} = {lo} THEN 1 END)").alias(f"at_lo{j}"),
            F.expr(f"count(CASE WHEN {present} AND {x} = {hi} THEN 1 END)").alias(f"at_hi{j}"),
            F.expr(f"collect_list(CASE WHEN {present} AND {x} > {lo} AND {x} < {hi} THEN {x} END)").alias(f"in{j}"),
        ]
    joined = part.join(F.broadcast(table), on="ds", how="inner")
    unresolved: list[tuple[dt.date, str]] = []
    for r in joined.groupBy("ds").agg(*exprs).collect():
        m = metrics[r["ds"]]
        for j, c in enumerate(columns):
            lo, hi = r[f"lo{j}"], r[f"hi{j}"]
            if lo is None:
                continue
            window = [(lo, int(r[f"at_lo{j}"]))] + [(v, 1) for v in r[f"in{j}"]]
            if hi != lo:
                window.append((hi, int(r[f"at_hi{j}"])))
            n = m.rows - m.get(("missing", c), 0)
            value = _median_from_window(n, int(r[f"below{j}"]), window)
            if value is None:
                unresolved.append((r["ds"], c))
            else:
                m.values[("median", c)] = value
    if not unresolved:
        return 1
    log.info("validation: exact median fallback for %d partition columns", len(unresolved))
    for c in sorted({c for _, c in unresolved}):
        ds_list = [d for d, cc in unresolved if cc == c]
        rows = (part.where(F.col("ds").isin(ds_list)).where(plan.present(c))
                .groupBy("ds").agg(F.expr(f"percentile(CAST({q(c)} AS DOUBLE), 0.5)").alias("med")).collect())
        for r in rows:
            metrics[r["ds"]].values[("median", c)] = float(r["med"])
    return 2


def _median_from_window(n: int, below: int, window: list[tuple[float, int]]) -> float | None:
    """The exact median (pandas: mean of the two middle values when n is even) from the
    value counts of a window of sorted values that starts at rank `below`; None if the
    window does not hold both middle ranks."""
    if n <= 0:
        return None
    k1, k2 = (n - 1) // 2, n // 2
    picked: dict[int, float] = {}
    rank = below
    for value, count in sorted(window):
        for k in (k1, k2):
            if rank <= k < rank + count:
                picked[k] = value
        rank += count
    if k1 not in picked or k2 not in picked:
        return None
    return float(picked[k1]) if k1 == k2 else (float(picked[k1]) + float(picked[k2])) / 2


def _run_gx(spark, part, checks: list[Check], columns: list[str], dates: list[dt.date]) -> list[CheckOutcome]:
    """GX (pandas engine) on each partition, inside applyInPandas; on the driver for empty ones."""
    from pyspark.sql import functions as F

    used: set[str] = {"ds"}
    whole = False
    for check in checks:
        names = []
        for key in ("column", "column_A", "column_B"):
            if isinstance(check.kwargs.get(key), str):
                names.append(check.kwargs[key])
        for key in ("column_list",):
            if isinstance(check.kwargs.get(key), list):
                names += [n for n in check.kwargs[key] if isinstance(n, str)]
        if not names or check.type.startswith("expect_table_") or check.kwargs.get("row_condition"):
            whole = True
        used.update(n for n in names if n in columns)
    selected = columns if whole else [c for c in columns if c in used]
    exps = [c.as_json() for c in checks]
    idx = [c.index for c in checks]
    frame = part.select(*[F.col(q(c)) for c in selected])
    rows = frame.groupBy("ds").applyInPandas(fallback_udf(exps, idx), FALLBACK_SCHEMA).collect()
    out = [CheckOutcome(r["idx"], r["ds"], bool(r["success"]), json.loads(r["result"]), r["exception"], "gx")
           for r in rows]
    seen = {r["ds"] for r in rows}
    empty = [d for d in dates if d not in seen]
    if empty:
        pdf = frame.limit(0).toPandas()
        results = validate_pandas(pdf, exps)
        for d in empty:
            for i, r in zip(idx, results):
                out.append(CheckOutcome(i, d, r["success"], r["result"], r["exception"], "gx"))
    return out


# --------------------------------------------------------------------------- profiles


def _request_profile(plan: Plan, c: str) -> None:
    kind = plan.kinds[c]
    plan.rows()
    plan.nulls(c)
    plan.add(("approx_distinct", c), f"approx_count_distinct({plan.value(c)})")
    if kind in ("int", "float", "string", "date", "timestamp", "boolean"):
        plan.stat("min", c)
        plan.stat("max", c)
    if kind in ("int", "float"):
        plan.stat("mean", c)
        plan.stat("std", c)
        plan.quantiles(c, PROFILE_QUANTILES)
    if kind in ("int", "string", "boolean"):
        plan.add(("topk", c), f"approx_top_k({plan.value(c)}, {TOP_K}, 256)")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _profile(c: str, dtype: str, kind: str, m: PartitionMetrics) -> ColumnProfile:
    rows = m.rows
    nulls = m.get(("missing", c), 0)
    q = m.get(("pct", c)) or {}
    top = [{"value": jsonable(t["item"]), "count": int(t["count"])}
           for t in (m.get(("topk", c)) or []) if t["item"] is not None]
    return ColumnProfile(
        column=c, dtype=dtype, row_count=rows,
        null_fraction=(nulls / rows) if rows else None,
        distinct_count=int(m.get(("approx_distinct", c), 0)) if ("approx_distinct", c) in m.values else None,
        min=_text(m.get(("min", c))), max=_text(m.get(("max", c))),
        mean=_num(m.get(("mean", c))), stddev=_num(m.get(("std", c))),
        quantiles={p: _num(q.get(p)) for p in PROFILE_QUANTILES} if kind in ("int", "float") else {},
        top_values=top,
    )
