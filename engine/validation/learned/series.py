"""The series model: expected value and scale of every (column, statistic) series, point in time,
and the per-series and per-column scores of a day (see the package docstring, steps 1-3)."""
from __future__ import annotations

import math
import re
import warnings
from typing import Iterable, Mapping

import numpy as np

from engine.config import LearnedSettings
from engine.validation.learned.comovement import peer_break
from engine.validation.learned.table import SummaryMatrix, mad, nanmedian, nanquantile, transform
from engine.validation.learned.tuning import TUNING as T
from engine.validation.learned.vocabulary import (APPROXIMATE, CONTEXT, COUNT_STATS, EXTREMES, FRACTION_STATS,
                                                  SCALE_STATS, TABLE)


class SeriesModel:
    def __init__(self, table: SummaryMatrix, settings: LearnedSettings, sources: Mapping[str, str] | None = None,
                 entity: Iterable[str] = (), context: Iterable[str] = (),
                 inputs: Mapping[str, Iterable[str]] | None = None):
        self.t = table
        self.s = settings
        self.stats = [s for _, s in table.keys]
        n, m = table.x.shape
        self.y = np.column_stack([transform(s, table.x[:, j]) for j, s in enumerate(self.stats)]) if m else table.x
        self.z = np.full((n, m), np.nan)  # point-in-time standardized residuals
        self.score = np.full((n, m), np.nan)  # point-in-time scores of the series (combined)
        self.fraction = np.array([s in FRACTION_STATS or s.startswith("share:") for s in self.stats], bool)
        self.count = np.array([s in COUNT_STATS for s in self.stats], bool)
        self.scale_stat = np.array([s in SCALE_STATS for s in self.stats], bool)
        # a zero spread (ties, a handful of rows) reads as what the day's rows can resolve
        # (stddev / sqrt(rows)), not as log(0): one such day must not dominate the series
        for k in np.flatnonzero(self.scale_stat):
            sd = table.col.get((table.keys[k][0], "stddev"))
            if sd is not None:
                with np.errstate(all="ignore"):
                    floor = np.nan_to_num(table.x[:, sd] / np.sqrt(np.maximum(table.rows_arr, 1.0)))
                x = table.x[:, k]
                self.y[:, k] = transform(self.stats[k], np.where(x > 0, x, np.where(x == 0, floor, np.nan)))
        self.measurement = np.array([APPROXIMATE.get(s, 0.0) for s in self.stats])  # noise of an approximate count
        self.share = np.flatnonzero([s.startswith("share:") for s in self.stats])
        columns = [c for c, _ in table.keys]
        self.columns = columns
        root = [(sources or {}).get(c, c) for c in columns]
        # a feature and the columns it is computed from are one column to co-movement: a
        # derived feature that moved with its input cannot explain that input's move
        linked = {(c, s) for c, cs in (inputs or {}).items() for s in cs}
        self.same_column = np.array([[a == b or (a, b) in linked or (b, a) in linked for b in root] for a in root],
                                    bool) if m else np.zeros((0, 0), bool)
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
        # a numeric column constant within (nearly) every day holds the day's value (a holiday
        # flag, the day's temperature): its level is the calendar's, not a distribution
        day_level = np.array([s in ("mean", "iqr", "zero_fraction", "negative_fraction") or s.startswith("share:")
                              or bool(re.fullmatch(r"p\d\d", s)) for s in self.stats])
        self.day_mode = np.where(day_level & np.array([(c, "mean") in table.col for c in columns]),
                                 [table.col.get((c, "mode_share"), -1) for c in columns], -1)
        order = np.array([s in EXTREMES or s in SCALE_STATS or bool(re.fullmatch(r"p\d\d", s))
                          for s in self.stats])
        self.distinct = np.where(order, [table.col.get((c, "distinct"), -1) for c in columns], -1)
        self.excluded = np.array([s in EXTREMES for s in self.stats], bool) | self.key
        location = np.array([s == "mean" or bool(re.fullmatch(r"p\d\d", s)) for s in self.stats])
        self.sd = np.where(location, [table.col.get((c, "stddev"), -1) for c in columns], -1)
        # a string column's mean length: the spread of its values' lengths (from the day's
        # value counts), whose sampling noise bounds the mean's like a numeric stddev does
        self.length_sd = np.full((n, m), np.nan)
        for k, (c, s) in enumerate(table.keys):
            if s == "mean_length":
                for i, d in enumerate(table.days):
                    counts = table.counts.get(d, {}).get(c)
                    if counts:
                        w = np.array(list(counts.values()), float)
                        lengths = np.array([len(v) for v in counts], float)
                        mu = np.average(lengths, weights=w)
                        self.length_sd[i, k] = math.sqrt(np.average((lengths - mu) ** 2, weights=w))
        # a column's location statistics (mean, quantiles; the table's lag mean and quantiles)
        lag = np.array([s == "lag_mean" or bool(re.fullmatch(r"lag_p\d\d", s)) for s in self.stats])
        self.lag_location = np.flatnonzero([c == TABLE and (s == "lag_mean" or bool(re.fullmatch(r"lag_p\d\d", s)))
                                            for c, s in table.keys])
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
        level (median of the latest T.level_days days), with a local trend and a weekday profile
        where each explains the series' one-step-ahead errors better."""
        y = self.y[hist]
        dow = self.t.dow[hist]
        n, L = len(hist), T.level_days
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = y - nanmedian(y)
            season = np.zeros((7, y.shape[1]))
            if n >= 14:  # a weekday's effect is kept where it stands out of its standard error
                sd = 1.4826 * mad(r)
                for d in range(7):
                    sel = r[dow == d]
                    if len(sel) >= 2:
                        effect = np.nan_to_num(nanmedian(sel))
                        season[d] = np.where(np.abs(effect) > 3 * 1.25 * sd / math.sqrt(len(sel)), effect, 0.0)
            d = y - season[dow]
            level = nanmedian(d[-L:])
            if n >= 2 * L:  # one-step-ahead errors of the local level (trend lag included)
                med = nanmedian(np.lib.stride_tricks.sliding_window_view(d, L, axis=0), axis=2)  # med[s]: d[s:s+L]
                resid = d[L:] - med[:-1]
                if n >= 3 * L:  # a local linear trend: slope between the latest two windows
                    ahead = (L + 1) / 2 / L
                    trend_resid = d[2 * L:] - (med[L:-1] + (med[L:-1] - med[:-L - 1]) * ahead)
                    resid = resid[L:]
                    use = mad(trend_resid) < 0.9 * mad(resid)
                    level = np.where(use, med[-1] + (med[-1] - med[-1 - L]) * ahead, level)
                    resid = np.where(use, trend_resid, resid)
            else:
                resid = d - level
            scale = 1.4826 * mad(resid)
            mean_abs = np.nanmean(np.abs(resid - nanmedian(resid)), axis=0)
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
            # (the pooled spread: a zero-inflated column, all zeros on most days, has a median
            # stddev of 0 but a mean that moves with its rare non-zero rows)
            spread = np.sqrt(np.nanmean(self.t.x[hist][:, np.maximum(self.sd, 0)] ** 2, axis=0))
            floor = np.where(self.sd >= 0, np.nan_to_num(spread) / math.sqrt(rows), floor)
            length_spread = np.sqrt(np.nanmean(self.length_sd[hist] ** 2, axis=0))
            # (and never finer than one character in one of today's rows: a column whose values
            # all had one length, Dog and Cat, is not broken by one Goat)
            floor = np.where(np.isfinite(length_spread),
                             np.fmax(np.nan_to_num(length_spread) / math.sqrt(rows), 1.0 / rows), floor)
            floor = np.fmax(floor, self.measurement * (1.0 - np.clip(level, 0, 1)))  # what the count can tell
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
        z[(counts < T.min_series_history) | self.excluded | self._unlearnable(hist)] = np.nan
        self.z[i] = z
        zh = self.z[hist]
        # the series' own spread of past residuals (heavy tails widen it)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.fmax(1.4826 * mad(zh), nanquantile(np.abs(zh), 0.9) / 1.645)
        spread = np.where(np.isnan(spread) | (spread < 1.0), 1.0, spread)
        own = np.abs(z) / spread
        score = own.copy()
        usable = np.sum(~np.isnan(zh), axis=0) >= T.min_peer_history
        if usable.sum() >= 2 and len(hist) >= T.min_peer_history:
            peer = peer_break(zh, z, usable, self.same_column)
            score = np.where(np.isnan(peer), own, np.minimum(own, peer))
        score = self._translated(i, own, score, expected, scale * spread)
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

    def _translated(self, i: int, own: np.ndarray, score: np.ndarray, expected: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
        """The event-time lag moved as a whole: its mean and quantiles all by about the same
        number of hours (each within T.translation_tolerance of its own scale of that common
        move), the signature of event times written in another time zone. Features derived
        from the event time (its hour) move with it, so co-movement must not explain it: the
        lag keeps its own scores. (Scoring all of them by the largest own score caught one more
        shift on the development sets and cost 3 false alerts there: not taken.)"""
        ks = self.lag_location
        if len(ks) < 3:
            return score
        d = self.y[i, ks] - expected[ks]
        if np.isnan(d).any():
            return score
        shift = float(np.median(d))
        if shift == 0 or np.max(np.abs(d - shift) / scale[ks]) > T.translation_tolerance:
            return score
        score = score.copy()
        score[ks] = np.fmax(score[ks], own[ks])
        return score

    def _unlearnable(self, hist: list[int]) -> np.ndarray:
        """Series with nothing to learn from: order statistics (min, max, quantiles) of columns
        with at most T.discrete values (they jump between a few values by nature; their mean and
        fractions watch those columns), and every series of a column that was null throughout
        its history (it has no distribution yet; when a source starts filling it, its
        statistics are learned from the filled days). A numeric column constant within at
        least 90% of its history's days holds one value per day: its level, quantiles, zero
        and negative fractions and value shares move with the calendar (a holiday flag turns
        1 at Christmas), so only its nulls and its constancy (mode_share) are judged."""
        x = self.t.x[hist]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            distinct = nanmedian(x[:, np.maximum(self.distinct, 0)])
            nulls = nanmedian(x[:, np.maximum(self.nulls, 0)])
            share = nanmedian(x[:, self.share]) if len(self.share) else np.zeros(0)
        discrete = (self.distinct >= 0) & (distinct <= T.discrete)
        empty = (self.nulls >= 0) & (nulls >= 1.0 - 1e-9)
        # a monotonic id (or a counter of days): its centre rose on nearly every step of the
        # history; its level is the calendar, not a distribution (nulls are still judged)
        centre = x[:, np.maximum(self.center, 0)]
        with np.errstate(all="ignore"):
            steps = np.diff(centre, axis=0)
            rising = np.sum(steps > 0, axis=0) / np.maximum(np.sum(~np.isnan(steps), axis=0), 1)
        monotonic = (self.center >= 0) & (np.sum(~np.isnan(steps), axis=0) >= T.min_series_history - 1) & (
            rising >= T.monotonic_share)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            constant = nanquantile(x[:, np.maximum(self.day_mode, 0)], 0.1)
        day_value = (self.day_mode >= 0) & (constant >= 1.0 - 1e-9)
        new = np.zeros(len(self.stats), bool)
        new[self.share] = ~(share > 0)  # a value absent from most of the history (a new category)
        return discrete | empty | new | monotonic | day_value
