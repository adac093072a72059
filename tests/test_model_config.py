"""Model config files: the shipped demo models parse; every fault names the file and the key."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from engine.config import load_config
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "model_id": "m1", "feature_set": "orders", "features": ["amount", "items", "region"], "label": "late",
    "task": "classification", "estimator": "xgboost.XGBClassifier", "grid": {"max_depth": [2, 4]},
    "train_window_days": 14, "eval_window_days": 3, "metric": "auc",
}


@pytest.fixture
def conf(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(REPO / "conf", target)
    return target


def error_for(conf: Path, **changes) -> tuple[Path, str]:
    data = {**BASE, **changes}
    for key in [k for k, v in changes.items() if v is None]:
        data.pop(key)
    path = conf / "models" / f"{data.get('model_id', 'm1')}.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    return path, str(info.value)


def test_shipped_demo_models(conf):
    cfg = load_config(conf)
    late, minutes = cfg.models["late_delivery"], cfg.models["delivery_time"]
    assert (late.estimator, late.segment_by, late.metric, late.cadence) == (
        "xgboost.XGBClassifier", "region", "auc", "daily")
    assert minutes.estimator.startswith("sklearn.") and minutes.task == "regression"
    assert minutes.metric in ("mae", "rmse") and minutes.segment_by is None
    # the regressor runs on a cron cadence: not every day, but at least weekly
    days = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(14)]
    due = [d for d in days if minutes.due(d)]
    assert 2 <= len(due) < 14 and all(late.due(d) for d in days)
    assert late.slo.met(0.9) and not late.slo.met(0.5) and late.promotion.min_delta > 0


def test_minimal_model_gets_defaults(conf):
    (conf / "models" / "m1.yaml").write_text(yaml.safe_dump(BASE))
    m = load_config(conf).models["m1"]
    assert (m.cadence, m.refit, m.min_rows, m.segment_by, m.promotion.min_delta) == ("daily", True, 50, None, 0.0)
    assert m.due(dt.date(2026, 3, 4))


@pytest.mark.parametrize("changes, key, says", [
    ({"learning_rate": 0.1}, "learning_rate", "unknown key"),
    ({"label": None}, "label", "required key is missing"),
    ({"estimator": "os.system"}, "estimator", "unknown estimator 'os.system'"),
    ({"estimator": "xgboost.XGBRegressor"}, "estimator", "is a regression estimator, but the model's task is 'classification'"),
    ({"grid": {"max_deepth": [2]}}, "grid.max_deepth.0", "has no parameter(s) ['max_deepth']"),
    ({"params": {"alpha": 1.0}, "grid": {}, "estimator": "sklearn.LogisticRegression"}, "params.alpha",
     "has no parameter(s) ['alpha']"),
    ({"grid": {"max_depth": []}}, "grid.max_depth", "expected a non-empty list"),
    ({"segment_by": "late"}, "segment_by", "'late' is a label of feature set 'orders'"),
    ({"segment_by": "region"}, "segment_by", "'region' is also listed in features"),
    ({"grid": {"max_depth": 3}}, "grid.max_depth", "valid list"),
    ({"metric": "precision"}, "metric", "'precision'"),
    ({"metric": "rmse"}, "metric", "'rmse' is not a classification metric"),
    ({"task": "ranking"}, "task", "'ranking'"),
    ({"eval_window_days": 14}, "(top level)", "eval_window_days must be smaller than train_window_days"),
    ({"train_window_days": 0}, "train_window_days", "greater than or equal to 1"),
    ({"cadence": "hourly"}, "cadence", "expected 'daily', 'weekly' or a 5-field cron expression, got 'hourly'"),
    ({"cadence": "0 0 * *"}, "cadence", "5-field cron"),
    ({"slo": {"min": "high"}}, "slo.min", "'high'"),
    ({"slo": {"at_least": 0.7}}, "slo.at_least", "unknown key"),
    ({"promotion": {"min_delta": -0.1}}, "promotion.min_delta", "greater than or equal to 0"),
    ({"min_rows": 0}, "min_rows", "greater than or equal to 1"),
    ({"max_quarantined_share": 1.5}, "max_quarantined_share", "less than or equal to 1"),
    ({"features": []}, "features", "at least 1"),
    ({"features": ["amount", "late"]}, "features.1", "label 'late' is also listed as a feature"),
    ({"features": ["amount", "tip"]}, "features.1", "'tip' is not a feature of feature set 'orders'"),
    ({"features": ["amount", "delivery_minutes"]}, "features.1", "'delivery_minutes' is not a feature"),
    ({"label": "amount", "features": ["items"]}, "label", "'amount' is not a label of feature set 'orders'"),
    ({"feature_set": "payments"}, "feature_set", "unknown feature set 'payments'"),
    ({"segment_by": "country"}, "segment_by", "'country' is not a column of feature set 'orders'"),
    ({"model_id": "m 1"}, "model_id", "should match pattern"),
])
def test_model_errors_name_file_and_key(conf, changes, key, says):
    path, msg = error_for(conf, **changes)
    if "model_id" in changes:
        path = conf / "models" / "m 1.yaml"
    assert f"{path}: {key}: " in msg, msg
    assert says in msg, msg


def test_model_id_must_match_the_file_name(conf):
    (conf / "models" / "other.yaml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match=r"other\.yaml: model_id: expected 'other' \(the file name\), got 'm1'"):
        load_config(conf)


def test_not_a_mapping_or_not_yaml(conf):
    (conf / "models" / "m1.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"m1\.yaml: expected a mapping, got list"):
        load_config(conf)
    (conf / "models" / "m1.yaml").write_text("model_id: [m1\n")
    with pytest.raises(ConfigError, match=r"m1\.yaml: not valid YAML"):
        load_config(conf)


def test_weekly_and_cron_cadence(conf):
    (conf / "models" / "m1.yaml").write_text(yaml.safe_dump({**BASE, "cadence": "weekly"}))
    (conf / "models" / "m2.yaml").write_text(yaml.safe_dump({**BASE, "model_id": "m2", "cadence": "0 0 1 * *"}))
    cfg = load_config(conf)
    weekly, monthly = cfg.models["m1"], cfg.models["m2"]
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(35)]
    assert [d for d in days if weekly.due(d)] == [d for d in days if d.weekday() == 0]
    assert [d for d in days if monthly.due(d)] == [dt.date(2026, 3, 1), dt.date(2026, 4, 1)]


@pytest.mark.parametrize("params, key, says", [
    ({"n_estimators": "lots"}, "params.n_estimators",
     "The 'n_estimators' parameter of xgboost.XGBClassifier must be an int in the range [1, inf)"),
    ({"learning_rate": 3}, "params.learning_rate",
     "The 'learning_rate' parameter of xgboost.XGBClassifier must be a float in the range (0.0, 1.0]"),
    ({"n_estimators": 10**9}, "params.n_estimators",
     "parameter 'n_estimators' of 'xgboost.XGBClassifier': expected at most 5000"),
    # issue 16: a YAML boolean is not an int, and a depth of a million is not a model
    ({"n_estimators": True}, "params.n_estimators",
     "The 'n_estimators' parameter of xgboost.XGBClassifier must be an int in the range [1, inf) or None. "
     "Got True (a boolean) instead."),
    ({"max_depth": 1000000}, "params.max_depth",
     "parameter 'max_depth' of 'xgboost.XGBClassifier': expected at most 64 (training.max_depth in project.yaml), "
     "got 1000000"),
])
def test_parameter_values_are_checked_at_load(conf, params, key, says):
    path, message = error_for(conf, params=params, grid={})
    assert message.startswith(f"{path}: {key}: ") and says in message, message
    assert "\n" not in message


@pytest.mark.parametrize("estimator, task, metric, params, key, says", [
    ("sklearn.RandomForestRegressor", "regression", "mae", {"n_estimators": True}, "params.n_estimators",
     "The 'n_estimators' parameter of sklearn.RandomForestRegressor must be an int in the range [1, inf). Got True"),
    ("sklearn.RandomForestRegressor", "regression", "mae", {"max_depth": 1000000}, "params.max_depth",
     "expected at most 64"),
    ("sklearn.Ridge", "regression", "mae", {"alpha": False}, "params.alpha", "Got False (a boolean)"),
    ("sklearn.LogisticRegression", "classification", "auc", {"warm_start": "yes"}, "params.warm_start",
     "The 'warm_start' parameter of sklearn.LogisticRegression must be"),
])
def test_sklearn_parameters_are_checked_with_their_own_constraints(conf, estimator, task, metric, params, key, says):
    path, message = error_for(conf, estimator=estimator, task=task, metric=metric, params=params, grid={},
                              label="late" if task == "classification" else "delivery_minutes")
    assert message.startswith(f"{path}: {key}: ") and says in message, message


def test_booleans_pass_where_the_estimator_takes_a_boolean(conf):
    (conf / "models" / "m1.yaml").write_text(yaml.safe_dump({
        **BASE, "estimator": "sklearn.RandomForestClassifier", "params": {"bootstrap": False, "max_depth": 8},
        "grid": {}}))
    assert load_config(conf).models["m1"].params == {"bootstrap": False, "max_depth": 8}


def test_a_bad_grid_value_names_its_index(conf):
    path, message = error_for(conf, grid={"max_depth": [2, 4, True]})
    assert message.startswith(f"{path}: grid.max_depth.2: ") and "Got True (a boolean)" in message, message


def test_a_grid_larger_than_max_grid_points_is_refused(conf):
    grid = {"max_depth": list(range(1, 11)), "min_child_weight": list(range(1, 11)),
            "n_estimators": list(range(10, 110))}  # 10,000 points
    path, message = error_for(conf, grid=grid)
    assert message == (f"{path}: grid: 10000 grid points (10 max_depth x 10 min_child_weight x 100 n_estimators), "
                       "expected at most 256 (training.max_grid_points in project.yaml): every point is a fit of "
                       "every segment, every night"), message
    project = conf / "project.yaml"
    data = yaml.safe_load(project.read_text())
    data["training"] = {**(data.get("training") or {}), "max_grid_points": 10_000}
    project.write_text(yaml.safe_dump(data))
    assert len(load_config(conf).models["m1"].grid["n_estimators"]) == 100  # configurable


def test_two_files_with_the_same_model_id_are_refused_naming_both(conf):
    (conf / "models" / "m1.yaml").write_text(yaml.safe_dump(BASE))
    (conf / "models" / "m1.yml").write_text(yaml.safe_dump({**BASE, "metric": "logloss"}))
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    message = str(info.value)
    assert message == (f"{conf / 'models' / 'm1.yaml'}: model_id 'm1' is also defined by {conf / 'models' / 'm1.yml'} "
                       "(expected one file per model: keep one of them)"), message


def test_check_params_uses_the_estimators_own_constraints():
    from engine.training.estimators import TrainingLimits, check_estimator, check_params

    with pytest.raises(ValueError, match=r"The 'alpha' parameter of sklearn.Ridge must be a float in the range \[0.0, inf\)"):
        check_params("sklearn.Ridge", {"alpha": -1})
    with pytest.raises(ValueError, match=r"The 'max_depth' parameter of sklearn.RandomForestRegressor must be an int"):
        check_params("sklearn.RandomForestRegressor", {"max_depth": "deep"})
    with pytest.raises(ValueError, match=r"'max_iter' of 'sklearn.HistGradientBoostingRegressor': expected at most 100"):
        check_params("sklearn.HistGradientBoostingRegressor", {"max_iter": 101}, limits=TrainingLimits(max_n_estimators=100))
    with pytest.raises(ValueError, match="has no parameter"):
        check_params("sklearn.Ridge", {"depth": 3})
    check_params("xgboost.XGBRegressor", {"n_estimators": 50, "max_depth": 3, "subsample": 0.8, "tree_method": "hist"})
    check_params("sklearn.LogisticRegression", {"C": 0.5, "max_iter": 200})
    # every grid value is checked, not only the first
    with pytest.raises(ValueError, match=r"The 'max_depth' parameter of xgboost.XGBRegressor"):
        check_estimator("xgboost.XGBRegressor", "regression", {}, grid={"max_depth": [2, -3]})
