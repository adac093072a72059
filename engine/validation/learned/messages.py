"""Alert texts: what was seen, what is usual, what moved with it."""
from __future__ import annotations

import math

import numpy as np

from engine.validation.learned.table import SummaryMatrix
from engine.validation.learned.vocabulary import COUNT_STATS, FRACTION_STATS, TABLE


def finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def fmt(stat: str, v: float) -> str:
    if stat in FRACTION_STATS or stat.startswith("share:"):
        return f"{100 * v:.1f}%"
    if stat in COUNT_STATS:
        return f"{v:,.0f}"
    return f"{v:.4g}"


WORDS = {"null_fraction": "null", "zero_fraction": "zero", "negative_fraction": "negative",
         "mode_share": "in its most frequent value", "upper_share": "all upper-case",
         "lower_share": "all lower-case", "digit_share": "with digits", "space_share": "with stray spaces",
         "dup_key_fraction": "duplicate keys", "dup_row_fraction": "duplicate rows", "row_count": "rows",
         "variant_share": "case/format variants of known values", "lag_future_fraction": "events after ds",
         "distinct": "distinct values"}


def alert(where: str, column: str, stat: str, t: SummaryMatrix, i: int, hist: list[int], k: int,
           source: str | None, others: list[str]) -> str:
    past = t.x[hist, k]
    past = past[~np.isnan(past)]
    lo, hi = (float(np.quantile(past, 0.05)), float(np.quantile(past, 0.95))) if len(past) else (math.nan, math.nan)
    value = float(t.x[i, k])
    if stat.startswith("share:"):
        what = f"{fmt(stat, value)} of rows with {column} = {stat[6:]}"
    elif stat in WORDS:
        what = f"{fmt(stat, value)} {WORDS[stat]}"
    else:
        what = f"{stat} {fmt(stat, value)}"
    subject = "table" if column == TABLE else f"column {column}" + (f" (from {source})" if source else "")
    moved = "no other column moved" if not others else "moved with " + ", ".join(others[:3]) + (
        ", ..." if len(others) > 3 else "") + " but broke from its usual relation"
    return (f"{where} {subject}: {what} (usual {fmt(stat, lo)}–{fmt(stat, hi)}, "
            f"{len(hist)} valid days; {moved})")
