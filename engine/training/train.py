"""TRAIN: every (model, segment) pair of the night in ONE Spark job, then the promotion gate
and ONE registry commit on the driver.

The job reads the recorded training_sets version, turns each model's feature maps into
columns, and runs `fit_pair` per pair with groupBy(...).applyInPandas. Pairs are spread over
the tasks by their row counts (largest first onto the least loaded task), so two cores stay
busy until the end. Executors write the artifacts; only one small result row per pair comes
back to the driver.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
from typing import Any

import pandas as pd

from engine import registry
from engine.catalog import Catalog
from engine.config import Config, ModelConfig
from engine.observability import ModelOutcome
from engine.projection import ALL_SEGMENT, map_value
from engine.records import ModelStatus
from engine.training import gate as G
from engine.training.estimators import get_estimator, limits_of
from engine.training.fit import ChampionRef, ModelPlan, PairResult, fit_pair
from engine.training_sets import TrainingSetsResult, read_training_set

log = logging.getLogger("retrain")

RESULT_SCHEMA = (
    "model_id string, segment string, version string, status string, reason string, metric string, "
    "metric_value double, train_value double, train_metrics string, eval_metrics string, params string, "
    "grid string, champion_version string, champion_value double, champion_reason string, gate_value double, "
    "gate_rows long, gate_basis string, artifact_uri string, "
    "sha256 string, n_train long, n_eval long, trained_at string, seconds double"
)
_JSON_FIELDS = ("train_metrics", "eval_metrics", "params", "grid")


def model_version(logical_date: dt.date) -> str:
    """The version of every model trained for a logical date: re-running the date replaces it."""
    return f"v{logical_date:%Y%m%d}"


# --------------------------------------------------------------------------- plans


def make_plans(cfg: Config, models: list[ModelConfig], logical_date: dt.date, run_id: str, sets: TrainingSetsResult,
               validation_run_id: str | None) -> dict[str, ModelPlan]:
    version = model_version(logical_date)
    cat = Catalog.of(cfg)
    timeout = limits_of(cfg).pair_timeout_seconds
    return {
        m.model_id: ModelPlan(
            model=m, estimator=get_estimator(m.estimator),
            feature_types=dict(sets.models[m.model_id].projection.feature_types), version=version, run_id=run_id,
            logical_date=logical_date, catalog=cat, lineage=sets.lineage(cfg, m.model_id, validation_run_id),
            timeout_seconds=timeout,
        )
        for m in models if m.model_id in sets.models
    }


# --------------------------------------------------------------------------- placement


_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def spark_int_hash(value: int, seed: int = 42) -> int:
    """Spark's Murmur3 hash of an INT (what `repartition(n, col)` uses), as a signed int."""
    k1 = _rotl((value & _M32) * 0xCC9E2D51 & _M32, 15) * 0x1B873593 & _M32
    h1 = (_rotl(seed ^ k1, 13) * 5 + 0xE6546B64) & _M32
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _M32
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _M32
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def slot_keys(n: int) -> list[int]:
    """For each task index p < n, an int key that `repartition(n, key)` sends to task p."""
    keys: dict[int, int] = {}
    i = 0
    while len(keys) < n:
        keys.setdefault(spark_int_hash(i) % n, i)  # Python % is pmod
        i += 1
    return [keys[p] for p in range(n)]


def assign_tasks(pairs: dict[tuple[str, str], int], n_tasks: int) -> dict[tuple[str, str], int]:
    """Largest pair first onto the least loaded task (LPT); returns pair -> task index."""
    load = [0] * n_tasks
    out: dict[tuple[str, str], int] = {}
    for pair, rows in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        task = min(range(n_tasks), key=lambda t: (load[t], t))
        out[pair] = task
        load[task] += max(rows, 1)
    return out


# --------------------------------------------------------------------------- the job


def _result_row(r: PairResult) -> dict[str, Any]:
    row = dataclasses.asdict(r)
    for name in _JSON_FIELDS:
        row[name] = json.dumps(row[name], sort_keys=True, default=str)
    row["trained_at"] = r.trained_at.isoformat() if r.trained_at else None
    return row


def _pair_result(row: dict[str, Any]) -> PairResult:
    data = dict(row)
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name]) if data[name] else ({} if name != "grid" else [])
    data["trained_at"] = dt.datetime.fromisoformat(data["trained_at"]) if data["trained_at"] else None
    for name in ("metric_value", "train_value", "champion_value", "gate_value"):
        data[name] = math.nan if data[name] is None else data[name]
    return PairResult(**data)


def pair_frame(pdf: pd.DataFrame, plan: ModelPlan, columns: dict[tuple[str, str], str]) -> pd.DataFrame:
    """The frame fit_pair takes, from one pair's training rows (_split, label, _day, _key and
    each feature in the column `columns[(name, type)]`). Rows arrive in shuffle order; they
    are sorted so the same rows always give the same model."""
    pdf = pdf.sort_values(["_day", "_key"], kind="stable")
    data = {"split": pdf["_split"].to_numpy(), "label": pdf["label"].to_numpy(), "day": pdf["_day"].to_numpy()}
    for name in plan.model.features:
        data[name] = pdf[columns[(name, plan.feature_types[name])]].to_numpy()
    return pd.DataFrame(data)


def _trainer(plans: dict[str, ModelPlan], pair_ids: dict[int, tuple[str, str]],
             champions: dict[tuple[str, str], ChampionRef], columns: dict[tuple[str, str], str]):
    result_columns = [f.name for f in dataclasses.fields(PairResult)]

    def train_group(pdf: pd.DataFrame) -> pd.DataFrame:
        model_id, segment = pair_ids[int(pdf["_pair"].iat[0])]
        plan = plans[model_id]
        try:
            result = fit_pair(pair_frame(pdf, plan, columns), segment, plan, champions.get((model_id, segment)))
        except Exception as e:  # never let one pair take the job down
            result = PairResult(model_id, segment, plan.version, ModelStatus.FAILED.value,
                                reason=f"{type(e).__name__}: {e}", metric=plan.model.metric)
        return pd.DataFrame([_result_row(result)], columns=result_columns)

    return train_group


def run_job(spark, cfg: Config, plans: dict[str, ModelPlan], sets: TrainingSetsResult,
            champions: dict[tuple[str, str], ChampionRef]) -> list[PairResult]:
    """Train every pair of `plans` in one Spark job; return one result per pair."""
    from pyspark.sql import functions as F

    pairs = {p: n for p, n in sets.pairs.items() if p[0] in plans}
    if not pairs:
        return []
    columns: dict[tuple[str, str], str] = {}
    for plan in plans.values():
        for name in plan.model.features:
            columns.setdefault((name, plan.feature_types[name]), f"_f{len(columns)}")
    n_tasks = max(1, min(len(pairs), 2 * spark.sparkContext.defaultParallelism))
    task_of = assign_tasks(pairs, n_tasks)
    keys = slot_keys(n_tasks)
    pair_ids = dict(enumerate(sorted(pairs)))
    # Each row carries two ints (its pair, and the planned task's key) instead of strings.
    pair_of = F.create_map(*[x for i, (m, s) in pair_ids.items() for x in (F.lit(f"{m}\x00{s}"), F.lit(i))])
    slot_of = F.create_map(*[x for i, p in pair_ids.items() for x in (F.lit(i), F.lit(keys[task_of[p]]))])

    df = read_training_set(spark, cfg, plans, sets.version)
    df = df.select(
        F.element_at(pair_of, F.concat_ws("\x00", "model_id", "segment")).cast("int").alias("_pair"),
        F.col("split").alias("_split"), F.unix_date("ds").alias("_day"), F.xxhash64("row_key").alias("_key"), "label",
        *[map_value(name, kind).alias(col) for (name, kind), col in columns.items()],
    )
    df = df.withColumn("_slot", F.element_at(slot_of, F.col("_pair")).cast("int"))
    # repartition(n, _slot) puts each pair on its planned task; grouping by _slot too reuses
    # that partitioning (no second shuffle), and AQE does not coalesce a repartition(n).
    results = (
        df.repartition(n_tasks, "_slot")
        .groupBy("_slot", "_pair")
        .applyInPandas(_trainer(plans, pair_ids, champions, columns), RESULT_SCHEMA)
        .collect()
    )
    return [_pair_result(r.asDict()) for r in results]


# --------------------------------------------------------------------------- registry


def _baseline(pair_entries: list[registry.RegistryEntry], version: str) -> tuple[registry.RegistryEntry | None, bool]:
    """The model a new `version` is compared with, and whether the current champion IS
    `version` (a re-run of the date: then the baseline is the champion before it)."""
    current = [e for e in pair_entries if e.status == ModelStatus.CHAMPION]
    others = [e for e in current if e.version != version]
    if others:
        return max(others, key=lambda e: e.version), False
    if current:
        previous = [e for e in pair_entries
                    if e.status == ModelStatus.RETIRED and e.version < version and e.artifact_uri]
        return (max(previous, key=lambda e: e.version) if previous else None), True
    return None, False


def train_models(spark, cfg: Config, models: list[ModelConfig], logical_date: dt.date, run_id: str,
                 sets: TrainingSetsResult, validation_run_id: str | None = None, *,
                 gate: bool = True) -> list[ModelOutcome]:
    """Train the built models of `sets` (one Spark job), gate them, update the registry in
    one commit, and return one outcome per pair (plus one per skipped model).

    Outcome statuses (ModelStatus values, as in the registry): champion (promoted), rejected,
    failed, waiting (not enough history yet), challenger (gate=False), skipped.
    Outcome value: the new model's metric on the rows compared with the champion when there
    is one (champion_value on the same rows), else on the whole latest eval window.
    """
    outcomes = [
        ModelOutcome(m.model_id, "*", ModelStatus.SKIPPED.value, metric=m.metric, reason=sets.skipped[m.model_id])
        for m in models if m.model_id in sets.skipped
    ]
    plans = make_plans(cfg, models, logical_date, run_id, sets, validation_run_id)
    if not plans:
        return outcomes
    version = model_version(logical_date)
    now = dt.datetime.now(dt.timezone.utc)
    cat = Catalog.of(cfg)

    by_pair: dict[tuple[str, str], list[registry.RegistryEntry]] = {}
    for e in registry.entries(spark, cfg):
        if e.model_id in plans:
            by_pair.setdefault(e.key, []).append(e)
    baselines = {pair: _baseline(es, version) for pair, es in by_pair.items()}
    champions = {pair: ChampionRef(b.version, registry.artifact(cat, b), b.sha256)
                 for pair, (b, _) in baselines.items() if b is not None and b.artifact_uri}

    results = run_job(spark, cfg, plans, sets, champions)
    seen = {r.model_id for r in results}
    for model_id, plan in plans.items():
        if model_id not in seen:  # built, but not one row in its window
            segment = ALL_SEGMENT if plan.model.segment_by is None else "*"
            window = plan.lineage.window
            results.append(PairResult(
                model_id, segment, version, ModelStatus.WAITING.value, metric=plan.model.metric,
                reason=f"waiting for history: no training rows in the window {window.train_start}..{window.eval_end} "
                       "(after exclusions and label maturity)"))

    changed: list[registry.RegistryEntry] = []
    for r in sorted(results, key=lambda r: (r.model_id, r.segment)):
        plan = plans[r.model_id]
        model = plan.model
        baseline, replaces_itself = baselines.get((r.model_id, r.segment), (None, False))
        decision = G.decide(model, value=r.metric_value, champion_version=r.champion_version,
                            champion_value=r.champion_value, champion_problem=r.champion_reason, gate=gate,
                            compared=r.gate_value, basis=r.gate_basis,
                            untrained=None if r.trained else ModelStatus(r.status), reason=r.reason)
        lin = plan.lineage
        new = registry.RegistryEntry(
            model_id=r.model_id, segment=r.segment, version=version, run_id=run_id, logical_date=logical_date,
            status=decision.status, reason=decision.reason, estimator=model.estimator, task=model.task,
            metric=model.metric, metric_value=_num(r.metric_value), train_value=_num(r.train_value),
            champion_version=r.champion_version, champion_value=_num(r.champion_value),
            gate_value=_num(r.gate_value), gate_rows=r.gate_rows or None,
            train_metrics=r.train_metrics, eval_metrics=r.eval_metrics, params=r.params,
            artifact_uri=r.artifact_uri, sha256=r.sha256,
            training_sets_path=lin.training_sets, training_sets_version=lin.training_sets_version,
            feature_set=lin.feature_set, feature_table=lin.feature_table, feature_version=lin.feature_version,
            validation_run_id=validation_run_id,
            train_start=lin.window.train_start, train_end=lin.window.train_end,
            eval_start=lin.window.eval_start, eval_end=lin.window.eval_end,
            excluded_days=list(lin.excluded_days), n_train=r.n_train, n_eval=r.n_eval,
            refit=model.refit, trained_at=r.trained_at, updated_at=now,
        )
        changed.append(new)
        old = [e for e in by_pair.get((r.model_id, r.segment), [])
               if e.status == ModelStatus.CHAMPION and e.version != version]
        if decision.status == ModelStatus.CHAMPION:
            for e in old:
                changed.append(dataclasses.replace(
                    e, status=ModelStatus.RETIRED, updated_at=now,
                    reason=f"retired: replaced by {version}: {decision.reason}"))
        elif replaces_itself and baseline is not None:
            # A re-run of the date replaced the champion's own row and did not win: the
            # champion before it serves again.
            changed.append(dataclasses.replace(
                baseline, status=ModelStatus.CHAMPION, updated_at=now,
                reason=f"champion again: the re-run of {version} was {decision.status.value}"))
        outcomes.append(ModelOutcome(
            model_id=r.model_id, segment=r.segment, status=decision.status.value,
            metric=model.metric, value=_num(r.metric_value if r.gate_value != r.gate_value else r.gate_value),
            champion_value=_num(r.champion_value),
            version=version, reason=decision.reason,
        ))
    registry.commit(spark, cfg, changed)
    _mirror_to_mlflow(cfg, changed, run_id)
    return outcomes


def _mirror_to_mlflow(cfg: Config, changed: list[registry.RegistryEntry], run_id: str) -> None:
    """Log the committed rows to MLflow when `mlflow.tracking_uri` is set. MLflow mirrors the
    registry (which stays the truth): a tracking failure is logged, never fails training."""
    settings = cfg.project.mlflow
    if not settings.tracking_uri:
        return
    from engine.errors import TrackingError
    from engine.mlflow_log import log_models

    cat = Catalog.of(cfg)
    located = [dataclasses.replace(e, artifact_uri=registry.artifact(cat, e)) if e.artifact_uri else e
               for e in changed]
    try:
        log_models(settings.tracking_uri, located, retrain_run_id=run_id, registry_uri=settings.registry_uri,
                   experiment_prefix=settings.experiment_prefix)
    except TrackingError as e:
        log.warning("mlflow: %s", e)


def _num(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)
