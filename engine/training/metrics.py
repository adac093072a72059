"""Metrics on plain arrays. Classification models are scored on P(label = 1)."""
from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("auc", "logloss", "accuracy", "f1")
REGRESSION = ("rmse", "mae", "r2")


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION if task == "classification" else REGRESSION


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """One metric; NaN when it is undefined on these rows (e.g. AUC with one class)."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if len(y) == 0 or not np.all(np.isfinite(pred)):
        return math.nan
    if metric == "auc":
        return float(skm.roc_auc_score(y, pred)) if len(np.unique(y)) == 2 else math.nan
    if metric == "logloss":
        return float(skm.log_loss(y, np.clip(pred, 1e-15, 1 - 1e-15), labels=[0, 1]))
    if metric == "accuracy":
        return float(np.mean((pred >= 0.5) == (y == 1)))
    if metric == "f1":
        return float(skm.f1_score(y, (pred >= 0.5).astype(int), zero_division=0.0))
    if metric == "rmse":
        return float(np.sqrt(np.mean((y - pred) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y - pred)))
    if metric == "r2":
        return float(skm.r2_score(y, pred)) if len(y) > 1 else math.nan
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
