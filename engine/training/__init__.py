"""TRAIN: estimators allowlist, parallel fit, selection on the latest window, evaluation."""
