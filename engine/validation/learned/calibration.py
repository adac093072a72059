"""Calibration: the column score above which a column alerts, from its own past scores (step 4),
and the binomial test of a vanished segment."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy.stats import binom, t as student_t

from typing import TYPE_CHECKING

from engine.validation.learned.tuning import TUNING as T

if TYPE_CHECKING:
    from engine.validation.learned.series import SeriesModel
    from engine.validation.learned.table import SummaryMatrix


def floor(alpha: float, n_series: int, history: int) -> float:
    """The bound a column score never alerts below: the Bonferroni bound of the max over the
    column's series, from a Student t predictive distribution rather than a Gaussian one. A
    series' scale is estimated from `history` past days by a median absolute deviation, which
    is worth T.mad_efficiency x history Gaussian observations: the t bound widens it honestly
    while the history is short (cold start) and tends to the Gaussian bound as it grows."""
    p = 1 - alpha / (2 * max(n_series, 1))
    return float(student_t.ppf(p, max(T.mad_efficiency * history, 1.0)))


def threshold(past_scores: np.ndarray, alpha: float, n_series: int, history: int) -> float:
    """The column score above which a column alerts, so that on a clean partition it alerts
    with probability <= alpha. Calibrated on the column's own past scores (replayed over its
    clean history): an exponential tail above their median, its scale from the median excess
    (robust both to a past fault and to the history's own truncation: days that alerted are
    not history); heavy tails from storms or holidays in the history raise it. Never below
    `floor` (the t bound of the max over the column's series, wide while the history is
    short); with fewer than T.min_tail_history past scores, T.cold_start_widening x the
    floor (a conservative guess while the tail is unknown)."""
    alpha = min(max(alpha, 1e-9), 0.5)
    bound = floor(alpha, n_series, history)
    s = past_scores[np.isfinite(past_scores)]
    if len(s) < T.min_tail_history:
        return T.cold_start_widening * bound
    u = float(np.quantile(s, 1 - T.tail))
    tail = s[s > u] - u
    if len(tail) == 0:
        return max(bound, u)
    beta = float(np.median(tail)) / math.log(2)
    fitted = u + beta * math.log(T.tail / alpha) if alpha < T.tail else u
    return max(bound, fitted)


def vanished(t: SummaryMatrix, i: int, hist: list[int], score: np.ndarray, thresholds: Mapping[str, float],
              alpha: float, j: SeriesModel) -> np.ndarray:
    """A segment (a value's share) absent today although it was present on (nearly) every day
    of its history, with a median share p: under binomial sampling on today's n rows that
    happens with probability (1 - p)^n (p: a low day of its history when its share moves more
    than binomial sampling would); below the column's alpha it is a partial load, however small
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
        if len(past) < T.min_series_history:
            continue
        p = float(np.median(past))  # the segment's usual share (binomial: its rows vary around it)
        rows = t.rows_arr[hist]
        rows = rows[np.isfinite(rows) & (rows > 0)]
        binomial = float(np.mean(p * (1 - p) / rows)) if len(rows) else math.inf
        if (1.4826 * float(np.median(np.abs(past - p)))) ** 2 > 2 * binomial:
            # overdispersed (its share moves with the day, e.g. cancellations with the weather):
            # a low day of its history is what an absence must be improbable under
            p = float(np.quantile(past, 0.1))
        if 0 < p < 1 and np.mean(past > 0) >= 0.95:  # never absent in its history (not a closed weekend)
            log_p0 = n * math.log1p(-p)
            if log_p0 < math.log(alpha):
                score[k] = max(score[k], thresholds[c] * log_p0 / math.log(alpha))
    return score


def emerged(t: SummaryMatrix, i: int, hist: list[int], score: np.ndarray, thresholds: Mapping[str, float],
            alpha: float, j: SeriesModel) -> np.ndarray:
    """A fraction of rows (nulls, duplicates, negatives, ...) that was 0 on all but at most
    T.rare_days of its history's days and is not today: the Gaussian noise floor of a
    fraction near 0 understates how improbable k such rows are. With m such rows in the
    history's N rows, the rate is at most p0 = (m + 3) / N (the rule of three: 3 / N with none);
    k or more of today's n rows have binomial probability P = P(X >= k | n, p0), and below
    the column's alpha the score becomes threshold x log(P)/log(alpha), as for a vanished
    segment."""
    n = t.rows_arr[i]
    if not np.isfinite(n) or n <= 0 or len(hist) < T.min_series_history:
        return score
    rows_all = t.rows_arr[hist]
    total = float(np.nansum(rows_all[np.isfinite(rows_all) & (rows_all > 0)]))
    if total <= 0:
        return score
    out = score
    for k in np.flatnonzero(j.fraction):
        c, stat = t.keys[k]
        if stat.startswith("share:") or stat == "mode_share" or c not in thresholds or not np.isfinite(score[k]):
            continue
        today = t.x[i, k]
        past = t.x[hist, k]
        seen = np.isfinite(past) & np.isfinite(rows_all)
        if not (today > 0) or not seen.any() or np.mean(past[seen] > 0) > T.rare_days:
            continue
        p0 = min((float(np.sum(past[seen] * rows_all[seen])) + 3.0) / total, 0.5)
        hits = max(int(round(today * n)), 1)
        log_p = float(binom.logsf(hits - 1, int(n), p0))
        if log_p < math.log(alpha):
            out = out.copy() if out is score else out
            out[k] = max(out[k], thresholds[c] * log_p / math.log(alpha))
    return out
