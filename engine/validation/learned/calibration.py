"""Calibration: the column score above which a column alerts, from its own past scores (step 4),
and the binomial test of a vanished segment."""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Mapping

import numpy as np

from typing import TYPE_CHECKING

from engine.validation.learned.tuning import TUNING as T

if TYPE_CHECKING:
    from engine.validation.learned.series import SeriesModel
    from engine.validation.learned.table import SummaryMatrix


def threshold(past_scores: np.ndarray, alpha: float, n_series: int) -> float:
    """The column score above which a column alerts, so that on a clean partition it alerts
    with probability <= alpha. Calibrated on the column's own past scores (replayed over its
    clean history): an exponential tail above their median, its scale from the median excess
    (robust both to a past fault and to the history's own truncation: days that alerted are
    not history); heavy tails from storms or holidays in the history raise it. Never below
    the Gaussian bound of the max over the column's series; with fewer than T.min_tail_history
    past scores, 1.5 x that bound (a conservative guess while the tail is unknown)."""
    alpha = min(max(alpha, 1e-9), 0.5)
    gauss = NormalDist().inv_cdf(1 - alpha / (2 * max(n_series, 1)))
    s = past_scores[np.isfinite(past_scores)]
    if len(s) < T.min_tail_history:
        return T.cold_start_widening * gauss
    u = float(np.quantile(s, 1 - T.tail))
    tail = s[s > u] - u
    if len(tail) == 0:
        return max(gauss, u)
    beta = float(np.median(tail)) / math.log(2)
    fitted = u + beta * math.log(T.tail / alpha) if alpha < T.tail else u
    return max(gauss, fitted)


def vanished(t: SummaryMatrix, i: int, hist: list[int], score: np.ndarray, thresholds: Mapping[str, float],
              alpha: float, j: SeriesModel) -> np.ndarray:
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
        if len(past) < T.min_series_history:
            continue
        p = float(np.median(past))  # the segment's usual share (binomial: its rows vary around it)
        if 0 < p < 1 and np.mean(past > 0) >= 0.95:  # never absent in its history (not a closed weekend)
            log_p0 = n * math.log1p(-p)
            if log_p0 < math.log(alpha):
                score[k] = max(score[k], thresholds[c] * log_p0 / math.log(alpha))
    return score
