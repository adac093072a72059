"""Metrics on plain arrays. Classification models are scored on P(label = 1)."""
from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("auc", "logloss", "accuracy", "f1")
REGRESSION = ("rmse", "mae", "r2")


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION if task == "classification" else REGRESSION


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """One metric; NaN when it is undefined on these rows (e.g. AUC with one class).
    Plain numpy (checked against scikit-learn in tests/test_training.py): it runs about 12
    times per pair, and benchmarks/metrics.py measured sklearn.metrics at 15-190x the CPU
    time per call (0.7-5.9 ms vs 14-300 us at 100-1,000 rows; ~60 ms vs ~2 ms per
    classification pair), against a per-pair overhead budget of 10 ms (issue 11)."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if len(y) == 0 or not np.all(np.isfinite(pred)):
        return math.nan
    if metric == "auc":
        pos = y == 1
        n_pos = int(pos.sum())
        n_neg = len(y) - n_pos
        if n_pos == 0 or n_neg == 0:
            return math.nan
        from scipy.stats import rankdata

        ranks = rankdata(pred)  # average ranks for ties
        return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    if metric == "logloss":
        p = np.clip(pred, 1e-15, 1 - 1e-15)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if metric == "accuracy":
        return float(np.mean((pred >= 0.5) == (y == 1)))
    if metric == "f1":
        hit = pred >= 0.5
        tp = float(np.sum(hit & (y == 1)))
        wrong = float(np.sum(hit != (y == 1)))
        return tp / (tp + wrong / 2) if tp + wrong > 0 else 0.0
    if metric == "rmse":
        return float(np.sqrt(np.mean((y - pred) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y - pred)))
    if metric == "r2":
        total = float(np.sum((y - y.mean()) ** 2))
        if len(y) < 2 or total == 0.0:
            return math.nan
        return 1.0 - float(np.sum((y - pred) ** 2)) / total
    raise ValueError(f"unknown metric {metric!r}")


def score_all(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {m: score(m, y, pred) for m in metric_names(task)}


def better(a: float, b: float, higher_is_better: bool) -> bool:
    """Is `a` strictly better than `b`? NaN is never better; anything beats NaN."""
    if a != a:
        return False
    if b != b:
        return True
    return a > b if higher_is_better else a < b
