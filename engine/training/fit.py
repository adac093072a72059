"""One (model, segment) pair on plain pandas: checks, grid search on the latest eval window,
refit, champion scoring on the same window, artifact. No Spark here: the training job runs
`fit_pair` on the executors, and the benchmark runs the very same function in one process.

Comparing with the champion: both models are scored on the same rows of the latest eval
window, namely the rows the champion was NOT trained on (ds after the last day it was fit
on: its eval_end when it was refit, else its train_end). The new model's number is that of
its fit on the train split, which has not seen any eval row either. Without that, a refit
champion would be scored on rows it was trained on and no challenger could ever win. When
the champion has seen every eval row (or the metric is undefined on the unseen ones, e.g.
AUC with one class), the whole eval window is used and the reason says so.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.catalog import Catalog, artifact_name
from engine.config import HIGHER_IS_BETTER, ModelConfig
from engine.projection import CATEGORICAL, NUMERIC, ProjectionError, categories_of, design_matrix
from engine.records import ArtifactMetadata, Lineage, ModelStatus
from engine.training import metrics as M
from engine.training.artifacts import load_artifact, save_artifact
from engine.training.estimators import EstimatorSpec


class PairFailure(Exception):
    """This pair cannot be trained; the message is the recorded reason."""

    status = ModelStatus.FAILED


class PairWaiting(PairFailure):
    """This pair cannot be trained YET: its window does not hold enough history (cold start)."""

    status = ModelStatus.WAITING


@dataclass(frozen=True)
class ModelPlan:
    """Everything an executor needs to train every segment of one model."""

    model: ModelConfig
    estimator: EstimatorSpec
    feature_types: dict[str, str]
    version: str  # e.g. v20261014
    run_id: str
    logical_date: dt.date
    catalog: Catalog
    lineage: Lineage  # training_sets / feature table versions, window, excluded days
    timeout_seconds: float | None = None  # the pair's fits; checked between fits (a fit is not interrupted)

    def artifact_name(self, segment: str) -> str:
        """The artifact folder relative to the lakehouse root (what the registry records)."""
        return artifact_name(self.model.model_id, segment, self.version)


@dataclass(frozen=True)
class ChampionRef:
    version: str
    uri: str  # resolved in this lakehouse
    sha256: str


@dataclass
class PairResult:
    model_id: str
    segment: str
    version: str
    status: str  # a ModelStatus value: challenger (trained, not yet gated) | failed | waiting
    reason: str | None = None
    metric: str | None = None
    metric_value: float = math.nan  # on the latest eval window, by the model fit on the train split
    train_value: float = math.nan  # on the train split, by the final model
    train_metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, Any]] = field(default_factory=list)  # [{params, value}] on the eval window
    champion_version: str | None = None
    champion_value: float = math.nan  # the champion's metric on the compared rows
    champion_reason: str | None = None  # why the champion could not be scored
    gate_value: float = math.nan  # the new model's metric on the same compared rows
    gate_rows: int = 0  # how many eval rows were compared
    gate_basis: str | None = None  # which rows, in words
    artifact_uri: str | None = None  # relative to the lakehouse root
    sha256: str | None = None
    n_train: int = 0
    n_eval: int = 0
    trained_at: dt.datetime | None = None
    seconds: float = 0.0

    @property
    def trained(self) -> bool:
        return self.status == ModelStatus.CHALLENGER.value


def make_estimator(spec: EstimatorSpec, params: dict[str, Any], feature_types: dict[str, str], features: list[str]):
    """An unfitted estimator (random_state 0 unless set); with string features, XGBoost uses
    its native categoricals and scikit-learn estimators get a one-hot encoder in front."""
    est = spec.factory(**params)
    if "random_state" in est.get_params() and "random_state" not in params and est.get_params()["random_state"] is None:
        est.set_params(random_state=0)  # reproducible: the same rows give the same model
    cats = [n for n in features if feature_types[n] == CATEGORICAL]
    if not cats:
        return est
    if spec.kind == "xgboost":
        return est.set_params(enable_categorical=True)
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    # Dense output: ColumnTransformer goes sparse when the one-hot block is under 30% dense
    # (a dozen categories), and HistGradientBoosting rejects sparse input ("Sparse data was
    # passed for X"); the encoded columns of a training set fit in memory as a dense array.
    encode = ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats)],
                               remainder="passthrough", sparse_threshold=0.0)
    return Pipeline([("encode", encode), ("estimator", est)])


def predict_scores(model: Any, task: str, X: pd.DataFrame) -> np.ndarray:
    """P(label = 1) for a classifier, the prediction for a regressor."""
    if task == "classification":
        return np.asarray(model.predict_proba(X))[:, 1].astype(float)
    return np.asarray(model.predict(X), dtype=float)


def grid_points(model: ModelConfig) -> list[dict[str, Any]]:
    """Every parameter combination of the grid (keys in sorted order), on top of `params`."""
    from sklearn.model_selection import ParameterGrid

    return [{**model.params, **point} for point in ParameterGrid(dict(model.grid))]


def _check(pdf: pd.DataFrame, plan: ModelPlan, X: pd.DataFrame, y: np.ndarray, is_train: np.ndarray) -> None:
    model = plan.model
    n_train, n_eval = int(is_train.sum()), int((~is_train).sum())
    window = plan.lineage.window
    if n_train < model.min_rows or n_eval == 0:
        # Cold start (the pair's rows begin inside its window, or there are none yet): more
        # nights will bring the history, so the pair waits. A full window that is still too
        # thin is a failure.
        first = int(pdf["day"].min()) if "day" in pdf.columns and len(pdf) else None
        cold = first is None or n_train == 0 or first > (window.train_start - EPOCH).days
        fault = PairWaiting if cold else PairFailure
        prefix = "waiting for history: " if cold else ""
        if n_train < model.min_rows:
            raise fault(f"{prefix}{n_train} training rows in {window.train_start}..{window.train_end} "
                        f"< min_rows {model.min_rows}")
        raise fault(f"{prefix}no rows in the eval window {window.eval_start}..{window.eval_end}")
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise PairFailure(f"label {model.label!r} has {bad} non-finite value(s)")
    if model.task == "classification":
        values = set(np.unique(y).tolist())
        if not values <= {0.0, 1.0}:
            raise PairFailure(f"label {model.label!r} must be 0/1 for classification, found {sorted(values)[:5]}")
        train_classes = np.unique(y[is_train])
        if len(train_classes) < 2:
            raise PairFailure(f"one label class in the train split (all {int(train_classes[0])})")
        if model.metric == "auc" and len(np.unique(y[~is_train])) < 2:
            raise PairFailure("one label class in the eval window: auc is undefined")
    for name in model.features:
        if plan.feature_types[name] != NUMERIC:
            continue
        values = X[name].to_numpy()
        inf = int(np.isinf(values).sum())
        if inf:
            raise PairFailure(f"feature {name!r} has {inf} infinite value(s)")
        nan = int(np.isnan(values).sum())
        if nan and not plan.estimator.handles_missing:
            raise PairFailure(f"feature {name!r} has {nan} missing/NaN value(s) and {model.estimator} "
                              "does not accept missing values")


# --------------------------------------------------------------------------- the pair


def fit_pair(pdf: pd.DataFrame, segment: str, plan: ModelPlan, champion: ChampionRef | None,
             threads: int = 1) -> PairResult:
    """Train one (model, segment) pair. `pdf` has columns split (train | eval), label and the
    model's features. Never raises: a pair that cannot train comes back failed, with the
    reason."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    model = plan.model
    result = PairResult(model.model_id, segment, plan.version, ModelStatus.FAILED.value, metric=model.metric)
    try:
        with threadpool_limits(limits=threads):
            _fit(pdf, segment, plan, champion, result)
        result.status = ModelStatus.CHALLENGER.value
    except PairFailure as e:
        result.status, result.reason = e.status.value, str(e)
    except ProjectionError as e:
        result.reason = str(e)
    except Exception as e:  # one bad pair fails alone, with its reason
        result.reason = f"{type(e).__name__}: {e}"
    result.seconds = time.perf_counter() - started
    return result


def _fit(pdf: pd.DataFrame, segment: str, plan: ModelPlan, champion: ChampionRef | None, out: PairResult) -> None:
    model = plan.model
    spec = plan.estimator
    higher = HIGHER_IS_BETTER[model.metric]
    pdf = pdf.reset_index(drop=True)
    is_train = (pdf["split"] == "train").to_numpy()
    out.n_train, out.n_eval = int(is_train.sum()), int((~is_train).sum())
    y = pd.to_numeric(pdf["label"], errors="coerce").astype("float64").to_numpy()
    categories = categories_of(pdf, model.features, plan.feature_types)
    X = design_matrix(pdf, model.features, plan.feature_types, spec.kind, categories)
    _check(pdf, plan, X, y, is_train)
    if model.task == "classification":
        y = y.astype(int)
    X_train, y_train, X_eval, y_eval = X[is_train], y[is_train], X[~is_train], y[~is_train]

    # Grid search: every point is fit on the train split and scored on the latest eval window.
    best: tuple[float, dict[str, Any], Any, np.ndarray] | None = None
    errors: list[str] = []
    points = grid_points(model)
    deadline = None if plan.timeout_seconds is None else time.perf_counter() + plan.timeout_seconds
    for i, params in enumerate(points):
        _check_deadline(deadline, plan, f"after {i} of {len(points)} grid points")
        try:
            est = make_estimator(spec, params, plan.feature_types, model.features).fit(X_train, y_train)
            pred = predict_scores(est, model.task, X_eval)
            value = M.score(model.metric, y_eval, pred)
        except Exception as e:
            errors.append(f"{_short(params)}: {type(e).__name__}: {e}")
            out.grid.append({"params": params, "value": None, "error": f"{type(e).__name__}: {e}"})
            continue
        out.grid.append({"params": params, "value": value})
        if best is None or M.better(value, best[0], higher):
            best = (value, params, est, pred)
    if best is None:
        raise PairFailure(f"no grid point could be fit: {errors[0]}")
    value, params, selected, eval_pred = best
    if value != value:
        raise PairFailure(f"{model.metric} on the eval window is undefined (NaN) for every grid point")
    out.params = params
    out.eval_metrics = M.score_all(model.task, y_eval, eval_pred)
    out.metric_value = out.eval_metrics[model.metric]

    final = selected
    if model.refit:
        _check_deadline(deadline, plan, "before the refit")
        final = make_estimator(spec, params, plan.feature_types, model.features).fit(X, y)
    out.train_metrics = M.score_all(model.task, y_train, predict_scores(final, model.task, X_train))
    out.train_value = out.train_metrics[model.metric]

    if champion is not None:
        out.champion_version = champion.version
        days = pdf["day"].to_numpy()[~is_train] if "day" in pdf.columns else None
        try:
            compare_with_champion(champion, plan, pdf[~is_train], y_eval, days, eval_pred, out)
        except Exception as e:
            out.champion_reason = f"{type(e).__name__}: {e}" if not isinstance(e, PairFailure) else str(e)

    out.trained_at = dt.datetime.now(dt.timezone.utc)
    out.artifact_uri = plan.artifact_name(segment)
    metadata = ArtifactMetadata(
        model_id=model.model_id, segment=segment, version=plan.version, run_id=plan.run_id,
        logical_date=plan.logical_date, trained_at=out.trained_at, estimator=model.estimator, task=model.task,
        label=model.label, segment_by=model.segment_by, features=tuple(model.features),
        feature_types=dict(plan.feature_types), categories=categories, params=params, grid=out.grid,
        refit=model.refit, metric=model.metric, train_metrics=out.train_metrics, eval_metrics=out.eval_metrics,
        n_train=out.n_train, n_eval=out.n_eval, lineage=plan.lineage,
    )
    out.sha256 = save_artifact(plan.catalog.under(out.artifact_uri), final, spec.kind, metadata).sha256


def compare_with_champion(champion: ChampionRef, plan: ModelPlan, eval_rows: pd.DataFrame, y_eval: np.ndarray,
                          days: np.ndarray | None, new_pred: np.ndarray, out: PairResult) -> None:
    """Score the champion (sha256-checked) and the new model on the same eval rows: those the
    champion was not trained on (see the module docstring). `days` = ds as epoch days."""
    model = plan.model
    cmodel, meta = load_artifact(champion.uri, champion.sha256)
    if meta.label != model.label or meta.task != model.task:
        raise PairFailure(f"champion {champion.version} predicts {meta.task} label {meta.label!r}, "
                          f"not {model.task} label {model.label!r}")
    unknown = [f for f in meta.features if plan.feature_types.get(f) != meta.feature_types[f]]
    if unknown:
        raise PairFailure(f"champion {champion.version} uses features not in this training set: {unknown}")
    X = design_matrix(eval_rows, meta.features, meta.feature_types, meta.kind, meta.categories)
    champ_pred = predict_scores(cmodel, model.task, X)
    fit_end = meta.fit_until
    why = "no unseen rows to compare on"
    if days is not None:
        unseen = days > (fit_end - EPOCH).days
        if unseen.any():
            why = f"{model.metric} is undefined on the {int(unseen.sum())} unseen rows"
            new_value = M.score(model.metric, y_eval[unseen], new_pred[unseen])
            champ_value = M.score(model.metric, y_eval[unseen], champ_pred[unseen])
            if new_value == new_value and champ_value == champ_value:
                out.gate_value, out.champion_value, out.gate_rows = new_value, champ_value, int(unseen.sum())
                out.gate_basis = f"the {out.gate_rows} eval rows after {fit_end}, which the champion was not trained on"
                return
    out.gate_value = M.score(model.metric, y_eval, new_pred)
    out.champion_value = M.score(model.metric, y_eval, champ_pred)
    out.gate_rows = len(y_eval)
    out.gate_basis = f"all {len(y_eval)} eval rows (the champion was trained on them; {why})"


EPOCH = dt.date(1970, 1, 1)


def _check_deadline(deadline: float | None, plan: ModelPlan, where: str) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise PairFailure(f"exceeded the per-pair training timeout of {plan.timeout_seconds:g} s {where}")


def _short(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)
