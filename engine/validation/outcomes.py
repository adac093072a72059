"""What an evaluation returns: one outcome per check and partition, column profiles, and
the values of extra aggregations (e.g. learned-check summaries) computed in the same pass."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from engine.validation.suites import Check

PROFILE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class CheckOutcome:
    """One check on one partition: GX's verdict and result dict (or the engine's, for the
    engine's own table-level checks such as entity uniqueness)."""

    index: int  # the check's index in the suite (negative: an engine check, see entity.py)
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
    outcomes: dict[dt.date, list[CheckOutcome]]  # aligned with `checks`: the suite's, then the engine's
    profiles: dict[dt.date, list[ColumnProfile]]
    native_types: list[str]
    gx_types: list[str]
    jobs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per step: aggregation, exact, gx
    checks: list[Check] = field(default_factory=list)  # the suite's checks, then the engine's (entity)
    extras: dict[dt.date, Any] = field(default_factory=dict)  # per ds: a Row of the extra aggregations
