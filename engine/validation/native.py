"""The expectation types the engine evaluates from its grouped aggregation.

Each `Native` says which metrics a check needs (`request`, into the Plan) and hands GX the
metrics it computed (`metrics`), in the names GX's own metric providers use, so that GX's
expectation class gives the verdict (gx_adapter.verdict). `route` says why a check goes to
GX itself instead (another type, column type, kwargs such as row_condition, regex syntax
Java and Python read differently).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from engine.validation import gx_adapter
from engine.validation.plan import PartitionMetrics, Plan, is_number, q, sql_lit
from engine.validation.suites import Check

# An exact median: the KLL sketch (k=MEDIAN_SKETCH_K: ~0.07% rank error) brackets it; the
# values ranked 0.5 ± MEDIAN_WINDOW are counted exactly in the exact pass (exact.py).
MEDIAN_SKETCH_K = 4096
MEDIAN_WINDOW = 2e-3
ALL_KINDS = ("int", "float", "string", "date", "timestamp", "boolean", "other")


class Native:
    """How the engine evaluates one expectation type from aggregated metrics."""

    kinds: tuple[str, ...] = ()  # column kinds evaluated natively

    def unsupported(self, check: Check, kinds: dict[str, str]) -> str | None:
        """None if the engine evaluates this check itself, else why it goes to GX."""
        col = check.column
        if col is not None and col in kinds and kinds[col] not in self.kinds:
            return f"column type {kinds[col]}"
        return self.arguments(check, kinds)

    def arguments(self, check: Check, kinds: dict[str, str]) -> str | None:
        """Why the expectation's arguments keep it from the engine (None: they do not)."""
        return None

    def request(self, check: Check, plan: Plan) -> None:
        raise NotImplementedError

    def metrics(self, check: Check, m: PartitionMetrics) -> dict[str, Any]:
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
        if self.examples:  # three aggregates test the condition: evaluate it once per row
            bad = plan.flag(bad)
        plan.add(("unexpected", check.index), f"count(CASE WHEN {bad} THEN 1 END)")
        if self.examples:
            plan.add(("unexpected_min", check.index), f"min(CASE WHEN {bad} THEN {q(c)} END)")
            plan.add(("unexpected_max", check.index), f"max(CASE WHEN {bad} THEN {q(c)} END)")

    def unexpected(self, check: Check, m: PartitionMetrics) -> int:
        return m.get(("unexpected", check.index), 0)

    def metrics(self, check: Check, m: PartitionMetrics) -> dict[str, Any]:
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
    kinds = ALL_KINDS
    examples = False

    def request(self, check: Check, plan: Plan) -> None:
        plan.rows()
        plan.nulls(check.column)

    def unexpected(self, check: Check, m: PartitionMetrics) -> int:
        return m.get(("missing", check.column), 0)


class Null(NotNull):
    def unexpected(self, check: Check, m: PartitionMetrics) -> int:
        return m.rows - m.get(("missing", check.column), 0)


class Between(_MapNative):
    kinds = ("int", "float", "date")

    def arguments(self, check, kinds):
        e = check.expectation
        lo, hi = e.min_value, e.max_value
        bounds = [b for b in (lo, hi) if b is not None]
        if kinds.get(check.column) == "date":
            ok = all(type(b) is dt.date for b in bounds)
        else:
            ok = all(is_number(b) for b in bounds)
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

    def arguments(self, check, kinds):
        values = check.expectation.value_set
        if not isinstance(values, list):
            return "value_set is not a list"
        if kinds.get(check.column) == "string":
            ok = all(isinstance(v, str) for v in values)
        else:
            ok = all(is_number(v) for v in values)
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

    def arguments(self, check, kinds):
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

    def arguments(self, check, kinds):
        e = check.expectation
        if not all(b is None or is_number(b) for b in (e.min_value, e.max_value)):
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
        window = (0.5 - MEDIAN_WINDOW, 0.5 + MEDIAN_WINDOW)
        plan.quantiles(check.column, window)
        plan.median[check.column] = window

    def metrics(self, check, m):
        return {self.metric: m.get(("median", check.column))}


class DistinctCount(_Aggregate):
    kinds = ("int", "float", "string", "date")
    metric = "column.distinct_values.count"

    def request(self, check, plan):
        plan.rows()
        plan.nulls(check.column)
        plan.distinct.add(check.column)

    def metrics(self, check, m):
        return {self.metric: m.get(("distinct", check.column), 0)}


class UniqueProportion(DistinctCount):
    metric = "column.unique_proportion"

    def metrics(self, check, m):
        return {self.metric: gx_adapter.unique_proportion({
            "table.row_count": m.rows,
            "column.distinct_values.count": m.get(("distinct", check.column), 0),
            "column_values.nonnull.unexpected_count": m.get(("missing", check.column), 0),
        })}


class RowCount(Native):
    def arguments(self, check, kinds):
        e = check.expectation
        if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in (e.min_value, e.max_value)):
            return "bounds that are not integers"
        return None

    def request(self, check, plan):
        plan.rows()

    def metrics(self, check, m):
        return {"table.row_count": m.rows}


class TableColumns(Native):
    kinds = ALL_KINDS  # expect_column_to_exist names a column of any type

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
