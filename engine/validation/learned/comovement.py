"""Co-movement: a series' break from its most correlated peers of other columns (step 2)."""
from __future__ import annotations

import warnings

import numpy as np

from engine.validation.learned.table import mad, nanquantile
from engine.validation.learned.tuning import TUNING as T


def peer_break(zh: np.ndarray, z: np.ndarray, usable: np.ndarray, same_column: np.ndarray) -> np.ndarray:
    """The smallest |z - prediction from one peer| in units of the past spread of that
    difference (a move any one strongly correlated peer explains is co-movement); NaN
    where a series has no peer (then its own move alone is its score). A derived feature
    and its source column are never each other's peers (one fault moves both).

    A relation is learned from the days both series hold a value (pairwise complete): a
    day left out of one series (its check failed there) is no evidence that the two moved
    apart; counting it as a zero residual would teach that a storm moving both is a break."""
    present = ~np.isnan(zh)
    filled = np.clip(np.where(present, zh, 0.0), -10, 10)  # a past outlier must not define a relation
    p = present.astype(float)
    with np.errstate(all="ignore"):
        n_ab = p.T @ p  # days both present
        s_a = filled.T @ p  # sum of a over the days b is present (row a, column b)
        s_aa = (filled ** 2).T @ p
        s_ab = filled.T @ filled
        mean_a, mean_b = s_a / n_ab, s_a.T / n_ab
        var_a = s_aa / n_ab - mean_a ** 2
        var_b = s_aa.T / n_ab - mean_b ** 2
        cov = s_ab / n_ab - mean_a * mean_b
        corr = cov / np.sqrt(var_a * var_b)
        slope = cov / var_b  # a on b
    ok_pair = np.outer(usable, usable) & ~same_column & (n_ab >= T.min_peer_history) & (var_a > 0) & (var_b > 0)
    corr = np.nan_to_num(np.where(ok_pair, corr, 0.0))
    order = np.argsort(-np.abs(corr), axis=1)[:, :T.max_peers]  # m x peers
    c = np.take_along_axis(corr, order, axis=1)
    beta = np.take_along_axis(np.nan_to_num(slope), order, axis=1)
    var_peer = np.take_along_axis(np.nan_to_num(var_b), order, axis=1)
    n_pair = np.take_along_axis(n_ab, order, axis=1)
    zp = z[order]
    valid = (np.abs(c) >= T.peer_min_correlation) & ~np.isnan(zp) & usable[:, None]
    count = valid.sum(axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        both = present[:, :, None] & present[:, order]  # n x m x peers
        past = np.where(both, filled[:, :, None] - beta[None] * filled[:, order], np.nan)
        spread = np.fmax(1.4826 * mad(past), nanquantile(np.abs(past), 0.9) / 1.645)
        spread = np.fmax(np.nan_to_num(spread), 0.1)
        # a prediction far outside the peer's past range is uncertain (the regression's
        # prediction interval: its slope is known only to within spread / sqrt(sum x^2))
        lever = zp ** 2 / (np.fmax(n_pair, 1) * np.fmax(var_peer, 1e-9))
        spread = spread * np.sqrt(1 + 1 / np.fmax(n_pair, 1) + lever)
        breaks = np.where(valid, np.abs(z[:, None] - beta * zp) / spread, np.nan)
        out = np.fmin.reduce(np.where(valid, breaks, np.inf), axis=1)  # explained by any one peer
    return np.where(count > 0, out, np.nan)
