"""Entity keys are keys: the feature set's `entity` is unique per ds.

A table-level check the engine adds to every validated partition, suite or no suite:
rows − distinct entity keys (counted exactly in the exact pass, exact.py) is the number of
duplicated keys; any duplicate fails the check, which blocks (quarantines) by default.
It is a `Check`/`CheckOutcome` like a suite expectation, so verdicts, results rows and
alerts treat it the same way; its index is ENTITY_INDEX (never a suite position).
"""
from __future__ import annotations

import datetime as dt

from engine.validation.outcomes import CheckOutcome
from engine.validation.plan import PartitionMetrics
from engine.validation.suites import Check

CHECK_TYPE = "retrain_entity_keys_unique"
ENTITY_INDEX = -1


def check(entity: list[str], severity: str = "block") -> Check:
    """The entity-uniqueness check of a feature set (table-level: column None)."""
    return Check(index=ENTITY_INDEX, type=CHECK_TYPE, kwargs={"column_list": list(entity)},
                 meta={"evaluated_by": "retrain"}, severity=severity, expectation=None)


def outcome(entity: list[str], ds: dt.date, m: PartitionMetrics, missing: list[str]) -> CheckOutcome:
    """The check's outcome on one partition from its metrics (rows and distinct keys)."""
    if missing:
        names = ", ".join(missing)
        return CheckOutcome(ENTITY_INDEX, ds, False, {}, f"entity column(s) {names} do not exist", "native")
    rows = m.rows
    duplicated = rows - int(m.get(("entity_distinct",), rows))
    result = {
        "observed_value": duplicated,
        "element_count": rows,
        "unexpected_count": duplicated,
        "unexpected_percent": (100.0 * duplicated / rows) if rows else 0.0,
        "distinct_keys": rows - duplicated,
        "columns": list(entity),
    }
    return CheckOutcome(ENTITY_INDEX, ds, duplicated == 0, result, None, "native")


def describe(c: Check, o: CheckOutcome) -> str:
    """e.g. `entity [order_id] has 1,258 duplicated keys (0.5% of rows)`."""
    cols = ", ".join(c.kwargs["column_list"])
    if o.exception:
        return f"entity [{cols}] could not be checked: {o.exception}"
    n = int(o.result.get("unexpected_count") or 0)
    share = float(o.result.get("unexpected_percent") or 0.0)
    share_s = f"{share:.2g}%" if 0 < share < 0.1 else f"{share:.1f}%"
    return f"entity [{cols}] has {n:,} duplicated key{'s' if n != 1 else ''} ({share_s} of rows)"
