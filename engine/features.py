"""MAP 1: build feature partitions from a source, one `ds` partition per source day.

All pending partitions of a feature set are computed in one Spark job (in parallel) and
written in one atomic commit that replaces exactly those partitions.

Point in time: the feature row for `ds` reads source rows of day `ds` itself, rolling
aggregates over the N days *before* it (ds-N .. ds-1), and as-of joins take the latest row
of another source at or before the event time (never a later one). Labels are computed
from the row too, but are only usable from `ds + delay_days` on (the reduce stage enforces
that).
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from engine import tables
from engine.config import AsOfJoin, Config, FeatureSet, Rolling
from engine.errors import ConfigError, FeatureError, SourceError
from engine.spark import has_delta_extension

Transform = Callable[[DataFrame], DataFrame]


@dataclass(frozen=True)
class RegisteredTransform:
    fn: Transform
    outputs: tuple[str, ...]  # the columns it adds


TRANSFORMS: dict[str, RegisteredTransform] = {}


def feature_transform(name: str, outputs: Iterable[str]) -> Callable[[Transform], Transform]:
    """Register a Python transform (DataFrame -> DataFrame) for what SQL cannot say.

    Feature sets name it under `transforms:`; YAML never names an import path. `outputs` are
    the columns it adds (models may use them as features).
    """

    def register(fn: Transform) -> Transform:
        TRANSFORMS[name] = RegisteredTransform(fn, tuple(outputs))
        return fn

    return register


@feature_transform("distance_band", outputs=["distance_band"])
def distance_band(df: DataFrame) -> DataFrame:
    """distance_km bucketed into short (< 3 km), medium (< 8 km) and long."""
    km = F.col("distance_km")
    return df.withColumn(
        "distance_band",
        F.when(km.isNull(), F.lit(None)).when(km < 3, "short").when(km < 8, "medium").otherwise("long"),
    )


# --------------------------------------------------------------------------- sources


def source_dates(spark: SparkSession, cfg: Config, name: str) -> list[dt.date]:
    """The ds partitions a source has (from folder names or the Delta log; no data read)."""
    source = cfg.project.sources[name]
    path = cfg.resolve(source.path)
    if source.format == "delta":
        if not tables.exists(path, spark):
            raise SourceError(f"source {name}: no Delta table at {path}")
        return [_as_date(v) for v in tables.partition_values(path, "ds", spark=spark)]
    local = path[len("file://"):] if path.startswith("file://") else path
    if "://" not in local:
        if not os.path.isdir(local):
            raise SourceError(f"source {name}: no Parquet dataset at {path} (expected ds=YYYY-MM-DD folders)")
        dates = []
        for entry in os.listdir(local):
            if entry.startswith("ds="):
                try:
                    dates.append(dt.date.fromisoformat(entry[3:]))
                except ValueError as e:
                    raise SourceError(f"source {name}: folder {entry!r} in {path} is not ds=YYYY-MM-DD") from e
        return sorted(dates)
    rows = spark.read.parquet(path).select("ds").distinct().collect()
    return sorted(_as_date(r[0]) for r in rows)


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def read_source(spark: SparkSession, cfg: Config, name: str, start: dt.date, end: dt.date) -> DataFrame:
    """Rows of a source with start <= ds <= end (partition-pruned), ds as a date column."""
    source = cfg.project.sources[name]
    path = cfg.resolve(source.path)
    if source.format == "delta":
        df = tables.read(spark, path)
    else:
        df = spark.read.option("basePath", path).parquet(path)
    if "ds" not in df.columns:
        raise SourceError(f"source {name} ({path}): has no ds column (expected partitions ds=YYYY-MM-DD)")
    df = df.withColumn("ds", F.col("ds").cast("date"))
    return df.where((F.col("ds") >= F.lit(start)) & (F.col("ds") <= F.lit(end)))


# --------------------------------------------------------------------------- features


def _checked_select(df: DataFrame, columns: list[Column], what: Iterable[str], fs: FeatureSet) -> DataFrame:
    """select(), but an expression that does not resolve names its feature set and output."""
    try:
        return df.select(*columns)
    except Exception:
        pass
    for col, name in zip(columns, what):
        try:
            df.select(col)
        except Exception as e:
            msg = str(e).split("\n")[0]
            raise FeatureError(
                f"feature set {fs.name}: {name} cannot be computed from source {fs.source!r} "
                f"(columns: {', '.join(c for c in df.columns)}): {msg}"
            ) from e
    raise FeatureError(f"feature set {fs.name}: the row-level features cannot be computed together")


def row_features(fs: FeatureSet, src: DataFrame) -> DataFrame:
    """Entity, passthrough columns, row-level features and labels of each source row."""
    keep = list(dict.fromkeys(list(fs.entity) + list(fs.columns) + ([fs.event_time] if fs.event_time else [])))
    columns = [F.col(c) for c in keep] + [F.expr(e).alias(n) for n, e in fs.features.items()]
    columns += [F.expr(label.expr).alias(n) for n, label in fs.labels.items()] + [F.col("ds")]
    names = [f"column {c!r}" for c in keep] + [f"feature {n!r} = {e!r}" for n, e in fs.features.items()]
    names += [f"label {n!r} = {label.expr!r}" for n, label in fs.labels.items()] + ["column 'ds'"]
    return _checked_select(src, columns, names, fs)


def rolling_feature(spec: Rolling, history: DataFrame, dates: DataFrame) -> DataFrame:
    """One rolling aggregate per (by keys, target ds) over days target-N .. target-1."""
    value = F.expr(spec.column)
    daily = history.groupBy(*spec.by, "ds").agg(
        F.sum(value).alias("_sum"), F.count(value).alias("_count"),
        F.min(value).alias("_min"), F.max(value).alias("_max"),
    )
    window = daily.join(
        F.broadcast(dates),
        (daily["ds"] >= F.date_sub(dates["_target"], spec.days)) & (daily["ds"] < dates["_target"]),
    )
    agg = {
        "sum": F.sum("_sum"),
        "count": F.sum("_count"),
        "mean": F.sum("_sum") / F.sum("_count"),
        "min": F.min("_min"),
        "max": F.max("_max"),
    }[spec.agg]
    return window.groupBy(*spec.by, F.col("_target").alias("ds")).agg(agg.alias(spec.name))


def as_of_join(join: AsOfJoin, rows: DataFrame, other: DataFrame, entity: list[str], event_time: str) -> DataFrame:
    """Add `join.columns` from the latest `other` row with equal keys and time <= event time,
    at most max_lag_hours older; null when there is none."""
    right = other.select(
        *[F.col(k).alias(f"_r_{k}") for k in join.keys],
        F.col(join.time).alias("_r_time"),
        *[F.col(src).alias(f"_r_{out}") for out, src in join.columns.items()],
    )
    left = rows.select(*entity, "ds", *join.keys, event_time)
    cond = [left[k] == right[f"_r_{k}"] for k in join.keys]
    cond += [
        right["_r_time"] <= left[event_time],
        right["_r_time"] >= left[event_time] - F.expr(f"INTERVAL {join.max_lag_hours} HOURS"),
    ]
    candidates = left.join(right, cond)
    latest = Window.partitionBy(*entity, "ds").orderBy(F.col("_r_time").desc())
    best = (
        candidates.withColumn("_rn", F.row_number().over(latest))
        .where("_rn = 1")
        .select(*entity, "ds", *[F.col(f"_r_{out}").alias(out) for out in join.columns])
    )
    return rows.join(best, on=[*entity, "ds"], how="left")


def build_features(spark: SparkSession, cfg: Config, fs: FeatureSet, dates: list[dt.date]) -> DataFrame:
    """The feature rows of `dates` (lazy). Reads the lookback partitions rolling windows need."""
    if not dates:
        raise FeatureError(f"feature set {fs.name}: no dates to build")
    first, last = min(dates), max(dates)
    src = read_source(spark, cfg, fs.source, first - dt.timedelta(days=fs.max_lookback_days), last)
    rows = row_features(fs, src.where(F.col("ds").isin(list(dates))))

    if fs.rolling:
        targets = spark.createDataFrame([(d,) for d in sorted(dates)], "_target date")
        history = src.where(F.col("ds") < F.lit(last))
        for spec in fs.rolling:
            missing = [k for k in spec.by if k not in src.columns]
            if missing:
                raise FeatureError(f"feature set {fs.name}: rolling {spec.name!r}: source has no column {missing}")
            rolled = rolling_feature(spec, history, targets)
            rows = rows.join(rolled, on=[*spec.by, "ds"], how="left")
            if spec.agg == "count":
                rows = rows.withColumn(spec.name, F.coalesce(F.col(spec.name), F.lit(0)).cast("long"))

    for join in fs.as_of_joins:
        lag_days = (join.max_lag_hours + 23) // 24
        other = read_source(spark, cfg, join.source, first - dt.timedelta(days=lag_days), last)
        missing = [c for c in [*join.keys, join.time, *join.columns.values()] if c not in other.columns]
        if missing:
            raise FeatureError(f"feature set {fs.name}: as-of join with {join.source!r}: it has no column {missing}")
        rows = as_of_join(join, rows, other, list(fs.entity), fs.event_time)

    outputs = list(fs.output_columns)
    for name in fs.transforms:
        if name not in TRANSFORMS:
            raise ConfigError(
                f"{cfg.root / 'features.yaml'}: feature_sets.{fs.name}.transforms: unknown transform {name!r} "
                f"(registered: {sorted(TRANSFORMS)})"
            )
        transform = TRANSFORMS[name]
        try:
            rows = transform.fn(rows)
        except Exception as e:
            raise FeatureError(f"feature set {fs.name}: transform {name!r} failed: {e}") from e
        missing = [c for c in transform.outputs if c not in rows.columns]
        if missing:
            raise FeatureError(f"feature set {fs.name}: transform {name!r} did not add its outputs {missing}")
        outputs += [c for c in transform.outputs if c not in outputs]

    return rows.select(*outputs, "ds")


# --------------------------------------------------------------------------- partitions


def feature_table(cfg: Config, fs: FeatureSet) -> str:
    return cfg.table(f"features/{fs.name}")


def computed_dates(spark: SparkSession, cfg: Config, fs: FeatureSet) -> list[dt.date]:
    return [_as_date(v) for v in tables.partition_values(feature_table(cfg, fs), "ds", spark=spark)]


def pending_dates(spark: SparkSession, cfg: Config, fs: FeatureSet, up_to: dt.date) -> list[dt.date]:
    """Source days <= up_to (and >= start_date) that have no feature partition yet."""
    available = [d for d in source_dates(spark, cfg, fs.source) if d <= up_to]
    if cfg.project.start_date:
        available = [d for d in available if d >= cfg.project.start_date]
    done = set(computed_dates(spark, cfg, fs))
    return [d for d in available if d not in done]


def write_features(spark: SparkSession, cfg: Config, fs: FeatureSet, dates: list[dt.date]) -> tuple[int, int]:
    """Compute `dates` and replace those partitions in one commit; return (version, rows)."""
    available = set(source_dates(spark, cfg, fs.source))
    missing = sorted(set(dates) - available)
    if missing:
        raise SourceError(
            f"source {fs.source} ({cfg.resolve(cfg.project.sources[fs.source].path)}): "
            f"no partition ds={', '.join(d.isoformat() for d in missing)}"
        )
    df = build_features(spark, cfg, fs, dates)
    path = feature_table(cfg, fs)
    version = tables.write(spark, df, path, mode="overwrite", partition_by=["ds"], replace_partitions=dates)
    if has_delta_extension(spark):
        rows = tables.read(spark, path, version, partitions=dates).count()
    else:
        rows = _rows_in_version(path, dates, version)
    return version, rows


def _rows_in_version(path: str, dates: list[dt.date], version: int) -> int:
    """Row count of some partitions from the Delta log's file stats (no data read)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(path, version=version).get_add_actions(flatten=True)).to_pylist()
    wanted = set(dates)
    return int(sum(a["num_records"] or 0 for a in actions if _as_date(a["partition.ds"]) in wanted))
