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
    max_depth: int = 64  # max_depth of any tree estimator (a deeper tree is a memory bomb, not a model)
    max_grid_points: int = 256  # points of one model's grid (each is a fit of every segment, every night)


BOUNDED_BY_MAX_N_ESTIMATORS = ("n_estimators", "max_iter")
BOUNDED_BY_MAX_DEPTH = ("max_depth",)


class ParamError(ValueError):
    """A parameter value the estimator does not accept; `key` is its path in the model file
    (`params.<name>` or `grid.<name>.<index>`)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def limits_of(cfg: Any) -> TrainingLimits:
    """The configured limits (`training:` in project.yaml) of a Config or a Project."""
    configured = getattr(getattr(cfg, "project", cfg), "training", None)
    if configured is None:
        return TrainingLimits()
    return TrainingLimits(max_n_estimators=configured.max_n_estimators,
                          pair_timeout_seconds=configured.pair_timeout_seconds,
                          max_depth=configured.max_depth, max_grid_points=configured.max_grid_points)


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


def _accepts_bool(constraints: list[Any]) -> bool:
    """Whether a constraint list takes True/False as such (Python's bool is an int, so an
    integer Interval would let `n_estimators: true` through as 1)."""
    from sklearn.utils._param_validation import Interval, make_constraint

    for c in constraints:
        made = make_constraint(c)
        if isinstance(made, Interval) or type(made).__name__ == "_RandomStates":
            continue
        try:
            if made.is_satisfied_by(True):
                return True
        except Exception:
            continue
    return False


def _expected(constraints: list[Any]) -> str:
    from sklearn.utils._param_validation import make_constraint

    texts = [str(make_constraint(c)) for c in constraints]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def check_params(name: str, params: dict[str, Any], *, limits: TrainingLimits | None = None) -> None:
    """Raise ParamError (a ValueError) naming the parameter and what was expected unless every
    value in `params` has the type and range `name` accepts (scikit-learn: the estimator's own
    `_parameter_constraints`; XGBoost: `_xgboost_constraints`; a boolean only where a boolean
    is meant) and stays within `limits`."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    spec = get_estimator(name)
    limits = limits or TrainingLimits()
    try:
        est = spec.factory()
    except Exception as e:  # a broken estimator factory is a config fault too
        raise ValueError(f"{name!r} could not be built: {e}") from e
    unknown = sorted(set(params) - set(est.get_params()))
    if unknown:
        raise ParamError(f"params.{unknown[0]}", f"{name!r} has no parameter(s) {unknown} "
                         f"(expected one of {sorted(est.get_params())})")
    constraints = _xgboost_constraints() if spec.kind == "xgboost" else getattr(est, "_parameter_constraints", {})
    for key, value in params.items():
        if isinstance(value, bool) and key in constraints and not _accepts_bool(constraints[key]):
            raise ParamError(f"params.{key}", f"The {key!r} parameter of {name} must be {_expected(constraints[key])}. "
                             f"Got {value!r} (a boolean) instead.")
        try:
            if key in constraints:
                validate_parameter_constraints({key: constraints[key]}, {key: value}, caller_name=name)
        except InvalidParameterError as e:
            raise ParamError(f"params.{key}", str(e)) from None
    for keys, bound, setting in ((BOUNDED_BY_MAX_N_ESTIMATORS, limits.max_n_estimators, "max_n_estimators"),
                                 (BOUNDED_BY_MAX_DEPTH, limits.max_depth, "max_depth")):
        for key in keys:
            value = params.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > bound:
                raise ParamError(f"params.{key}", f"parameter {key!r} of {name!r}: expected at most {bound} "
                                 f"(training.{setting} in project.yaml), got {value!r}")


def grid_points(grid: dict[str, list[Any]]) -> int:
    """How many parameter combinations a grid searches (each is a fit per segment)."""
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def check_estimator(name: str, task: str, params: dict[str, Any], *, grid: dict[str, list[Any]] | None = None,
                    limits: TrainingLimits | None = None) -> None:
    """Raise ValueError unless `name` is allowed for `task` and accepts `params` and every
    value of `grid` (types, ranges and `limits`: see `check_params`), and the grid has at
    most `limits.max_grid_points` points. A ParamError's `key` names the faulty entry."""
    spec = get_estimator(name)
    limits = limits or TrainingLimits()
    if spec.task != task:
        raise ValueError(f"{name!r} is a {spec.task} estimator, but the model's task is {task!r}")
    check_params(name, params, limits=limits)
    grid = grid or {}
    for key, values in grid.items():
        if not values:
            raise ParamError(f"grid.{key}", "expected a non-empty list of values to search")
        for i, value in enumerate(values):
            try:
                check_params(name, {**params, key: value}, limits=limits)
            except ParamError as e:
                where = f"grid.{key}.{i}" if e.key == f"params.{key}" else e.key.replace("params.", "grid.", 1)
                raise ParamError(where, str(e)) from None
    points = grid_points(grid)
    if points > limits.max_grid_points:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        raise ParamError("grid", f"{points} grid points ({sizes}), expected at most {limits.max_grid_points} "
                         "(training.max_grid_points in project.yaml): every point is a fit of every segment, every night")
