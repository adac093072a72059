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


# --------------------------------------------------------------------------- parameter checks


@dataclass(frozen=True)
class TrainingLimits:
    """Bounds a night's fits must stay within (configurable: see `check_params`)."""

    max_n_estimators: int = 5000  # n_estimators (XGBoost, forests) and max_iter (histogram GBMs)
    pair_timeout_seconds: float = 3600.0  # a pair's grid search + refit; checked between fits


BOUNDED_BY_MAX_N_ESTIMATORS = ("n_estimators", "max_iter")


def limits_of(cfg: Any) -> TrainingLimits:
    """The configured limits (`training:` in project.yaml) of a Config or a Project."""
    configured = getattr(getattr(cfg, "project", cfg), "training", None)
    if configured is None:
        return TrainingLimits()
    return TrainingLimits(max_n_estimators=configured.max_n_estimators,
                          pair_timeout_seconds=configured.pair_timeout_seconds)


def _xgboost_constraints() -> dict[str, list[Any]]:
    """Types and ranges of the XGBoost parameters people set (scikit-learn's constraint
    vocabulary; XGBoost publishes none). Parameters not listed are checked by name only."""
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Interval, StrOptions

    def ints(low: int | None) -> list[Any]:
        return [Interval(Integral, low, None, closed="left"), None]

    def reals(low: float | None, high: float | None = None, closed: str = "left") -> list[Any]:
        return [Interval(Real, low, high, closed=closed), None]

    return {
        "n_estimators": ints(1), "max_depth": ints(0), "max_leaves": ints(0), "max_bin": ints(2),
        "learning_rate": reals(0.0, 1.0, "right"), "eta": reals(0.0, 1.0, "right"),
        "min_child_weight": reals(0.0), "gamma": reals(0.0), "max_delta_step": reals(0.0),
        "subsample": reals(0.0, 1.0, "right"), "colsample_bytree": reals(0.0, 1.0, "right"),
        "colsample_bylevel": reals(0.0, 1.0, "right"), "colsample_bynode": reals(0.0, 1.0, "right"),
        "reg_alpha": reals(0.0), "reg_lambda": reals(0.0), "scale_pos_weight": reals(0.0, None, "neither"),
        "n_jobs": ints(1), "random_state": ints(0), "verbosity": [Interval(Integral, 0, 3, closed="both"), None],
        "tree_method": [StrOptions({"hist", "approx", "exact", "auto"}), None],
        "grow_policy": [StrOptions({"depthwise", "lossguide"}), None],
    }


def check_params(name: str, params: dict[str, Any], *, limits: TrainingLimits | None = None) -> None:
    """Raise ValueError naming the parameter and what was expected unless every value in
    `params` has the type and range `name` accepts (scikit-learn: the estimator's own
    `_parameter_constraints`; XGBoost: `_xgboost_constraints`) and stays within `limits`."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    spec = get_estimator(name)
    limits = limits or TrainingLimits()
    try:
        est = spec.factory()
    except Exception as e:  # a broken estimator factory is a config fault too
        raise ValueError(f"{name!r} could not be built: {e}") from e
    unknown = sorted(set(params) - set(est.get_params()))
    if unknown:
        raise ValueError(f"{name!r} has no parameter(s) {unknown}")
    constraints = _xgboost_constraints() if spec.kind == "xgboost" else getattr(est, "_parameter_constraints", {})
    try:
        validate_parameter_constraints({k: v for k, v in constraints.items() if k in params},
                                       {k: v for k, v in params.items() if k in constraints}, caller_name=name)
    except InvalidParameterError as e:
        raise ValueError(str(e)) from None
    for key in BOUNDED_BY_MAX_N_ESTIMATORS:
        value = params.get(key)
        if isinstance(value, (int, float)) and value > limits.max_n_estimators:
            raise ValueError(f"parameter {key!r} of {name!r}: expected at most {limits.max_n_estimators} "
                             f"(training limit max_n_estimators), got {value!r}")


def check_estimator(name: str, task: str, params: dict[str, Any], *, grid: dict[str, list[Any]] | None = None,
                    limits: TrainingLimits | None = None) -> None:
    """Raise ValueError unless `name` is allowed for `task` and accepts `params` and every
    value of `grid` (types, ranges and `limits`: see `check_params`)."""
    spec = get_estimator(name)
    if spec.task != task:
        raise ValueError(f"{name!r} is a {spec.task} estimator, but the model's task is {task!r}")
    check_params(name, params, limits=limits)
    for key, values in (grid or {}).items():
        for value in values:
            check_params(name, {**params, key: value}, limits=limits)
