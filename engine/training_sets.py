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

Rows of `training_sets` (Delta, partitioned by model_id; one schema for every model; the
segment and feature values come from the one projection in engine/projection.py, which
`predict` and the notebooks use too):

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

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from engine import catalog, tables
from engine.catalog import Catalog
from engine.config import Config, ModelConfig
from engine.projection import Projection, ProjectionError
from engine.records import ArtifactMetadata, Lineage, Window

ROW_COLUMNS = ["run_id", "segment", "split", "ds", "row_key", "label", "features", "categories", "model_id"]


# --------------------------------------------------------------------------- windows


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
    projection: Projection  # features (with their kinds) and segment_by
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

    def lineage(self, cfg: Config, model_id: str, validation_run_id: str | None) -> Lineage:
        """Where `model_id`'s rows came from (table paths relative to the lakehouse root)."""
        ms = self.models[model_id]
        return Lineage(
            run_id=self.run_id, training_sets=catalog.TRAINING_SETS.name, training_sets_version=int(self.version),
            feature_set=ms.feature_set, feature_table=catalog.features(ms.feature_set).name,
            feature_version=self.feature_versions[ms.feature_set], validation_run_id=validation_run_id,
            window=ms.window, excluded_days=tuple(ms.excluded_days),
            entity=tuple(cfg.feature_sets[ms.feature_set].entity),
        )


# --------------------------------------------------------------------------- row projection


@dataclass(frozen=True)
class Plan:
    """What one model takes from a feature table."""

    model_id: str
    label: str
    projection: Projection
    window: Window
    used: list[dt.date]  # the window's days that are read (not excluded)


def _model_struct(plan: Plan, schema: T.StructType):
    features, categories = plan.projection.maps(schema)
    return F.struct(
        F.lit(plan.model_id).alias("model_id"),
        plan.projection.segment().alias("segment"),
        F.when(F.col("ds") >= F.lit(plan.window.eval_start), F.lit("eval")).otherwise(F.lit("train")).alias("split"),
        F.col(plan.label).cast("double").alias("label"),
        features.alias("features"),
        categories.alias("categories"),
    )


def _row_key(entity: list[str]):
    return F.to_json(F.struct(*[F.col(c) for c in entity]))


def project(df: DataFrame, entity: list[str], plans: list[Plan]) -> DataFrame:
    """The training rows of several models of one feature set from ONE scan of `df`.

    Each feature row becomes one row per model whose used days contain its ds (and whose
    label is not null). Columns: ROW_COLUMNS without run_id.
    """
    candidates = []
    for plan in plans:
        cond = F.col("ds").isin(list(plan.used)) & F.col(plan.label).isNotNull()
        candidates.append(F.when(cond, _model_struct(plan, df.schema)))
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


def _projection(model: ModelConfig, schema: T.StructType, table: str, version: int) -> Projection:
    """The model's projection on the feature table; ProjectionError says why it cannot train."""
    projection = Projection.of_schema(model.features, model.segment_by, schema,
                                      where=f"feature table {table} (version {version})")
    label = {f.name: f.dataType for f in schema.fields}.get(model.label)
    if label is None:
        raise ProjectionError(f"feature table {table} (version {version}) has no column(s) {[model.label]}")
    if not isinstance(label, (T.NumericType, T.BooleanType)):
        raise ProjectionError(f"label {model.label!r} has type {label.simpleString()}; expected a number")
    return projection


# --------------------------------------------------------------------------- build


def build_training_sets(spark, cfg: Config, models: list[ModelConfig], logical_date: dt.date, run_id: str,
                        excluded: dict[str, set[dt.date]]) -> TrainingSetsResult:
    """Build the training sets of `models` (those due on `logical_date`) in one pass.

    `excluded` maps a feature set name to its quarantined ds. See the module docstring for
    the windows, the skip rule and the table layout.
    """
    cat = Catalog.of(cfg)
    path = cat.training_sets
    result = TrainingSetsResult(run_id=run_id, logical_date=logical_date, path=path, version=None,
                                feature_versions={}, feature_tables={})
    by_set: dict[str, list[ModelConfig]] = {}
    for model in models:
        by_set.setdefault(model.feature_set, []).append(model)

    frames: list[DataFrame] = []
    for set_name, set_models in sorted(by_set.items()):
        fs = cfg.feature_sets[set_name]
        table = cat.features(set_name)
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
        plans: list[Plan] = []
        for model in set_models:
            try:
                projection = _projection(model, schema, table, version)
            except ProjectionError as e:
                result.skipped[model.model_id] = str(e)
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
            plans.append(Plan(model.model_id, model.label, projection, window, used))
            result.models[model.model_id] = ModelSet(model.model_id, set_name, window, used, lost, projection)
        if not plans:
            continue
        wanted = sorted({d for plan in plans for d in plan.used})
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
    return tables.read(spark, Catalog.of(cfg).training_sets, version=version, partitions=sorted(model_ids),
                       column="model_id")


# --------------------------------------------------------------------------- lineage


def training_rows(spark, cat: Catalog, meta: ArtifactMetadata, split: str | None = None) -> DataFrame:
    """A model's rows in the training_sets version its lineage records (split: train | eval | None)."""
    lin = meta.lineage
    df = tables.read(spark, cat.under(lin.training_sets), version=lin.training_sets_version,
                     partitions=[meta.model_id], column="model_id")
    df = df.where((F.col("segment") == meta.segment) & (F.col("run_id") == lin.run_id))
    return df.where(F.col("split") == split) if split else df


def fitted_rows(spark, cat: Catalog, meta: ArtifactMetadata) -> DataFrame:
    """The rows the artifact was fit on: train + eval when refit, else train."""
    return training_rows(spark, cat, meta, None if meta.refit else "train")


def feature_rows(spark, cat: Catalog, meta: ArtifactMetadata) -> DataFrame:
    """The same rows, re-derived from the recorded feature table version with the same window,
    exclusions and projection (columns as in training_sets, without run_id)."""
    lin = meta.lineage
    used = lin.used_days
    projection = Projection(meta.features, meta.feature_types, meta.segment_by)
    source = tables.read(spark, cat.under(lin.feature_table), version=lin.feature_version, partitions=used)
    rows = project(source, list(lin.entity), [Plan(meta.model_id, meta.label, projection, lin.window, used)])
    return rows.where(F.col("segment") == meta.segment)
