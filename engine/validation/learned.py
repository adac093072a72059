"""Learned checks (the reduce): each partition's summary against the table's own history.

Pure Python / numpy on the driver over the small `validation/summaries` rows; no Spark.

For every (column, statistic) series, point in time (only VALID partitions before the judged
day, at most `history_days` of them):
1. expected value: a robust local level (median of the latest 7 valid days), with a local
   linear trend and a weekday effect where each is supported by the history (the trend where
   it shrinks the one-step-ahead errors, a weekday where its median effect stands out of its
   standard error); scale: 1.4826 x MAD of the one-step-ahead errors, floored by the
   statistic's sampling noise on the day's rows (binomial for fractions, counting noise for
   counts, spread/sqrt(rows) for means and quantiles) -> a standardized residual z.
   Counts are modeled on a log scale, the interquartile range (a robust spread, derived from
   p25/p75) too. String columns with few values get one share series per value.
2. co-movement: each series is regressed on its most correlated series of OTHER columns
   (correlation of past residuals; row count and distinct counts take part as peers: they
   carry the table's volume). A storm or holiday that moves many columns together is
   predicted by the peers; the prediction's uncertainty grows with its leverage (how far
   the peers are outside their past range). The series score is the smaller of its own move
   and its break from its peers (each in units of its own past spread).
3. per-column scores: a column's score is the max over its alerting series, where
   - extremes (min, max, stddev) are recorded but never alert: heavy tails move them on
     clean days, and a sentinel or unit change also moves robust statistics;
   - volume (row count, distinct count) never alerts alone: a holiday is not a fault;
   - a location statistic (mean, quantiles; for the table the event-time lag) counts only
     up to the second largest of its family: a shifted distribution moves at least two;
   - a column null throughout its history, a value share absent from most of it, and order
     statistics of columns with at most DISCRETE values have nothing to learn from.
4. calibration: each column's threshold comes from its OWN past column scores (replayed over
   its clean history): an exponential tail above their median with the median excess as
   scale, at the level budget / 100 / (number of scored columns), so a table stays within
   `false_alarm_budget` alerts per 100 partitions; never below the Gaussian bound of the max
   over the column's series, and 1.5 x that bound while fewer than MIN_TAIL_HISTORY past
   scores exist.
Deterministic table-level checks: a partition whose content fingerprint equals an earlier
day's (a stale copy) when the history never repeats itself.
A column that fails LEVEL_DAYS judged days in a row has shifted for good (a source started
filling it, a new unit was adopted upstream): from then on its series are judged against the
days since the shift began, so it alerts for a week, not forever.
Until `min_history` valid partitions exist the checks run in learning mode (recorded, never
quarantining).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from engine.config import LearnedSettings
from engine.validation.summaries import TABLE

LEVEL_DAYS = 7  # the local level: median of the latest valid days (a week: follows a trend)
MIN_SERIES_HISTORY = 7  # a series is scored once it has this many valid past values
MIN_PEER_HISTORY = 10  # co-movement is learned once this many past residuals exist
MAX_PEERS = 3
COUNT_STATS = {"row_count", "distinct"}  # modeled on a log scale (multiplicative change)
FRACTION_STATS = {"null_fraction", "zero_fraction", "negative_fraction", "mode_share", "upper_share",
                  "lower_share", "digit_share", "space_share", "dup_key_fraction", "dup_row_fraction",
                  "lag_future_fraction", "variant_share"}
SCALE_STATS = {"iqr"}  # modeled on a log scale (a unit change multiplies it)
EXTREMES = {"min", "max", "stddev"}  # recorded, never alerted on: heavy tails move them on clean days
# volume: explains other series (as their peers), never alerts alone: a holiday is not a fault
CONTEXT = {"row_count", "distinct"}
MONOTONIC_SHARE = 0.9  # a column whose centre rose on this share of history steps is an id/counter
MIN_TAIL_HISTORY = 20  # past column scores needed to fit the tail of their distribution
DISCRETE = 10  # distinct values up to which a column is treated as categorical
TYPE_PREFIX = "learned:"


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


# --------------------------------------------------------------------------- feature lineage


def source_columns_of(features: Mapping[str, str], sources: Iterable[str]) -> dict[str, str]:
    """feature -> the one source column its SQL expression references (features built from
    several source columns, or none, are left out)."""
    sources = list(sources)
    out = {}
    for name, expr in features.items():
        text = re.sub(r"'(?:[^'\\]|\\.)*'", " ", expr)  # string literals are not references
        refs = {s for s in sources if re.search(rf"(?<![\w.]){re.escape(s)}(?!\w)", text)}
        if len(refs) == 1:
            out[name] = refs.pop()
    return out


def context_columns(fs) -> list[str]:
    """The columns of a feature set that explain others but never alert: rolling windows (a
    7- or 28-day aggregate is smooth and autocorrelated, one-day residuals understate its
    tail, and it repeats each source day for N days: the source column alerts on its own day,
    not again on the N days a window holds it, nor on the day it leaves)."""
    return [r.name for r in fs.rolling]


def failed_columns_of(statuses: Iterable[Any]) -> dict[dt.date, set[str]]:
    """Earlier days whose learned checks failed -> the failed columns ('*' the table), for
    `judge(failed_columns=...)`: a valid day with learned warnings, or a day quarantined by
    learned checks alone (not a stale copy), stays history without those columns. `statuses`:
    PartitionStatus-like objects (ds, status, reasons of ValidationFailure)."""
    out: dict[dt.date, set[str]] = {}
    for s in statuses:
        learned = [r for r in s.reasons if r.expectation.startswith(TYPE_PREFIX)]
        if not learned:
            continue
        others = [r for r in s.reasons if not r.expectation.startswith(TYPE_PREFIX) and r.severity == "block"]
        if s.status != "valid" and (others or any(r.expectation == TYPE_PREFIX + "stale_copy" for r in learned)):
            continue
        out[s.ds] = {r.column or TABLE for r in learned}
    return out


# --------------------------------------------------------------------------- the judge


def _norm(value: str) -> str:
    return re.sub(r"[\W_]+", "", value.lower())


class _Table:
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
            if len(seen) > DISCRETE:
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


def _transform(stat: str, x: np.ndarray) -> np.ndarray:
    if stat in SCALE_STATS:
        with np.errstate(all="ignore"):
            return np.log(np.maximum(x, 1e-12))
    return np.log1p(np.maximum(x, 0)) if stat in COUNT_STATS else x


def _nanquantile(a: np.ndarray, p: float, axis: int = 0) -> np.ndarray:
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


def _nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    return _nanquantile(a, 0.5, axis)


def _mad(a: np.ndarray, axis=0) -> np.ndarray:
    med = _nanmedian(a, axis=axis)
    return _nanmedian(np.abs(a - np.expand_dims(med, axis)), axis=axis)


class _Judge:
    def __init__(self, table: _Table, settings: LearnedSettings, sources: Mapping[str, str] | None = None,
                 entity: Iterable[str] = (), context: Iterable[str] = ()):
        self.t = table
        self.s = settings
        self.stats = [s for _, s in table.keys]
        n, m = table.x.shape
        self.y = np.column_stack([_transform(s, table.x[:, j]) for j, s in enumerate(self.stats)]) if m else table.x
        self.z = np.full((n, m), np.nan)  # point-in-time standardized residuals
        self.score = np.full((n, m), np.nan)  # point-in-time scores of the series (combined)
        self.fraction = np.array([s in FRACTION_STATS or s.startswith("share:") for s in self.stats], bool)
        self.count = np.array([s in COUNT_STATS for s in self.stats], bool)
        self.scale_stat = np.array([s in SCALE_STATS for s in self.stats], bool)
        self.share = np.flatnonzero([s.startswith("share:") for s in self.stats])
        columns = [c for c, _ in table.keys]
        self.columns = columns
        root = [(sources or {}).get(c, c) for c in columns]
        self.same_column = np.array([[a == b for b in root] for a in root], bool) if m else np.zeros((0, 0), bool)
        context = set(context)
        entity = set(entity)
        # an entity key is a key, not a distribution: only its nulls are judged (uniqueness is
        # the table's dup_key_fraction and the exact entity check)
        self.key = np.array([c in entity and s != "null_fraction" for c, s in table.keys], bool)
        # a context column (a rolling window: smooth, autocorrelated, it repeats its source's
        # days) explains other series and never alerts: its source days alert on their own day
        alerting = np.array([s not in EXTREMES and s not in CONTEXT and c not in context
                             for c, s in table.keys], bool) & ~self.key
        # a column's centre (p50, else mean): a monotonic id rises with it day after day
        self.center = np.array([table.col.get((c, "p50"), table.col.get((c, "mean"), -1)) if s != "null_fraction"
                                else -1 for c, s in table.keys])
        self.names = sorted(set(columns))  # the scored units: columns, and the table as '*'
        self.members = [np.flatnonzero((np.array(columns) == c) & alerting) for c in self.names]
        self.cscore = np.full((n, len(self.names)), np.nan)  # point-in-time column scores
        self._saved: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}  # values left out
        self.nulls = np.array([table.col.get((c, "null_fraction"), -1) for c in columns])
        order = np.array([s in EXTREMES or s in SCALE_STATS or bool(re.fullmatch(r"p\d\d", s))
                          for s in self.stats])
        self.distinct = np.where(order, [table.col.get((c, "distinct"), -1) for c in columns], -1)
        self.excluded = np.array([s in EXTREMES for s in self.stats], bool) | self.key
        location = np.array([s == "mean" or bool(re.fullmatch(r"p\d\d", s)) for s in self.stats])
        self.sd = np.where(location, [table.col.get((c, "stddev"), -1) for c in columns], -1)
        # a column's location statistics (mean, quantiles; the table's lag mean and quantiles)
        lag = np.array([s == "lag_mean" or bool(re.fullmatch(r"lag_p\d\d", s)) for s in self.stats])
        self.families = [ks for c in self.names
                         for ks in [np.flatnonzero((np.array(columns) == c) & (location | lag) & alerting)] if len(ks) >= 3]

    def leave_out(self, i: int, column: str) -> None:
        """Day i's values of `column` (its alerting series) are left out of the history (a
        failed check's outlying values must not shape the level or scale of later days)."""
        if column not in self.names:
            return
        ks = self.members[self.names.index(column)]
        self._saved.setdefault((i, column), (self.t.x[i, ks].copy(), self.y[i, ks].copy()))
        self.t.x[i, ks] = np.nan
        self.y[i, ks] = np.nan
        self.z[i, ks] = np.nan
        self.score[i, ks] = np.nan
        self.cscore[i, self.names.index(column)] = np.nan

    def restore(self, i: int, column: str) -> None:
        """Put day i's values of `column` back (its shift is confirmed: they are the new normal)."""
        saved = self._saved.pop((i, column), None)
        if saved is not None:
            ks = self.members[self.names.index(column)]
            self.t.x[i, ks], self.y[i, ks] = saved

    def expected(self, i: int, hist: list[int]):
        """Expected value and scale of every series for day i from `hist`: a robust local
        level (median of the latest LEVEL_DAYS days), with a local trend and a weekday profile
        where each explains the series' one-step-ahead errors better."""
        y = self.y[hist]
        dow = self.t.dow[hist]
        n, L = len(hist), LEVEL_DAYS
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = y - _nanmedian(y)
            season = np.zeros((7, y.shape[1]))
            if n >= 14:  # a weekday's effect is kept where it stands out of its standard error
                sd = 1.4826 * _mad(r)
                for d in range(7):
                    sel = r[dow == d]
                    if len(sel) >= 2:
                        effect = np.nan_to_num(_nanmedian(sel))
                        season[d] = np.where(np.abs(effect) > 3 * 1.25 * sd / math.sqrt(len(sel)), effect, 0.0)
            d = y - season[dow]
            level = _nanmedian(d[-L:])
            if n >= 2 * L:  # one-step-ahead errors of the local level (trend lag included)
                med = _nanmedian(np.lib.stride_tricks.sliding_window_view(d, L, axis=0), axis=2)  # med[s]: d[s:s+L]
                resid = d[L:] - med[:-1]
                if n >= 3 * L:  # a local linear trend: slope between the latest two windows
                    ahead = (L + 1) / 2 / L
                    trend_resid = d[2 * L:] - (med[L:-1] + (med[L:-1] - med[:-L - 1]) * ahead)
                    resid = resid[L:]
                    use = _mad(trend_resid) < 0.9 * _mad(resid)
                    level = np.where(use, med[-1] + (med[-1] - med[-1 - L]) * ahead, level)
                    resid = np.where(use, trend_resid, resid)
            else:
                resid = d - level
            scale = 1.4826 * _mad(resid)
            mean_abs = np.nanmean(np.abs(resid - _nanmedian(resid)), axis=0)
            scale = np.fmax(scale, 0.5 * mean_abs)
            # sampling noise of a fraction on this day's row count (binomial), never zero
            rows = self.t.rows_arr[i] if not math.isnan(self.t.rows_arr[i]) else np.nanmedian(self.t.rows_arr[hist])
            rows = max(rows, 1.0)
            p = np.clip(np.abs(level), 1.0 / rows, 1.0)
            floor = np.where(self.fraction, np.sqrt(p * (1 - np.minimum(p, 1 - 1.0 / rows)) / rows), 0.0)
            # counts (log scale): counting noise, a change of one in a handful of distinct values is natural
            floor = np.where(self.count, 1.0 / np.sqrt(1.0 + np.expm1(np.clip(level, 0, 700))), floor)
            floor = np.where(self.scale_stat, 1.0 / math.sqrt(rows), floor)  # relative noise of a spread
            # a mean or quantile: its sampling noise, about the column's spread / sqrt(rows)
            spread = _nanmedian(self.t.x[hist][:, np.maximum(self.sd, 0)])
            floor = np.where(self.sd >= 0, np.nan_to_num(spread) / math.sqrt(rows), floor)
            floor = np.fmax(floor, 1e-9 * (1.0 + np.abs(level)))
            scale = np.fmax(np.nan_to_num(scale), floor)
            counts = np.sum(~np.isnan(y), axis=0)
        return level + season[self.t.dow[i]], scale, counts

    def judge(self, i: int, hist: list[int], shifted: Mapping[str, list[int]] | None = None):
        """Scores of day i; returns (scores, own, expected, scale x spread). `shifted`: columns
        whose level shift persisted -> the days since the shift, their history instead of
        `hist`. Also records the column scores (max over a column's alerting series)."""
        expected, scale, counts = self.expected(i, hist)
        for c, days in (shifted or {}).items():
            ks = [k for k, col in enumerate(self.columns) if col == c]
            e2, s2, n2 = self.expected(i, days)
            expected[ks], scale[ks], counts[ks] = e2[ks], s2[ks], n2[ks]
        z = (self.y[i] - expected) / scale
        z[(counts < MIN_SERIES_HISTORY) | self.excluded | self._unlearnable(hist)] = np.nan
        self.z[i] = z
        zh = self.z[hist]
        # the series' own spread of past residuals (heavy tails widen it)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.fmax(1.4826 * _mad(zh), _nanquantile(np.abs(zh), 0.9) / 1.645)
        spread = np.where(np.isnan(spread) | (spread < 1.0), 1.0, spread)
        own = np.abs(z) / spread
        score = own.copy()
        usable = np.sum(~np.isnan(zh), axis=0) >= MIN_PEER_HISTORY
        if usable.sum() >= 2 and len(hist) >= MIN_PEER_HISTORY:
            peer = self._peer_break(zh, z, usable)
            score = np.where(np.isnan(peer), own, np.minimum(own, peer))
        for ks in self.families:  # a shift of the distribution moves at least two of them; one alone is noise
            top = np.sort(np.nan_to_num(score[ks], nan=-np.inf))[::-1]
            if np.isfinite(top[1]):
                score[ks] = np.minimum(score[ks], top[1])
        self.score[i] = score
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.cscore[i] = [np.nanmax(score[ks]) if len(ks) and not np.isnan(score[ks]).all() else np.nan
                              for ks in self.members]
        return score, own, expected, scale * spread

    def _unlearnable(self, hist: list[int]) -> np.ndarray:
        """Series with nothing to learn from: order statistics (min, max, quantiles) of columns
        with at most DISCRETE values (they jump between a few values by nature; their mean and
        fractions watch those columns), and every series of a column that was null throughout
        its history (it has no distribution yet; when a source starts filling it, its
        statistics are learned from the filled days)."""
        x = self.t.x[hist]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            distinct = _nanmedian(x[:, np.maximum(self.distinct, 0)])
            nulls = _nanmedian(x[:, np.maximum(self.nulls, 0)])
            share = _nanmedian(x[:, self.share]) if len(self.share) else np.zeros(0)
        discrete = (self.distinct >= 0) & (distinct <= DISCRETE)
        empty = (self.nulls >= 0) & (nulls >= 1.0 - 1e-9)
        # a monotonic id (or a counter of days): its centre rose on nearly every step of the
        # history; its level is the calendar, not a distribution (nulls are still judged)
        centre = x[:, np.maximum(self.center, 0)]
        with np.errstate(all="ignore"):
            steps = np.diff(centre, axis=0)
            rising = np.sum(steps > 0, axis=0) / np.maximum(np.sum(~np.isnan(steps), axis=0), 1)
        monotonic = (self.center >= 0) & (np.sum(~np.isnan(steps), axis=0) >= MIN_SERIES_HISTORY - 1) & (
            rising >= MONOTONIC_SHARE)
        new = np.zeros(len(self.stats), bool)
        new[self.share] = ~(share > 0)  # a value absent from most of the history (a new category)
        return discrete | empty | new | monotonic

    def _peer_break(self, zh: np.ndarray, z: np.ndarray, usable: np.ndarray) -> np.ndarray:
        """The smallest |z - prediction from one peer| in units of the past spread of that
        difference (a move any one strongly correlated peer explains is co-movement); NaN
        where a series has no peer (then its own move alone is its score). A derived feature
        and its source column are never each other's peers (one fault moves both)."""
        filled = np.clip(np.where(np.isnan(zh), 0.0, zh), -10, 10)  # a past outlier must not define a relation
        sd = filled.std(axis=0)
        ok = usable & (sd > 0)
        centered = filled - filled.mean(axis=0)
        with np.errstate(all="ignore"):
            corr = (centered.T @ centered) / len(filled) / np.outer(sd, sd)
        corr = np.nan_to_num(np.where(np.outer(ok, ok) & ~self.same_column, corr, 0.0))
        order = np.argsort(-np.abs(corr), axis=1)[:, :MAX_PEERS]  # m x peers
        c = np.take_along_axis(corr, order, axis=1)
        zp = z[order]
        valid = (np.abs(c) >= 0.5) & ~np.isnan(zp) & ok[:, None]
        count = valid.sum(axis=1)
        with np.errstate(all="ignore"):
            beta = np.where(valid, c * sd[:, None] / sd[order], np.nan)  # m x peers
            past = filled[:, :, None] - beta[None] * filled[:, order]  # n x m x peers
            spread = np.fmax(1.4826 * _mad(past), _nanquantile(np.abs(past), 0.9) / 1.645)
            spread = np.fmax(spread, 0.1)
            # a prediction far outside the peer's past range is uncertain (the regression's
            # prediction interval: its slope is known only to within spread / sqrt(sum x^2))
            lever = zp ** 2 / (len(filled) * np.fmax(sd[order], 1e-9) ** 2)
            spread = spread * np.sqrt(1 + 1 / len(filled) + lever)
            breaks = np.where(valid, np.abs(z[:, None] - beta * zp) / spread, np.nan)
            out = np.fmin.reduce(np.where(valid, breaks, np.inf), axis=1)  # explained by any one peer
        return np.where(count > 0, out, np.nan)


TAIL = 0.5  # a column's past scores above their median define its tail


def _threshold(past_scores: np.ndarray, alpha: float, n_series: int) -> float:
    """The column score above which a column alerts, so that on a clean partition it alerts
    with probability <= alpha. Calibrated on the column's own past scores (replayed over its
    clean history): an exponential tail above their median, its scale from the median excess
    (robust both to a past fault and to the history's own truncation: days that alerted are
    not history); heavy tails from storms or holidays in the history raise it. Never below
    the Gaussian bound of the max over the column's series; with fewer than MIN_TAIL_HISTORY
    past scores, 1.5 x that bound (a conservative guess while the tail is unknown)."""
    alpha = min(max(alpha, 1e-9), 0.5)
    gauss = NormalDist().inv_cdf(1 - alpha / (2 * max(n_series, 1)))
    s = past_scores[np.isfinite(past_scores)]
    if len(s) < MIN_TAIL_HISTORY:
        return 1.5 * gauss
    u = float(np.quantile(s, 1 - TAIL))
    tail = s[s > u] - u
    if len(tail) == 0:
        return max(gauss, u)
    beta = float(np.median(tail)) / math.log(2)
    fitted = u + beta * math.log(TAIL / alpha) if alpha < TAIL else u
    return max(gauss, fitted)


def judge(rows: Iterable[Mapping[str, Any]], *, table: str, days: Sequence[dt.date],
          statuses: Mapping[dt.date, str] | None = None, settings: LearnedSettings = LearnedSettings(),
          sources: Mapping[str, str] | None = None, blocked: Iterable[dt.date] = (),
          entity: Iterable[str] = (), context: Iterable[str] = (),
          failed_columns: Mapping[dt.date, Iterable[str]] | None = None) -> list[Judgement]:
    """Judge each of `days` (in date order) against the history before it.

    rows: `validation/summaries` rows of this table (history and the judged days);
    statuses: 'valid' | 'quarantined' of earlier partitions (a day without a status and not
    judged here is not history). sources: derived feature -> source column, to name the
    source column in alerts. blocked: judged days quarantined by other checks (the suite, the
    entity key): they never become history. entity: the key columns (only their nulls are
    judged); context: columns that explain others but never alert (rolling windows).
    failed_columns: earlier days whose learned checks failed -> the columns that failed
    ('*' the table); such a day, even quarantined by learned checks alone, stays history with
    those columns left out (a false positive must not freeze the history: no cascade).

    No cascade, by construction: a day a learned check fails on is history for every other
    column, and the failed column's values on it are left out; a column that fails LEVEL_DAYS
    days in a row has shifted for good and restarts from the shift (its left-out days come
    back). A cap: when more than `max_quarantine_share` of the judged days (and more than
    two) would be quarantined by learned checks, none is: the run reports instead (every
    judgement `capped`, its failures recorded as warnings)."""
    out = _judge_all(rows, table=table, days=days, statuses=statuses, settings=settings, sources=sources,
                     blocked=blocked, entity=entity, context=context, failed_columns=failed_columns)
    quarantined = sum(j.quarantine for j in out)
    if settings.severity == "block" and quarantined > max(2, settings.max_quarantine_share * len(out)):
        for j in out:
            j.capped = True
    return out


def _judge_all(rows, *, table, days, statuses, settings, sources, blocked, entity, context,
               failed_columns) -> list[Judgement]:
    statuses = dict(statuses or {})
    sources = dict(sources or {})
    failed_columns = {d: set(cs) for d, cs in (failed_columns or {}).items()}
    t = _Table(rows, set(settings.columns) if settings.columns is not None else None, set(settings.exclude))
    judged = set(days)
    blocked = set(blocked)
    valid = {d for d in t.days if d not in judged and (statuses.get(d) == "valid" or d in failed_columns)}

    def history(i: int) -> list[int]:
        d = t.days[i]
        past = [k for k in range(i) if t.days[k] in valid and (d - t.days[k]).days <= 10 * settings.history_days]
        return past[-settings.history_days:]

    t.add_variant_columns()
    j = _Judge(t, settings, sources, entity=entity, context=context)
    left_out: dict[str, list[int]] = defaultdict(list)  # column -> days its values were left out
    for d, cs in failed_columns.items():
        if d in t.index and d not in judged:
            for c in cs:
                j.leave_out(t.index[d], c)
                left_out[c].append(t.index[d])
    out: list[Judgement] = []
    run: dict[str, list[int]] = defaultdict(list)  # judged days a column failed in a row
    shift_start: dict[str, int] = {}  # a failure that persisted LEVEL_DAYS days: the new normal
    for i, d in enumerate(t.days):
        if d not in judged and d not in valid:
            continue
        hist = history(i)
        _fill_variant(t, j, i, hist)
        if d not in judged:
            if len(hist) >= MIN_SERIES_HISTORY:
                j.judge(i, hist)  # past residuals of history days (point in time)
                for c in failed_columns.get(d, ()):
                    j.leave_out(i, c)  # its past score is not a clean score either
            continue
        shifted = {c: list(range(k, i))[-settings.history_days:] for c, k in shift_start.items()}
        out.append(_judge_day(t, j, i, hist, table, settings, sources, shifted))
        failed = {r.column for r in out[-1].failed if r.statistic != "fingerprint"}
        stale = any(r.statistic == "fingerprint" for r in out[-1].failed)
        for c in list(run):
            if c not in failed:
                del run[c]
        for c in failed - {TABLE}:
            run[c].append(i)
            if len(run[c]) >= LEVEL_DAYS and c not in shift_start:
                shift_start[c] = run[c][0]
                for k in left_out.pop(c, []):  # a confirmed shift: its days are the new normal
                    if k >= run[c][0]:
                        j.restore(k, c)
        if d in blocked or stale:
            continue  # the suite/entity quarantined it, or it is a copy: not history
        for c in failed:
            if c not in shift_start:
                j.leave_out(i, c)
                left_out[c].append(i)
        valid.add(d)
    return out


def _fill_variant(t: _Table, j: _Judge, i: int, hist: list[int]) -> None:
    d = t.days[i]
    for (c, s), col in t.col.items():
        if s != "variant_share":
            continue
        today = t.counts.get(d, {}).get(c)
        seen = {v for h in hist for v in t.counts.get(t.days[h], {}).get(c, {})}
        if today is None or not seen or not t.rows.get(d):
            val = np.nan
        else:
            normal = {_norm(v) for v in seen}
            val = sum(n for v, n in today.items() if v not in seen and _norm(v) in normal) / t.rows[d]
        t.x[i, col] = val
        j.y[i, col] = val


def _judge_day(t: _Table, j: _Judge, i: int, hist: list[int], table: str, settings: LearnedSettings,
               sources: Mapping[str, str], shifted: Mapping[str, list[int]] | None = None) -> Judgement:
    d = t.days[i]
    learning = len(hist) < settings.min_history
    severity = "warn" if learning else settings.severity
    jd = Judgement(table, d, learning, len(hist))
    where = f"{table} ds={d.isoformat()}"
    # stale copy: the same content as an earlier day, in a table whose days never repeat
    fp = t.fingerprints.get(d)
    if fp is not None:
        earlier = {t.fingerprints.get(t.days[k]): t.days[k] for k in range(max(0, i - settings.history_days), i)
                   if t.fingerprints.get(t.days[k]) is not None}
        hist_fps = [t.fingerprints[t.days[k]] for k in hist if t.days[k] in t.fingerprints]
        repeats = len(hist_fps) != len(set(hist_fps))
        copy_of = earlier.get(fp)
        failed = copy_of is not None and not repeats and t.rows.get(d, 0) > 0 and not learning
        jd.results.append(LearnedResult(
            table=table, ds=d, type=TYPE_PREFIX + "stale_copy", column=TABLE, statistic="fingerprint",
            observed=None, expected=None, expected_low=None, expected_high=None,
            score=1.0 if copy_of is not None else 0.0, threshold=0.5, success=not failed, severity=severity,
            message=f"{where} table: same content as ds={copy_of.isoformat()} (a stale copy; {len(hist)} valid "
                    "days)" if failed else None, history=len(hist), learning=learning))
    if len(hist) < MIN_SERIES_HISTORY or not t.keys:
        if learning:
            jd.results.append(LearnedResult(
                table=table, ds=d, type=TYPE_PREFIX + "learning", column=TABLE, statistic=None, observed=None,
                expected=None, expected_low=None, expected_high=None, score=None, threshold=None, success=True,
                severity="warn", message=None, history=len(hist), learning=True))
        return jd
    score, own, expected, scale = j.judge(i, hist, shifted)
    today = j.cscore[i]
    scored = np.flatnonzero(~np.isnan(today))
    alpha = settings.false_alarm_budget / 100.0 / max(len(scored), 1)  # the budget split over columns
    thresholds = {j.names[n]: _threshold(j.cscore[hist, n], alpha, len(j.members[n])) for n in scored}
    score = _vanished(t, i, hist, score, thresholds, alpha, j)
    moved = {t.keys[k][0] for k in np.flatnonzero(~np.isnan(own))
             if t.keys[k][0] in thresholds and own[k] > thresholds[t.keys[k][0]]}
    by_column: dict[str, list[int]] = {c: [k for k in j.members[j.names.index(c)] if not math.isnan(score[k])]
                                       for c in thresholds}
    for c in sorted(by_column):
        ks = by_column[c]
        k = max(ks, key=lambda x: score[x])
        stat = t.keys[k][1]
        threshold = thresholds[c]
        failed = bool(score[k] > threshold) and not learning  # learning mode records, never fails
        inv = ((lambda v: float(np.expm1(min(v, 700.0)))) if stat in COUNT_STATS else
               (lambda v: float(np.exp(min(v, 700.0)))) if stat in SCALE_STATS else (lambda v: v))
        band = threshold * scale[k]
        lo, hi = inv(expected[k] - band), inv(expected[k] + band)
        message = None
        if failed:
            others = sorted(moved - {c, TABLE} - ({sources.get(c)} if sources.get(c) else set()))
            message = _alert(where, c, stat, t, i, hist, k, sources.get(c), others)
        jd.results.append(LearnedResult(
            table=table, ds=d, type=TYPE_PREFIX + stat.split(":")[0], column=c, statistic=stat,
            observed=_f(t.x[i, k]), expected=_f(inv(expected[k])), expected_low=_f(lo), expected_high=_f(hi),
            score=_f(score[k]), threshold=threshold, success=not failed, severity=severity, message=message,
            history=len(hist), learning=learning, source_column=sources.get(c)))
    return jd


def _vanished(t: _Table, i: int, hist: list[int], score: np.ndarray, thresholds: Mapping[str, float],
              alpha: float, j: "_Judge") -> np.ndarray:
    """A segment (a value's share) absent today although it was present on (nearly) every day
    of its history, with a median share p: under binomial sampling on today's n rows that
    happens with probability (1 - p)^n; below the column's alpha it is a partial load, however small
    the segment (a 5% segment on 136 rows: 0.1%). Its score becomes threshold x log(P)/log(alpha)."""
    n = t.rows_arr[i]
    if not np.isfinite(n) or n <= 0 or not len(hist):
        return score
    score = score.copy()
    for k in j.share:
        c = t.keys[k][0]
        if c not in thresholds or t.x[i, k] != 0 or not np.isfinite(score[k]):
            continue
        past = t.x[hist, k]
        past = past[~np.isnan(past)]
        if len(past) < MIN_SERIES_HISTORY:
            continue
        p = float(np.median(past))  # the segment's usual share (binomial: its rows vary around it)
        if 0 < p < 1 and np.mean(past > 0) >= 0.95:  # never absent in its history (not a closed weekend)
            log_p0 = n * math.log1p(-p)
            if log_p0 < math.log(alpha):
                score[k] = max(score[k], thresholds[c] * log_p0 / math.log(alpha))
    return score


def _f(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _fmt(stat: str, v: float) -> str:
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


def _alert(where: str, column: str, stat: str, t: _Table, i: int, hist: list[int], k: int,
           source: str | None, others: list[str]) -> str:
    past = t.x[hist, k]
    past = past[~np.isnan(past)]
    lo, hi = (float(np.quantile(past, 0.05)), float(np.quantile(past, 0.95))) if len(past) else (math.nan, math.nan)
    value = float(t.x[i, k])
    if stat.startswith("share:"):
        what = f"{_fmt(stat, value)} of rows with {column} = {stat[6:]}"
    elif stat in WORDS:
        what = f"{_fmt(stat, value)} {WORDS[stat]}"
    else:
        what = f"{stat} {_fmt(stat, value)}"
    subject = "table" if column == TABLE else f"column {column}" + (f" (from {source})" if source else "")
    moved = "no other column moved" if not others else "moved with " + ", ".join(others[:3]) + (
        ", ..." if len(others) > 3 else "") + " but broke from its usual relation"
    return (f"{where} {subject}: {what} (usual {_fmt(stat, lo)}–{_fmt(stat, hi)}, "
            f"{len(hist)} valid days; {moved})")
