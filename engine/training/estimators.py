"""The estimator allowlist. YAML names an estimator from here; never an import path.

Extend it in code with `register_estimator`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class EstimatorSpec:
    name: str
    task: str  # classification | regression
    factory: Callable[..., Any]  # params -> unfitted estimator
    kind: str  # "xgboost" (native UBJ artifacts) or "sklearn" (skops artifacts)
    handles_missing: bool = False  # accepts NaN features (others fail the pair with a reason)
    trusted_types: frozenset[str] = frozenset()  # types its skops artifacts hold beyond the built-in ones


def _xgb(cls_name: str) -> Callable[..., Any]:
    def make(**params: Any) -> Any:
        import xgboost

        defaults = {"n_jobs": 1, "tree_method": "hist"}
        return getattr(xgboost, cls_name)(**{**defaults, **params})

    return make


def _sk(module: str, cls_name: str) -> Callable[..., Any]:
    def make(**params: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), cls_name)(**params)

    return make


ESTIMATORS: dict[str, EstimatorSpec] = {}


def register_estimator(name: str, task: str, factory: Callable[..., Any], kind: str = "sklearn", *,
                       handles_missing: bool = False, trusted_types: tuple[str, ...] = ()) -> None:
    """Allow an estimator. `kind` picks the artifact format: "xgboost" (native UBJ) or
    "sklearn" (skops; loading trusts skops' defaults, engine.training.artifacts.TRUSTED_TYPES
    and the exact type names given in `trusted_types`, nothing else). The
    training job ships the registered spec to the executors with the task, so a factory
    registered at runtime on the driver works there too."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be classification or regression, got {task!r}")
    if kind not in ("xgboost", "sklearn"):
        raise ValueError(f"kind must be xgboost or sklearn, got {kind!r}")
    ESTIMATORS[name] = EstimatorSpec(name, task, factory, kind, handles_missing, frozenset(trusted_types))


_MISSING_OK = {"xgboost.XGBClassifier", "xgboost.XGBRegressor", "sklearn.HistGradientBoostingClassifier",
               "sklearn.HistGradientBoostingRegressor"}

for _name, _task, _factory, _kind in [
    ("xgboost.XGBClassifier", "classification", _xgb("XGBClassifier"), "xgboost"),
    ("xgboost.XGBRegressor", "regression", _xgb("XGBRegressor"), "xgboost"),
    ("sklearn.LogisticRegression", "classification", _sk("sklearn.linear_model", "LogisticRegression"), "sklearn"),
    ("sklearn.Ridge", "regression", _sk("sklearn.linear_model", "Ridge"), "sklearn"),
    ("sklearn.HistGradientBoostingClassifier", "classification", _sk("sklearn.ensemble", "HistGradientBoostingClassifier"), "sklearn"),
    ("sklearn.HistGradientBoostingRegressor", "regression", _sk("sklearn.ensemble", "HistGradientBoostingRegressor"), "sklearn"),
    ("sklearn.RandomForestClassifier", "classification", _sk("sklearn.ensemble", "RandomForestClassifier"), "sklearn"),
    ("sklearn.RandomForestRegressor", "regression", _sk("sklearn.ensemble", "RandomForestRegressor"), "sklearn"),
]:
    register_estimator(_name, _task, _factory, _kind, handles_missing=_name in _MISSING_OK)


def get_estimator(name: str) -> EstimatorSpec:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; expected one of {sorted(ESTIMATORS)}") from None


def check_estimator(name: str, task: str, params: dict[str, Any]) -> None:
    """Raise ValueError unless `name` is allowed for `task` and accepts `params`."""
    spec = get_estimator(name)
    if spec.task != task:
        raise ValueError(f"{name!r} is a {spec.task} estimator, but the model's task is {task!r}")
    try:
        est = spec.factory()
        unknown = sorted(set(params) - set(est.get_params()))
    except Exception as e:  # a broken estimator factory is a config fault too
        raise ValueError(f"{name!r} could not be built: {e}") from e
    if unknown:
        raise ValueError(f"{name!r} has no parameter(s) {unknown}")
