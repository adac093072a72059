"""The summaries of one table as a (day x series) matrix, and NaN-aware robust statistics."""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from typing import Any, Iterable, Mapping

import numpy as np

from engine.validation.learned.tuning import TUNING as T
from engine.validation.learned.vocabulary import COUNT_STATS, FRACTION_STATS, SCALE_STATS, TABLE


def norm(value: str) -> str:
    return re.sub(r"[\W_]+", "", value.lower())


class SummaryMatrix:
    """The summaries of one table as a (day x series) matrix plus the raw details."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns_filter, exclude):
        values: dict[dt.date, dict[tuple[str, str], float]] = defaultdict(dict)
        self.fingerprints: dict[dt.date, str] = {}
        self.counts: dict[dt.date, dict[str, dict[str, int]]] = defaultdict(dict)
        self.rows: dict[dt.date, float] = {}
        for r in rows:
            d, c, s = r["ds"], r["column"], r["statistic"]
            if c != TABLE and ((columns_filter is not None and c not in columns_filter) or c in exclude):
                continue
            if s == "fingerprint":
                if r.get("detail"):
                    self.fingerprints[d] = json.loads(r["detail"])
                continue
            if s == "value_counts":
                if r.get("detail"):
                    self.counts[d][c] = json.loads(r["detail"])
                continue
            if s == "row_count" and r["value"] is not None:
                self.rows[d] = float(r["value"])
            v = r["value"]
            v = np.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            if s in FRACTION_STATS and not math.isnan(v):  # an approximate count can overshoot (-0.9% duplicates)
                v = min(max(v, 0.0), 1.0)
            values[d][(c, s)] = v
        self.days = sorted(set(values) | set(self.fingerprints))
        self.index = {d: i for i, d in enumerate(self.days)}
        keys = sorted({k for v in values.values() for k in v})
        self.keys = keys
        self.col = {k: i for i, k in enumerate(keys)}
        x = np.full((len(self.days), len(keys)), np.nan)
        for d, kv in values.items():
            i = self.index[d]
            for k, v in kv.items():
                x[i, self.col[k]] = v
        # a robust spread: the interquartile range (a unit change scales it; stddev follows one outlier)
        for c in sorted({c for c, s in keys if s == "p25" and (c, "p75") in self.col}):
            self.col[(c, "iqr")] = len(keys)
            keys.append((c, "iqr"))
            x = np.hstack([x, (x[:, self.col[(c, "p75")]] - x[:, self.col[(c, "p25")]])[:, None]])
        # a segment missing from a day had no rows: its share is 0
        for j, (c, s) in enumerate(keys):
            if s.startswith("share:"):
                x[:, j] = np.where(np.isnan(x[:, j]), 0.0, x[:, j])
        # a string column with few values: each value's share of rows (a constant fill, or a
        # value vanishing, shows here even where the mode barely moves)
        for c in sorted({c for per_day in self.counts.values() for c in per_day}):
            seen = sorted({v for per_day in self.counts.values() for v in per_day.get(c, {})})
            if len(seen) > T.discrete:
                continue
            for v in seen:
                if (c, f"share:{v}") in self.col:
                    continue
                self.col[(c, f"share:{v}")] = len(keys)
                keys.append((c, f"share:{v}"))
                share = [self.counts[d][c].get(v, 0) / self.rows[d] if c in self.counts.get(d, {}) and self.rows.get(d)
                         else np.nan for d in self.days]
                x = np.hstack([x, np.array(share)[:, None]])
        self.x = x
        self.rows_arr = np.array([self.rows.get(d, np.nan) for d in self.days])
        self.dow = np.array([d.weekday() for d in self.days])

    def add_variant_columns(self) -> None:
        """variant_share series (filled day by day, from each day's history): the share of a
        string column's rows holding values unseen in its history whose case/format-normalized
        form was seen (NORTH or ' north' where North was seen)."""
        columns = sorted({c for per_day in self.counts.values() for c in per_day})
        for c in columns:
            self.col[(c, "variant_share")] = len(self.keys)
            self.keys.append((c, "variant_share"))
        if columns:
            self.x = np.hstack([self.x, np.full((len(self.days), len(columns)), np.nan)])


def transform(stat: str, x: np.ndarray) -> np.ndarray:
    if stat in SCALE_STATS:
        with np.errstate(all="ignore"):
            return np.log(np.maximum(x, 1e-12))
    return np.log1p(np.maximum(x, 0)) if stat in COUNT_STATS else x


def nanquantile(a: np.ndarray, p: float, axis: int = 0) -> np.ndarray:
    """np.nanquantile (linear interpolation) by one sort: NaN sorts last, so the i-th value
    of a series is at its i-th row (numpy's own nanquantile loops in Python over columns)."""
    a = np.moveaxis(np.asarray(a, float), axis, 0)
    s = np.sort(a, axis=0)
    n = np.sum(~np.isnan(a), axis=0)
    pos = np.clip(p * (n - 1), 0, None)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    vlo = np.take_along_axis(s, lo[None], axis=0)[0]
    vhi = np.take_along_axis(s, hi[None], axis=0)[0]
    out = vlo + (pos - lo) * (vhi - vlo)
    return np.where(n > 0, out, np.nan)


def nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    return nanquantile(a, 0.5, axis)


def mad(a: np.ndarray, axis=0) -> np.ndarray:
    med = nanmedian(a, axis=axis)
    return nanmedian(np.abs(a - np.expand_dims(med, axis)), axis=axis)
