"""The metrics of one grouped aggregation: column kinds, exact Spark SQL literals, the plan
of aggregate expressions (deduplicated by key) and the metrics of one partition after it ran."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable


def kind_of(dtype) -> str:
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


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


class Plan:
    """The metrics one grouped aggregation computes (Spark SQL aggregate expressions),
    deduplicated by key."""

    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds
        self.exprs: dict[tuple, str] = {}
        self.percentiles: dict[str, set[float]] = {}  # column -> quantile ranks (from a KLL sketch)
        self.distinct: set[str] = set()  # columns needing exact distinct / duplicate counts
        self.median: dict[str, tuple[float, float]] = {}  # column -> sketch ranks bracketing its exact median
        self.entity: list[str] = []  # key columns whose duplicated keys are counted exactly
        self.flags: dict[str, str] = {}  # SQL condition -> name of a boolean column computed once per row

    def flag(self, condition: str) -> str:
        """A boolean column holding `condition`, projected before the aggregation (so several
        aggregates testing it evaluate it once per row, e.g. a regex)."""
        return q(self.flags.setdefault(condition, f"__flag{len(self.flags)}"))

    @property
    def exact(self) -> bool:
        """Whether the exact pass (value counts, median windows, entity keys) must run."""
        return bool(self.distinct or self.median or self.entity)

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
