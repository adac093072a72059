"""Co-movement: a series' break from its most correlated peers of other columns (step 2)."""
from __future__ import annotations

import numpy as np

from engine.validation.learned.table import mad, nanquantile
from engine.validation.learned.tuning import TUNING as T


def peer_break(zh: np.ndarray, z: np.ndarray, usable: np.ndarray, same_column: np.ndarray) -> np.ndarray:
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
    corr = np.nan_to_num(np.where(np.outer(ok, ok) & ~same_column, corr, 0.0))
    order = np.argsort(-np.abs(corr), axis=1)[:, :T.max_peers]  # m x peers
    c = np.take_along_axis(corr, order, axis=1)
    zp = z[order]
    valid = (np.abs(c) >= T.peer_min_correlation) & ~np.isnan(zp) & ok[:, None]
    count = valid.sum(axis=1)
    with np.errstate(all="ignore"):
        beta = np.where(valid, c * sd[:, None] / sd[order], np.nan)  # m x peers
        past = filled[:, :, None] - beta[None] * filled[:, order]  # n x m x peers
        spread = np.fmax(1.4826 * mad(past), nanquantile(np.abs(past), 0.9) / 1.645)
        spread = np.fmax(spread, 0.1)
        # a prediction far outside the peer's past range is uncertain (the regression's
        # prediction interval: its slope is known only to within spread / sqrt(sum x^2))
        lever = zp ** 2 / (len(filled) * np.fmax(sd[order], 1e-9) ** 2)
        spread = spread * np.sqrt(1 + 1 / len(filled) + lever)
        breaks = np.where(valid, np.abs(z[:, None] - beta * zp) / spread, np.nan)
        out = np.fmin.reduce(np.where(valid, breaks, np.inf), axis=1)  # explained by any one peer
    return np.where(count > 0, out, np.nan)
