"""`retrain suggest`: a GX 1.x suite from a table's history of partition summaries.

Every bound is one that held on every valid partition of the history window (the window's
own minimum and maximum), so the suggested suite passes on the history it was drawn from; a
Task ML engineer reviews it, widens or drops what should not be a contract, and keeps it as
`expectations/<feature_set>.json` next to the learned checks. Only expectation types the
engine evaluates in its grouped aggregation are suggested.
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from engine.validation.summaries import TABLE, VALUE_COUNTS_K

MAX_SET = 20  # a column with at most this many values over the window gets a value set


def suggest_suite(rows: Iterable[Mapping[str, Any]], *, name: str, valid_days: Sequence[dt.date],
                  entity: Sequence[str] = (), history_days: int = 90) -> dict[str, Any]:
    """The suite (GX 1.x JSON object) whose bounds held over the latest `history_days` valid
    partitions among `valid_days`, from `validation/summaries` rows of one table."""
    window = set(sorted(valid_days)[-history_days:])
    stats: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: dict[str, list[dict[str, int]]] = defaultdict(list)
    for r in rows:
        if r["ds"] not in window:
            continue
        if r["statistic"] == "value_counts" and r.get("detail"):
            counts[r["column"]].append(json.loads(r["detail"]))
        elif r["value"] is not None:
            stats[(r["column"], r["statistic"])].append(float(r["value"]))
    days = len({d for d in window})
    meta = {"suggested_by": "retrain suggest", "history_partitions": days,
            "history_start": min(window).isoformat() if window else None,
            "history_end": max(window).isoformat() if window else None}
    exps: list[dict[str, Any]] = []

    def add(etype: str, kwargs: dict[str, Any], note: str) -> None:
        exps.append({"type": etype, "kwargs": kwargs, "meta": {"severity": "block", "notes": note}})

    rows_seen = stats.get((TABLE, "row_count"))
    if rows_seen:
        add("expect_table_row_count_to_be_between", {"min_value": int(min(rows_seen)), "max_value": int(max(rows_seen))},
            f"row count over {days} valid partitions")
    columns = sorted({c for c, _ in stats if c != TABLE})
    if len(entity) == 1 and entity[0] in columns and max(stats.get((TABLE, "dup_key_fraction"), [1.0])) == 0:
        add("expect_column_values_to_be_unique", {"column": entity[0]}, "the entity key never repeated")
    for c in columns:
        nulls = stats.get((c, "null_fraction"))
        if nulls:
            worst = max(nulls)
            if worst == 0:
                add("expect_column_values_to_not_be_null", {"column": c}, "never null")
            elif worst < 1:
                add("expect_column_values_to_not_be_null", {"column": c, "mostly": _floor(1 - worst)},
                    f"at most {100 * worst:.2f}% null")
        lo, hi = stats.get((c, "min")), stats.get((c, "max"))
        if lo and hi:
            add("expect_column_values_to_be_between", {"column": c, "min_value": min(lo), "max_value": max(hi)},
                "the range of values seen")
            for stat, etype in (("mean", "expect_column_mean_to_be_between"), ("stddev", "expect_column_stdev_to_be_between")):
                seen = stats.get((c, stat))
                if seen:
                    add(etype, {"column": c, "min_value": min(seen), "max_value": max(seen)}, f"the {stat} per partition")
        if counts.get(c) and len(counts[c]) == days:
            values = sorted({v for day in counts[c] for v in day})
            complete = all(len(day) < VALUE_COUNTS_K for day in counts[c])  # every value counted
            if complete and len(values) <= MAX_SET:
                add("expect_column_values_to_be_in_set", {"column": c, "value_set": values}, "the values seen")
    return {"name": name, "expectations": exps, "meta": meta}


def _floor(x: float, digits: int = 4) -> float:
    scale = 10 ** digits
    return int(x * scale) / scale


def write_suite(suite: Mapping[str, Any], path: str | Path) -> Path:
    """Write the suite file (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(suite, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
