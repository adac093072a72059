"""The per-column profile of a partition, from the same grouped aggregation: approximate
statistics only (HyperLogLog++ distinct counts, KLL quantiles, approximate top values) plus
the exact cheap ones (rows, nulls, min, max, mean, stddev)."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from engine.validation.gx_adapter import jsonable
from engine.validation.outcomes import PROFILE_QUANTILES, ColumnProfile
from engine.validation.plan import PartitionMetrics, Plan

# KLL sketches (kll_sketch_agg_double, Spark >= 4.1): bounded memory, much cheaper per row
# than percentile_approx; k=200: ~1.3% rank error.
PROFILE_SKETCH_K = 200
TOP_K = 5


def request(plan: Plan, c: str) -> None:
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


def profile(c: str, dtype: str, kind: str, m: PartitionMetrics) -> ColumnProfile:
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
