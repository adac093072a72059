"""REDUCE: the training sets of every model due on a logical date, from one pass over the
valid feature partitions.

Window convention (all dates inclusive; D = logical date, d = the label's delay_days):

    eval_end    = D - d                              the latest ds whose label has matured
    eval_start  = eval_end - (eval_window_days - 1)  the latest eval_window_days days
    train_end   = eval_start - 1
    train_start = eval_end - (train_window_days - 1)

So the whole window is train_window_days calendar days ending at the label cutoff: the
latest eval_window_days of them are the eval split, the days before are the train split. A
partition is used only if its ds is in the window, is not excluded (quarantined) and its
labels have matured (ds + delay_days <= D); rows whose label is null are dropped (unknown
outcome). Excluded days are not replaced by older ones: the window is calendar days.

A model is skipped (not built, `result.skipped[model_id]` says why) when more than
`max_quarantined_share` of the train_window_days days of its window are excluded, when
its feature table does not exist, or when the table lacks one of its columns.

Rows of `training_sets` (Delta, partitioned by model_id; one schema for every model):

    run_id, segment, split (train | eval), ds, row_key (the entity as JSON), label (double),
    features   map<string, double>   numeric features (ints, booleans, timestamps as
                                     epoch seconds, dates as epoch days)
    categories map<string, string>   string features
    model_id

Spark work: each feature table is read once (one scan feeds every model of the feature set:
each row is exploded into the (model, split) rows it belongs to), the rows of all models are
written in ONE Delta commit that replaces the model_id partitions of the models built (so
re-running a date is idempotent), and one grouped count reads the new version back for the
per-(model, segment, split) row counts. The number of Spark jobs does not grow with the
number of models.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from engine import tables
from engine.config import Config, ModelConfig

TABLE = "training_sets"
NULL_SEGMENT = "__null__"  # the segment of rows whose segment_by value is null
ALL_SEGMENT = "all"  # the segment of an unsegmented model

NUMERIC = "numeric"
CATEGORICAL = "categorical"

ROW_COLUMNS = ["run_id", "segment", "split", "ds", "row_key", "label", "features", "categories", "model_id"]


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A model's training window for one logical date (inclusive dates)."""

    train_start: dt.date
    train_end: dt.date
    eval_start: dt.date
    eval_end: dt.date  # = the label cutoff: logical date - label delay_days

    @property
    def days(self) -> list[dt.date]:
        n = (self.eval_end - self.train_start).days + 1
        return [self.train_start + dt.timedelta(days=i) for i in range(n)]

    def split(self, day: dt.date) -> str | None:
        if self.train_start <= day <= self.train_end:
            return "train"
        if self.eval_start <= day <= self.eval_end:
            return "eval"
        return None


def model_window(model: ModelConfig, label_delay_days: int, logical_date: dt.date) -> Window:
    """The window of `model` on `logical_date` (see the module docstring)."""
    eval_end = logical_date - dt.timedelta(days=label_delay_days)
    eval_start = eval_end - dt.timedelta(days=model.eval_window_days - 1)
    train_start = eval_end - dt.timedelta(days=model.train_window_days - 1)
    return Window(train_start, eval_start - dt.timedelta(days=1), eval_start, eval_end)


def label_delay(cfg: Config, model: ModelConfig) -> int:
    return cfg.feature_sets[model.feature_set].labels[model.label].delay_days


def max_quarantined_share(cfg: Config, model: ModelConfig) -> float:
    if model.max_quarantined_share is not None:
        return model.max_quarantined_share
    return cfg.project.validation.max_quarantined_share


# --------------------------------------------------------------------------- results


@dataclass
class ModelSet:
    """What was built for one model."""

    model_id: str
    feature_set: str
    window: Window
    used_days: list[dt.date]  # window days that were read (not excluded)
    excluded_days: list[dt.date]  # window days left out because they were quarantined
    feature_types: dict[str, str]  # feature -> numeric | categorical
    rows: int = 0
    segments: dict[str, dict[str, int]] = field(default_factory=dict)  # segment -> split -> rows


@dataclass
class TrainingSetsResult:
    run_id: str
    logical_date: dt.date
    path: str  # the training_sets table
    version: int | None  # the training_sets version written (None: nothing built)
    feature_versions: dict[str, int]  # feature set -> version read
    feature_tables: dict[str, str]  # feature set -> table path
    models: dict[str, ModelSet] = field(default_factory=dict)  # built models
    skipped: dict[str, str] = field(default_factory=dict)  # model_id -> reason

    @property
    def built(self) -> list[str]:
        return sorted(self.models)

    @property
    def rows(self) -> dict[str, int]:
        return {m: s.rows for m, s in self.models.items()}

    @property
    def pairs(self) -> dict[tuple[str, str], int]:
        """(model_id, segment) -> rows (train + eval)."""
        return {(m, seg): sum(splits.values()) for m, s in self.models.items() for seg, splits in s.segments.items()}


# --------------------------------------------------------------------------- row projection


def feature_kind(data_type: T.DataType) -> str | None:
    if isinstance(data_type, T.StringType):
        return CATEGORICAL
    if isinstance(data_type, (T.NumericType, T.BooleanType, T.TimestampType, T.TimestampNTZType, T.DateType)):
        return NUMERIC
    return None


def _numeric(col: Column, data_type: T.DataType) -> Column:
    if isinstance(data_type, T.DateType):
        return F.unix_date(col).cast("double")
    return col.cast("double")


def _map(items: list[tuple[str, Column]], value_type: str) -> Column:
    if not items:
        return F.create_map().cast(f"map<string,{value_type}>")
    args: list[Column] = []
    for name, col in items:
        args += [F.lit(name), col]
    return F.create_map(*args).cast(f"map<string,{value_type}>")


def segment_column(model: ModelConfig) -> Column:
    if model.segment_by is None:
        return F.lit(ALL_SEGMENT)
    return F.coalesce(F.col(model.segment_by).cast("string"), F.lit(NULL_SEGMENT))


def _model_struct(model: ModelConfig, schema: T.StructType, window: Window) -> Column:
    types = {f.name: f.dataType for f in schema.fields}
    numeric = [(n, _numeric(F.col(n), types[n])) for n in model.features if feature_kind(types[n]) == NUMERIC]
    categorical = [(n, F.col(n).cast("string")) for n in model.features if feature_kind(types[n]) == CATEGORICAL]
    return F.struct(
        F.lit(model.model_id).alias("model_id"),
        segment_column(model).alias("segment"),
        F.when(F.col("ds") >= F.lit(window.eval_start), F.lit("eval")).otherwise(F.lit("train")).alias("split"),
        F.col(model.label).cast("double").alias("label"),
        _map(numeric, "double").alias("features"),
        _map(categorical, "string").alias("categories"),
    )


def _row_key(entity: list[str]) -> Column:
    return F.to_json(F.struct(*[F.col(c) for c in entity]))


def project(df: DataFrame, entity: list[str], plans: list[tuple[ModelConfig, Window, list[dt.date]]]) -> DataFrame:
    """The training rows of several models of one feature set from ONE scan of `df`.

    Each feature row becomes one row per model whose used days contain its ds (and whose
    label is not null). Columns: ROW_COLUMNS without run_id.
    """
    candidates = []
    for model, window, used in plans:
        cond = F.col("ds").isin(list(used)) & F.col(model.label).isNotNull()
        candidates.append(F.when(cond, _model_struct(model, df.schema, window)))
    rows = df.select(
        F.col("ds"), _row_key(entity).alias("row_key"),
        F.explode(F.filter(F.array(*candidates), lambda x: x.isNotNull())).alias("_r"),
    )
    return rows.select(
        F.col("_r.segment").alias("segment"), F.col("_r.split").alias("split"), F.col("ds"),
        F.col("row_key"), F.col("_r.label").alias("label"), F.col("_r.features").alias("features"),
        F.col("_r.categories").alias("categories"), F.col("_r.model_id").alias("model_id"),
    )


def _spark_schema(arrow_schema) -> T.StructType:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)


def _check_columns(model: ModelConfig, schema: T.StructType, table: str, version: int) -> tuple[dict[str, str], str | None]:
    types = {f.name: f.dataType for f in schema.fields}
    needed = list(model.features) + [model.label] + ([model.segment_by] if model.segment_by else [])
    missing = [c for c in needed if c not in types]
    if missing:
        return {}, f"feature table {table} (version {version}) has no column(s) {missing}"
    kinds: dict[str, str] = {}
    for name in model.features:
        kind = feature_kind(types[name])
        if kind is None:
            return {}, f"feature {name!r} has type {types[name].simpleString()}, which the engine cannot train on"
        kinds[name] = kind
    if not isinstance(types[model.label], (T.NumericType, T.BooleanType)):
        return {}, f"label {model.label!r} has type {types[model.label].simpleString()}; expected a number"
    return kinds, None


# --------------------------------------------------------------------------- build


def build_training_sets(spark, cfg: Config, models: list[ModelConfig], logical_date: dt.date, run_id: str,
                        excluded: dict[str, set[dt.date]]) -> TrainingSetsResult:
    """Build the training sets of `models` (those due on `logical_date`) in one pass.

    `excluded` maps a feature set name to its quarantined ds. See the module docstring for
    the windows, the skip rule and the table layout.
    """
    path = cfg.table(TABLE)
    result = TrainingSetsResult(run_id=run_id, logical_date=logical_date, path=path, version=None,
                                feature_versions={}, feature_tables={})
    by_set: dict[str, list[ModelConfig]] = {}
    for model in models:
        by_set.setdefault(model.feature_set, []).append(model)

    frames: list[DataFrame] = []
    for set_name, set_models in sorted(by_set.items()):
        fs = cfg.feature_sets[set_name]
        table = cfg.table(f"features/{set_name}")
        result.feature_tables[set_name] = table
        version = tables.version(table, spark)
        if version is None:
            for model in set_models:
                result.skipped[model.model_id] = f"feature table {table} does not exist"
            continue
        result.feature_versions[set_name] = version
        # Pin the version: the schema check and the read see the same snapshot. The schema
        # comes from the Delta log (no Spark job).
        schema = _spark_schema(tables.arrow_schema(table, version))
        quarantined = set(excluded.get(set_name, set()))
        plans: list[tuple[ModelConfig, Window, list[dt.date]]] = []
        for model in set_models:
            kinds, problem = _check_columns(model, schema, table, version)
            if problem:
                result.skipped[model.model_id] = problem
                continue
            window = model_window(model, label_delay(cfg, model), logical_date)
            days = window.days
            lost = sorted(d for d in days if d in quarantined)
            share = len(lost) / len(days)
            limit = max_quarantined_share(cfg, model)
            if share > limit:
                result.skipped[model.model_id] = (
                    f"{len(lost)} of the {len(days)} days of its window {window.train_start}..{window.eval_end} "
                    f"are quarantined ({share:.0%} > max_quarantined_share {limit:.0%})"
                )
                continue
            used = [d for d in days if d not in quarantined]
            plans.append((model, window, used))
            result.models[model.model_id] = ModelSet(model.model_id, set_name, window, used, lost, kinds)
        if not plans:
            continue
        wanted = sorted({d for _, _, used in plans for d in used})
        source = tables.read(spark, table, version=version, partitions=wanted)
        frames.append(project(source, list(fs.entity), plans))

    if not result.models:
        return result
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    rows = rows.select(F.lit(run_id).alias("run_id"), *[c for c in ROW_COLUMNS if c != "run_id"])
    result.version = tables.write(spark, rows, path, mode="overwrite", partition_by=["model_id"],
                                  replace_partitions=result.built, column="model_id")
    _count(spark, result)
    return result


def _count(spark, result: TrainingSetsResult) -> None:
    """Rows per (model, segment, split) of the version just written: one grouped count."""
    written = tables.read(spark, result.path, version=result.version, partitions=result.built, column="model_id")
    for row in written.groupBy("model_id", "segment", "split").count().collect():
        model_set = result.models[row["model_id"]]
        model_set.segments.setdefault(row["segment"], {})[row["split"]] = int(row["count"])
        model_set.rows += int(row["count"])


def read_training_set(spark, cfg: Config, model_ids: Iterable[str], version: int) -> DataFrame:
    """The rows of some models in one version of training_sets."""
    return tables.read(spark, cfg.table(TABLE), version=version, partitions=sorted(model_ids), column="model_id")
