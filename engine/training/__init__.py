"""TRAIN: estimators allowlist, parallel fit, selection on the latest window, evaluation.

    train_models(spark, cfg, models, logical_date, run_id, sets, validation_run_id) -> [ModelOutcome]
"""
from engine.training.train import model_version, train_models

__all__ = ["model_version", "train_models"]
