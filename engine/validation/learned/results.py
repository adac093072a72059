"""What learned checks return: one result per (partition, column), one judgement per partition."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class LearnedResult:
    """One learned check on one partition (a column, or the table as column '*')."""

    table: str
    ds: dt.date
    type: str  # learned:<statistic> | learned:stale_copy | learned:learning
    column: str
    statistic: str | None
    observed: float | None
    expected: float | None
    expected_low: float | None
    expected_high: float | None
    score: float | None  # in units of the threshold's scale; fails above `threshold`
    threshold: float | None
    success: bool
    severity: str  # block | warn
    message: str | None  # the alert text when it failed
    history: int  # valid partitions it was judged against
    learning: bool = False
    source_column: str | None = None  # the source column a derived feature comes from

    def result_row(self, run_id: str) -> dict:
        """A `validation/results` row (evaluated_by 'learned'; details in kwargs JSON)."""
        kwargs = {"statistic": self.statistic, "expected": self.expected, "expected_low": self.expected_low,
                  "expected_high": self.expected_high, "score": self.score, "threshold": self.threshold,
                  "history": self.history, "learning": self.learning, "source_column": self.source_column}
        return {"run_id": run_id, "table": self.table, "expectation_index": -1, "expectation_type": self.type,
                "column": self.column, "kwargs": json.dumps(kwargs, sort_keys=True),
                "success": self.success, "observed_value": json.dumps(self.observed), "severity": self.severity,
                "unexpected_percent": None, "message": self.message, "evaluated_by": "learned", "ds": self.ds}


@dataclass
class Judgement:
    table: str
    ds: dt.date
    learning: bool
    history: int
    results: list[LearnedResult] = field(default_factory=list)
    capped: bool = False  # the run would have quarantined too many days: nothing quarantined (warn)

    @property
    def failed(self) -> list[LearnedResult]:
        return [r for r in self.results if not r.success]

    @property
    def quarantine(self) -> bool:
        return not self.learning and not self.capped and any(r.severity == "block" for r in self.failed)

    @property
    def alerts(self) -> list[str]:
        return [r.message for r in self.failed if r.message]
