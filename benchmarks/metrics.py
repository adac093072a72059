"""Per-call cost of the engine's metrics (engine/training/metrics.py: numpy formulas, checked
against scikit-learn in tests/test_training.py) vs the same metrics through `sklearn.metrics`,
at the eval-window sizes a grid search scores. A classification pair makes about 12 calls
(one per grid point, two `score_all` of 4 metrics, 2-4 in the gate).

    PYTHONPATH=. python benchmarks/metrics.py [--repeat 200]

Prints CPU microseconds per call (process time, median of alternating rounds) and the load
average.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from engine.training import metrics as M


def sklearn_score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """The same metrics through sklearn.metrics, with the engine's NaN guards."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if len(y) == 0 or not np.all(np.isfinite(pred)):
        return math.nan
    positive, hit = y == 1, pred >= 0.5
    if metric == "auc":
        return math.nan if int(positive.sum()) in (0, len(y)) else float(skm.roc_auc_score(positive, pred))
    if metric == "logloss":
        return float(skm.log_loss(positive, np.clip(pred, 1e-15, 1 - 1e-15), labels=[False, True]))
    if metric == "accuracy":
        return float(skm.accuracy_score(positive, hit))
    if metric == "f1":
        return float(skm.f1_score(positive, hit, zero_division=0.0))
    if metric == "rmse":
        return float(skm.root_mean_squared_error(y, pred))
    if metric == "mae":
        return float(skm.mean_absolute_error(y, pred))
    if len(y) < 2 or float(np.ptp(y)) == 0.0:
        return math.nan
    return float(skm.r2_score(y, pred))


def _per_call(fn, metric, y, p, repeat: int) -> float:
    started = time.process_time()  # CPU time: fair on a shared machine
    for _ in range(repeat):
        fn(metric, y, p)
    return (time.process_time() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'metric':9} {'rows':>6} {'sklearn us':>11} {'engine us':>9} {'ratio':>6}")
    for n in (100, 1000, 10000):
        y_clf = (rng.random(n) > 0.6).astype(float)
        p_clf = np.clip(0.3 * y_clf + rng.random(n) * 0.7, 0, 1)
        y_reg = rng.normal(size=n)
        p_reg = y_reg + rng.normal(scale=0.5, size=n)
        for metric in M.CLASSIFICATION + M.REGRESSION:
            y, p = (y_clf, p_clf) if metric in M.CLASSIFICATION else (y_reg, p_reg)
            assert math.isclose(M.score(metric, y, p), sklearn_score(metric, y, p), rel_tol=1e-9), metric
            sk, nu = [], []
            for _ in range(args.rounds):  # alternate the two, take medians
                sk.append(_per_call(sklearn_score, metric, y, p, args.repeat))
                nu.append(_per_call(M.score, metric, y, p, args.repeat))
            s, u = statistics.median(sk), statistics.median(nu)
            print(f"{metric:9} {n:>6} {s:>11.1f} {u:>9.1f} {s / u:>6.1f}")
    with open("/proc/loadavg") as f:
        print("load average:", " ".join(f.read().split()[:3]))


if __name__ == "__main__":
    main()
