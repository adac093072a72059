"""Every allowlisted estimator trains a pair whose features include a string (categorical)
column (issue 20: HistGradientBoosting failed every such pair on sparse one-hot input)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from engine.catalog import Catalog
from engine.config import ModelConfig
from engine.records import Lineage, Window
from engine.training.artifacts import load_artifact
from engine.training.estimators import ESTIMATORS, get_estimator
from engine.training.fit import ModelPlan, fit_pair
from engine.projection import design_matrix

BUILT_IN = sorted(n for n in ESTIMATORS if n.startswith(("xgboost.", "sklearn.")))


def _day(i: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=i)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_allowlisted_estimator_trains_with_a_categorical_feature(name, tmp_path):
    spec = get_estimator(name)
    task = spec.task
    metric = "auc" if task == "classification" else "mae"
    m = ModelConfig(model_id="m", feature_set="s", features=["x", "city"], label="y", task=task,
                    estimator=name, params={}, train_window_days=4, eval_window_days=1, metric=metric, min_rows=5)
    window = Window(_day(0), _day(2), _day(3), _day(3))
    lineage = Lineage("r", "training_sets", 0, "s", "features/s", 0, None, window)
    rng = np.random.default_rng(0)
    n = 80
    # a dozen values: the one-hot block is under 30% dense, where ColumnTransformer goes sparse
    city = rng.choice([f"c{k}" for k in range(12)], n)
    x = rng.uniform(size=n)
    signal = x + (city == "c1")
    label = (signal + rng.normal(0, 0.2, n) > 0.9).astype(int) if task == "classification" else signal
    pdf = pd.DataFrame({"split": ["train"] * 60 + ["eval"] * 20, "x": x, "city": city, "label": label})
    types = {"x": "numeric", "city": "categorical"}
    plan = ModelPlan(m, spec, types, "v1", "r", _day(4), Catalog(str(tmp_path / "lakehouse")), lineage)
    out = fit_pair(pdf, "all", plan, None)
    assert out.status == "challenger", out.reason
    assert out.metric_value == out.metric_value  # a number, not NaN
    model, meta = load_artifact(str(tmp_path / "lakehouse" / out.artifact_uri), out.sha256)
    X = design_matrix(pdf, meta.features, meta.feature_types, meta.kind, meta.categories)
    assert len(np.asarray(model.predict(X))) == n
