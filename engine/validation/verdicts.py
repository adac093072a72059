"""From outcomes to decisions and words: partition status, failures, alert messages.

Pure functions (no Spark, no I/O). A partition is quarantined when any `block` expectation
failed on it; `warn` failures alert but do not quarantine.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from engine.observability import ValidationFailure
from engine.validation import entity
from engine.validation.evaluate import CheckOutcome
from engine.validation.suites import Check

VALID = "valid"
QUARANTINED = "quarantined"


@dataclass
class PartitionVerdict:
    ds: dt.date
    status: str  # valid | quarantined
    failures: list[ValidationFailure]  # every failed expectation (block and warn)

    @property
    def reasons(self) -> list[ValidationFailure]:
        """Why the partition is quarantined (its blocking failures)."""
        return [f for f in self.failures if f.severity == "block"]


def decide(table: str, ds: dt.date, checks: list[Check], outcomes: list[CheckOutcome]) -> PartitionVerdict:
    failures = [failure(table, ds, c, o) for c, o in zip(checks, outcomes) if not o.success]
    status = QUARANTINED if any(f.severity == "block" for f in failures) else VALID
    return PartitionVerdict(ds, status, failures)


def failure(table: str, ds: dt.date, check: Check, outcome: CheckOutcome) -> ValidationFailure:
    return ValidationFailure(table=table, ds=ds, column=check.column, expectation=check.type,
                             severity=check.severity, message=message(table, ds, check, outcome))


# --------------------------------------------------------------------------- messages


def message(table: str, ds: dt.date, check: Check, outcome: CheckOutcome) -> str:
    """e.g. `features/orders ds=2026-10-14 column discount: 48.2% null (expected ≤ 1%)`."""
    where = f"{table} ds={ds.isoformat()}"
    if check.column is not None and check.type != "expect_column_to_exist":
        where += f" column {check.column}"
    return f"{where}: {detail(check, outcome)}"


def fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    if 0 < value < 0.1:
        return f"{value:.2g}%"
    return f"{value:.1f}%"


def _allowed(mostly: Any, what: str) -> str:
    share = round((1 - float(mostly if mostly is not None else 1)) * 100, 6)
    if share <= 0:
        return f"expected {what}"
    return f"expected ≤ {share:g}%"


def _interval(lo: Any, hi: Any, strict_min: bool, strict_max: bool) -> str:
    left = "(" if (strict_min or lo is None) else "["
    right = ")" if (strict_max or hi is None) else "]"
    lo_s = "-∞" if lo is None else fmt(lo).strip("'")
    hi_s = "∞" if hi is None else fmt(hi).strip("'")
    return f"{left}{lo_s}, {hi_s}{right}"


def _bounds(lo: Any, hi: Any, strict_min: bool, strict_max: bool) -> str:
    parts = []
    if lo is not None and hi is not None and not strict_min and not strict_max:
        return f"between {fmt(lo)} and {fmt(hi)}"
    if lo is not None:
        parts.append(("> " if strict_min else "≥ ") + fmt(lo))
    if hi is not None:
        parts.append(("< " if strict_max else "≤ ") + fmt(hi))
    return " and ".join(parts) or "any value"


def _examples(result: dict) -> str:
    values = [v for v in (result.get("partial_unexpected_list") or []) if v is not None]
    values = list(dict.fromkeys(fmt(v) for v in values))[:3]
    return f", e.g. {', '.join(values)}" if values else ""


def _set(values: Any) -> str:
    values = list(values or [])
    shown = ", ".join(fmt(v) for v in values[:8])
    return "{" + shown + (", …" if len(values) > 8 else "") + "}"


AGGREGATE_NAMES = {
    "expect_column_min_to_be_between": "min",
    "expect_column_max_to_be_between": "max",
    "expect_column_mean_to_be_between": "mean",
    "expect_column_stdev_to_be_between": "stddev",
    "expect_column_median_to_be_between": "median",
    "expect_column_sum_to_be_between": "sum",
}


def detail(check: Check, outcome: CheckOutcome) -> str:
    """What was observed and what was expected, in words."""
    e = check.expectation
    r = outcome.result or {}
    kw = check.kwargs
    t = check.type
    if outcome.exception:
        return f"{t} could not be evaluated: {outcome.exception}"
    if t == entity.CHECK_TYPE:
        return entity.describe(check, outcome)
    mostly = getattr(e, "mostly", 1.0)
    p = percent(r.get("unexpected_percent"))
    if t == "expect_column_values_to_not_be_null":
        return f"{p} null ({_allowed(mostly, 'no nulls')})"
    if t == "expect_column_values_to_be_null":
        return f"{p} not null ({_allowed(mostly, 'all null')})"
    if t == "expect_column_values_to_be_between":
        rng = _interval(e.min_value, e.max_value, bool(e.strict_min), bool(e.strict_max))
        return f"{p} of values outside {rng} ({_allowed(mostly, 'none')}){_examples(r)}"
    if t == "expect_column_values_to_be_in_set":
        return f"{p} of values not in {_set(e.value_set)} ({_allowed(mostly, 'none')}){_examples(r)}"
    if t == "expect_column_values_to_not_be_in_set":
        return f"{p} of values in the forbidden set {_set(e.value_set)} ({_allowed(mostly, 'none')}){_examples(r)}"
    if t == "expect_column_values_to_be_unique":
        return f"{p} of values are duplicated ({_allowed(mostly, 'none')}){_examples(r)}"
    if t == "expect_column_values_to_match_regex":
        return f"{p} of values do not match /{e.regex}/ ({_allowed(mostly, 'none')}){_examples(r)}"
    if t in AGGREGATE_NAMES:
        name = AGGREGATE_NAMES[t]
        obs = r.get("observed_value")
        seen = f"{name} {fmt(obs)}" if obs is not None else f"{name} undefined (no non-null values)"
        return f"{seen} (expected {_bounds(kw.get('min_value'), kw.get('max_value'), bool(kw.get('strict_min')), bool(kw.get('strict_max')))})"
    if t == "expect_column_unique_value_count_to_be_between":
        return (f"{fmt(r.get('observed_value'))} distinct values (expected "
                f"{_bounds(kw.get('min_value'), kw.get('max_value'), bool(kw.get('strict_min')), bool(kw.get('strict_max')))})")
    if t == "expect_column_proportion_of_unique_values_to_be_between":
        return (f"unique proportion {fmt(r.get('observed_value'))} (expected "
                f"{_bounds(kw.get('min_value'), kw.get('max_value'), bool(kw.get('strict_min')), bool(kw.get('strict_max')))})")
    if t == "expect_table_row_count_to_be_between":
        return (f"{fmt(r.get('observed_value'))} rows (expected "
                f"{_bounds(kw.get('min_value'), kw.get('max_value'), bool(kw.get('strict_min')), bool(kw.get('strict_max')))})")
    if t == "expect_table_columns_to_match_set":
        mismatched = (r.get("details") or {}).get("mismatched") or {}
        parts = []
        if mismatched.get("missing"):
            parts.append(f"missing {mismatched['missing']}")
        if mismatched.get("unexpected"):
            parts.append(f"unexpected {mismatched['unexpected']}")
        return "columns do not match the expected set: " + ("; ".join(parts) or "differ")
    if t == "expect_column_to_exist":
        where = f" at position {kw['column_index']}" if kw.get("column_index") is not None else ""
        return f"column {kw.get('column')} does not exist{where}"
    if "unexpected_percent" in r:
        return f"{p} of values fail {t} ({_allowed(mostly, 'none')}){_examples(r)}"
    if "observed_value" in r:
        return f"{t} failed: observed {fmt(r.get('observed_value'))}"
    return f"{t} failed"
