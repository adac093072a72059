"""MAP 1: build feature partitions from a source, one `ds` partition per source day.

All pending partitions of a feature set are computed in one Spark job (in parallel) and
written in one atomic commit that replaces exactly those partitions.

Point in time: the feature row for `ds` reads source rows of day `ds` itself, rolling
aggregates over the N days *before* it (ds-N .. ds-1), and as-of joins take the latest row
of another source at or before the event time (never a later one). Labels are computed
from the row too, but are only usable from `ds + delay_days` on (the reduce stage enforces
that).

Quarantine holds through derived features. The caller passes `excluded`: source name -> the
source days that must not feed anything (the pipeline passes, for every feature set, its
quarantined partitions as days of that set's source, see `excluded_source_days`):
  - rolling windows skip excluded days of the feature set's own source (a 7-day mean over a
    window with one excluded day is the mean of the other six days; a count counts them);
  - as-of joins never take a row of an excluded day of the joined source (the row for that
    time is then the latest earlier one within max_lag_hours, or null);
  - a partition's own day is always read for its own rows (its quarantine is validation's).
Every feature row records what it read in `_source_days` (array of {source, ds}: the same
for every row of a partition; a window or join day that had validation warnings when it was
read is recorded once more as {source: "<source>#warned", ds}), so "no row depends on a
quarantined day" is checkable, a later fix or release of a warned day recomputes its
dependents, and
`stale_dates(...)` names the partitions whose recorded reads differ from what they would read
now, so the pipeline recomputes them when a day is quarantined or released.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from typing import Callable, Collection, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from engine import catalog, jdbc, tables
from engine.config import AsOfJoin, Config, FeatureSet, Rolling
from engine.errors import ConfigError, FeatureError, SourceError
from engine.transforms import TRANSFORMS, Transform, feature_transform  # noqa: F401 (public here too)

Excluded = Mapping[str, Collection[dt.date]]  # source name -> days that must not feed anything

SOURCE_DAYS = "_source_days"  # lineage column: array<struct<source: string, ds: date>>
WARNED = "#warned"  # {source: "<source>#warned", ds}: a window day read while it had warnings
_EVENT_TIME = "_event_time"  # internal: the event time expression's value, for as-of joins


# --------------------------------------------------------------------------- sources


def source_dates(spark: SparkSession, cfg: Config, name: str) -> list[dt.date]:
    """The ds partitions a source has (from folder names or the Delta log; no data read)."""
    source = cfg.project.sources[name]
    if source.format == "jdbc":
        return jdbc.source_dates(spark, name, source)
    path = cfg.resolve(source.path)
    if source.format == "delta":
        if not tables.exists(path, spark):
            raise SourceError(f"source {name}: no Delta table at {path}")
        return [_as_date(v) for v in tables.partition_values(path, "ds", spark=spark)]
    local = catalog.local_path(path)
    if local is not None:
        if not os.path.isdir(local):
            raise SourceError(f"source {name}: no Parquet dataset at {path} (expected ds=YYYY-MM-DD folders)")
        dates = []
        for entry in os.listdir(local):
            # Spark's partition discovery reads DS=... as ds and parses ds=20261020 as a date
            # too: a second spelling of a day would be read twice. Only ds=YYYY-MM-DD is a day.
            if entry.lower().startswith("ds="):
                try:
                    if not re.fullmatch(r"ds=\d{4}-\d{2}-\d{2}", entry):
                        raise ValueError(entry)
                    dates.append(dt.date.fromisoformat(entry[3:]))
                except ValueError as e:
                    raise SourceError(f"source {name}: folder {entry!r} in {path} is not ds=YYYY-MM-DD") from e
        return sorted(dates)
    rows = spark.read.parquet(path).select("ds").distinct().collect()
    return sorted(_as_date(r[0]) for r in rows)


def check_parquet_files(name: str, path: str, start: dt.date, end: dt.date,
                        used: Callable[[str], bool]) -> None:
    """Read the footer of every file of ds partitions start..end (metadata only) and raise one
    SourceError naming the partition, file and column where a file cannot be read, a column's
    type differs from the other files', or a used column is missing. Spark would otherwise fail
    deep in a task, or read a missing column as nulls."""
    import pyarrow.fs as pafs

    fs, root = catalog.filesystem(path)
    schemas: list[tuple[str, str, pa.Schema]] = []  # (ds folder, file name, schema)
    day = start
    while day <= end:
        folder = f"ds={day.isoformat()}"
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{folder}", allow_not_found=True))
        for info in sorted(infos, key=lambda i: i.path):
            base = info.base_name
            if base.startswith((".", "_")):
                continue
            if info.type == pafs.FileType.Directory:  # Spark would read it too (a link to . forever)
                link = " (a link to a folder)" if catalog.local_path(path) is not None and os.path.islink(
                    os.path.join(catalog.local_path(path), folder, base)) else ""
                raise SourceError(f"source {name} {folder}: {base} is a folder{link} in {path}/{folder}, expected "
                                  "only Parquet files in a partition folder")
            if info.type != pafs.FileType.File:
                continue
            try:
                with fs.open_input_file(info.path) as f:
                    schemas.append((folder, base, pq.read_schema(f)))
            except Exception as e:
                raise SourceError(f"source {name} {folder}: {base} is not a readable Parquet file "
                                  f"({_first_line(e)}) in {path}") from e
        day += dt.timedelta(days=1)
    if len(schemas) < 2:
        return
    types: dict[str, Counter] = {}
    for _, _, schema in schemas:
        for field in schema:
            if field.name != "ds":
                types.setdefault(field.name, Counter())[str(field.type)] += 1
    for folder, base, schema in schemas:
        for column, seen in types.items():
            usual, count = seen.most_common(1)[0]
            if column not in schema.names:
                if used(column) and count == len(schemas) - 1:
                    raise SourceError(f"source {name} {folder}: {base} has no column {column} "
                                      f"(the other {count} files of ds {start}..{end} have it as {usual})")
                continue
            actual = str(schema.field(column).type)
            if actual != usual and not _widened(actual, usual):
                raise SourceError(f"source {name} {folder}: {base}: column {column} is {_spelled(actual)}, "
                                  f"expected {_spelled(usual)} (as in {count} other files of ds {start}..{end})")


def _spelled(arrow_type: str) -> str:
    """An Arrow type as a message shows it: a timestamp without a time zone says so, so a
    zone or unit mismatch reads 'timestamp[us, tz=UTC], expected timestamp[us] (no time zone)'."""
    if arrow_type.startswith("timestamp[") and "tz=" not in arrow_type:
        return f"{arrow_type} (no time zone)"
    return arrow_type


def _widened(actual: str, usual: str) -> bool:
    """Types Spark reads together without loss (int32 files among int64 ones, and the like)."""
    ints = ("int8", "int16", "int32", "int64")
    floats = ("float", "double")
    return ((actual in ints and usual in ints) or (actual in floats and usual in floats)
            or (actual == "null" or usual == "null"))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def read_source(spark: SparkSession, cfg: Config, name: str, start: dt.date, end: dt.date,
                used: Callable[[str], bool] = lambda column: True) -> DataFrame:
    """Rows of a source with start <= ds <= end (partition-pruned), ds as a date column.
    A Parquet source's files in that range are checked first (check_parquet_files); `used`
    says which columns the reader needs, so a column dropped upstream is only an error there."""
    source = cfg.project.sources[name]
    path = cfg.resolve(source.path)
    if source.format == "jdbc":
        df = jdbc.read(spark, name, source, start, end)
    elif source.format == "delta":
        df = tables.read(spark, path)
    else:
        check_parquet_files(name, path, start, end, used)
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
    """Entity, passthrough columns, row-level features and labels of each source row.

    `event_time` may be a column or an expression (e.g. `to_timestamp(time_hour)`); its value
    is kept in an internal column for as-of joins and must be a timestamp (or a date)."""
    plain_time = fs.event_time if fs.event_time and fs.event_time in src.columns else None
    keep = list(dict.fromkeys(list(fs.entity) + list(fs.columns) + ([plain_time] if plain_time else [])))
    columns = [F.col(c) for c in keep] + [F.expr(e).alias(n) for n, e in fs.features.items()]
    columns += [F.expr(label.expr).alias(n) for n, label in fs.labels.items()] + [F.col("ds")]
    names = [f"column {c!r}" for c in keep] + [f"feature {n!r} = {e!r}" for n, e in fs.features.items()]
    names += [f"label {n!r} = {label.expr!r}" for n, label in fs.labels.items()] + ["column 'ds'"]
    if fs.event_time:
        columns.append(F.expr(fs.event_time).alias(_EVENT_TIME))
        names.append(f"event_time {fs.event_time!r} (a timestamp column or expression)")
    rows = _checked_select(src, columns, names, fs)
    if fs.event_time:
        kind = rows.schema[_EVENT_TIME].dataType
        if not isinstance(kind, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            raise FeatureError(
                f"feature set {fs.name}: event_time {fs.event_time!r} is {kind.simpleString()}, expected a "
                f"timestamp column or expression (e.g. to_timestamp({fs.event_time}))"
            )
    return rows


def rolling_feature(spec: Rolling, history: DataFrame, dates: DataFrame) -> DataFrame:
    """One rolling aggregate per (by keys, target ds) over days target-N .. target-1.

    `history` holds only the days a window may read (excluded days already removed): a window
    aggregates the days it has.

    A sum or mean of floating-point values is summed as DECIMAL(38, 10): floating-point addition
    depends on the order of its terms, which depends on how rows and days are split among tasks,
    so a recomputed partition (a backfill, a forced re-run, a night on a cluster) would differ
    from the first computation in its last bits. Each value is rounded to 10 decimals once, the
    sum is exact, and the result is a double again. A window holding NaN, an infinity or a
    value beyond 1e26 (which no decimal of that scale holds: the cast makes it null, and the sum
    would silently leave it out) sums as doubles, as Spark does."""
    value = F.expr(spec.column)
    fractional = isinstance(history.select(value).schema[0].dataType, (T.FloatType, T.DoubleType))
    sums = [F.sum(value).alias("_sum")]
    if fractional:
        odd = F.isnan(value) | (F.abs(value) >= F.lit(1e26))  # an infinity too
        sums = [F.sum(value.try_cast("decimal(38,10)")).alias("_sum"), F.sum(value).alias("_fsum"),
                F.max(odd.cast("int")).alias("_odd")]
    daily = history.groupBy(*spec.by, "ds").agg(
        *sums, F.count(value).alias("_count"), F.min(value).alias("_min"), F.max(value).alias("_max"),
    )
    window = daily.join(
        F.broadcast(dates),
        (daily["ds"] >= F.date_sub(dates["_target"], spec.days)) & (daily["ds"] < dates["_target"]),
    )
    total = F.sum("_sum")
    if fractional:
        total = F.when(F.max("_odd") == 1, F.sum("_fsum")).otherwise(total.cast("double"))
    agg = {
        "sum": total,
        "count": F.sum("_count"),
        "mean": total / F.sum("_count"),
        "min": F.min("_min"),
        "max": F.max("_max"),
    }[spec.agg]
    return window.groupBy(*spec.by, F.col("_target").alias("ds")).agg(agg.alias(spec.name))


def _bucket(ts: Column, width_seconds: int) -> Column:
    return F.floor(F.unix_micros(ts.cast("timestamp")) / F.lit(width_seconds * 1_000_000)).cast("long")


def as_of_join(join: AsOfJoin, rows: DataFrame, other: DataFrame, entity: list[str], event_time: str) -> DataFrame:
    """Add `join.columns` from the latest `other` row with equal keys and time <= event time,
    at most max_lag_hours older; null when there is none.

    Linear in the rows: time is cut into buckets of max_lag_hours, so a left row meets only
    the right rows of its own bucket and the one before it (an equi-join on keys + bucket),
    never every row of its keys."""
    width = join.max_lag_hours * 3600
    right = other.select(
        *[F.col(k).alias(f"_r_{k}") for k in join.keys],
        F.col(join.time).cast("timestamp").alias("_r_time"),
        *[F.col(src).alias(f"_r_{out}") for out, src in join.columns.items()],
    ).withColumn("_r_bucket", _bucket(F.col("_r_time"), width))
    left = rows.select(*entity, "ds", *join.keys, F.col(event_time).cast("timestamp").alias("_l_time"))
    bucket = _bucket(F.col("_l_time"), width)
    left = left.withColumn("_l_bucket", F.explode(F.array(bucket - 1, bucket)))
    cond = [left[k] == right[f"_r_{k}"] for k in join.keys] + [left["_l_bucket"] == right["_r_bucket"]]
    cond += [
        right["_r_time"] <= left["_l_time"],
        right["_r_time"] >= left["_l_time"] - F.expr(f"INTERVAL {join.max_lag_hours} HOURS"),
    ]
    candidates = left.join(right, cond)
    latest = Window.partitionBy(*entity, "ds").orderBy(F.col("_r_time").desc())
    best = (
        candidates.withColumn("_rn", F.row_number().over(latest))
        .where("_rn = 1")
        .select(*entity, "ds", *[F.col(f"_r_{out}").alias(out) for out in join.columns])
    )
    return rows.join(best, on=[*entity, "ds"], how="left")


def _lag_days(join: AsOfJoin) -> int:
    return (join.max_lag_hours + 23) // 24


def _rolling_days(fs: FeatureSet) -> int:
    return max((r.days for r in fs.rolling), default=0)


def excluded_source_days(cfg: Config, quarantined: Mapping[str, Iterable[dt.date]]) -> dict[str, frozenset[dt.date]]:
    """The `excluded` argument of build/write_features from the quarantined partitions of
    each feature set (feature set -> days): a quarantined day of a feature set excludes that
    day of its source from every window and as-of join that reads the source."""
    out: dict[str, set[dt.date]] = {}
    for name, days in quarantined.items():
        out.setdefault(cfg.feature_sets[name].source, set()).update(days)
    return {k: frozenset(v) for k, v in out.items()}


def source_days_read(fs: FeatureSet, ds: dt.date, excluded: Excluded | None = None,
                     available: Mapping[str, Collection[dt.date]] | None = None, *,
                     warned: Excluded | None = None) -> list[tuple[str, dt.date]]:
    """(source, day) pairs the partition `ds` reads: its own day, the rolling window's days and
    the as-of joins' days, minus excluded days (and days a source does not have, when
    `available` is given). Sorted; what `_source_days` records."""
    excluded = excluded or {}
    wanted: set[tuple[str, dt.date]] = {(fs.source, ds)}
    for k in range(1, _rolling_days(fs) + 1):
        wanted.add((fs.source, ds - dt.timedelta(days=k)))
    for join in fs.as_of_joins:
        for k in range(0, _lag_days(join) + 1):
            wanted.add((join.source, ds - dt.timedelta(days=k)))
    out = []
    for source, day in sorted(wanted):
        if day != ds or source != fs.source:
            if day in excluded.get(source, ()):
                continue
            if available is not None and day not in available.get(source, ()):
                continue
            if day in (warned or {}).get(source, ()):
                out.append((source + WARNED, day))
        out.append((source, day))
    return sorted(out)


def _lineage(spark: SparkSession, fs: FeatureSet, dates: list[dt.date], excluded: Excluded,
             available: Mapping[str, Collection[dt.date]], warned: Excluded | None = None) -> DataFrame:
    schema = T.StructType([
        T.StructField("ds", T.DateType()),
        T.StructField(SOURCE_DAYS, T.ArrayType(T.StructType([
            T.StructField("source", T.StringType()), T.StructField("ds", T.DateType())]))),
    ])
    rows = [(d, [{"source": s, "ds": day} for s, day in source_days_read(fs, d, excluded, available, warned=warned)])
            for d in dates]
    return spark.createDataFrame(rows, schema)


def _uses(fs: FeatureSet) -> Callable[[str], bool]:
    """Whether the feature set reads a column of its source: named in its configuration
    (expressions, entity, rolling, labels, ...); every column when a Python transform runs."""
    if fs.transforms:
        return lambda column: True
    text = fs.model_dump_json()
    return lambda column: re.search(rf"(?<!\w){re.escape(column)}(?!\w)", text) is not None


def build_features(spark: SparkSession, cfg: Config, fs: FeatureSet, dates: list[dt.date],
                   excluded: Excluded | None = None, *, warned: Excluded | None = None) -> DataFrame:
    """The feature rows of `dates` (lazy). Reads the lookback partitions rolling windows need,
    skipping `excluded` days (source -> days; see the module doc)."""
    if not dates:
        raise FeatureError(f"feature set {fs.name}: no dates to build")
    excluded = {k: frozenset(v) for k, v in (excluded or {}).items()}
    dates = sorted(set(dates))
    first, last = dates[0], dates[-1]
    src = read_source(spark, cfg, fs.source, first - dt.timedelta(days=fs.max_lookback_days), last, _uses(fs))
    rows = row_features(fs, src.where(F.col("ds").isin(dates)))
    own_excluded = sorted(excluded.get(fs.source, ()))

    if fs.rolling:
        targets = spark.createDataFrame([(d,) for d in dates], "_target date")
        history = src.where(F.col("ds") < F.lit(last))
        if own_excluded:
            history = history.where(~F.col("ds").isin(own_excluded))
        for spec in fs.rolling:
            missing = [k for k in spec.by if k not in src.columns]
            if missing:
                raise FeatureError(f"feature set {fs.name}: rolling {spec.name!r}: source has no column {missing}")
            _checked_select(src, [F.expr(spec.column)], [f"rolling {spec.name!r} column {spec.column!r}"], fs)
            rolled = rolling_feature(spec, history, targets)
            rows = rows.join(rolled, on=[*spec.by, "ds"], how="left")
            if spec.agg == "count":
                rows = rows.withColumn(spec.name, F.coalesce(F.col(spec.name), F.lit(0)).cast("long"))

    for join in fs.as_of_joins:
        other = read_source(spark, cfg, join.source, first - dt.timedelta(days=_lag_days(join)), last,
                            {*join.keys, join.time, *join.columns.values()}.__contains__)
        missing = [c for c in [*join.keys, join.time, *join.columns.values()] if c not in other.columns]
        if missing:
            raise FeatureError(f"feature set {fs.name}: as-of join with {join.source!r}: it has no column {missing}")
        if excluded.get(join.source):
            other = other.where(~F.col("ds").isin(sorted(excluded[join.source])))
        rows = as_of_join(join, rows, other, list(fs.entity), _EVENT_TIME)

    outputs = [c for c in fs.output_columns if c != fs.event_time or c in rows.columns]
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

    sources = {fs.source} | {j.source for j in fs.as_of_joins}
    available = {s: set(source_dates(spark, cfg, s)) for s in sources}
    lineage = F.broadcast(_lineage(spark, fs, dates, excluded, available, warned))
    return rows.join(lineage, on="ds", how="left").select(*outputs, SOURCE_DAYS, "ds")


# --------------------------------------------------------------------------- partitions


def feature_table(cfg: Config, fs: FeatureSet) -> str:
    return catalog.Catalog.of(cfg).features(fs.name)


def computed_dates(spark: SparkSession, cfg: Config, fs: FeatureSet) -> list[dt.date]:
    return [_as_date(v) for v in tables.partition_values(feature_table(cfg, fs), "ds", spark=spark)]


def pending_dates(spark: SparkSession, cfg: Config, fs: FeatureSet, up_to: dt.date) -> list[dt.date]:
    """Source days <= up_to (and >= start_date) that have no feature partition yet."""
    available = [d for d in source_dates(spark, cfg, fs.source) if d <= up_to]
    if cfg.project.start_date:
        available = [d for d in available if d >= cfg.project.start_date]
    done = set(computed_dates(spark, cfg, fs))
    return [d for d in available if d not in done]


def write_features(spark: SparkSession, cfg: Config, fs: FeatureSet, dates: list[dt.date],
                   excluded: Excluded | None = None, *, warned: Excluded | None = None) -> tuple[int, int]:
    """Compute `dates` (windows skipping `excluded` days) and replace those partitions in one
    commit; return (version, rows)."""
    available = set(source_dates(spark, cfg, fs.source))
    missing = sorted(set(dates) - available)
    if missing:
        raise SourceError(
            f"source {fs.source} ({cfg.resolve(cfg.project.sources[fs.source].path)}): "
            f"no partition ds={', '.join(d.isoformat() for d in missing)}"
        )
    df = build_features(spark, cfg, fs, dates, excluded, warned=warned)
    path = feature_table(cfg, fs)
    # schema_mode "merge": a column added to (or removed from) features.yaml after nights were
    # processed changes the table's schema; the other partitions read it as null until a
    # `backfill --feature-set` recomputes them (README: schema evolution).
    version = tables.write(spark, df, path, mode="overwrite", partition_by=["ds"], replace_partitions=dates,
                           schema_mode="merge")
    return version, tables.num_records(path, version, partitions=dates, spark=spark)


def empty_partitions(spark: SparkSession, cfg: Config, fs: FeatureSet, dates: Iterable[dt.date]) -> dict[dt.date, str]:
    """Of the `dates` just written, those that came out with no rows (so the table has no such
    partition), each with why: what the source holds for that day (an empty ds= folder, 0-row
    files). Validation records them quarantined (a verdict the scheduler sees)."""
    done = set(computed_dates(spark, cfg, fs))
    return {d: _source_day_contents(cfg, fs.source, d) for d in sorted(set(dates) - done)}


def _source_day_contents(cfg: Config, name: str, day: dt.date) -> str:
    source = cfg.project.sources[name]
    path = cfg.resolve(source.path)
    if source.format == "delta":
        return f"source {name} ({path}): partition ds={day} has no rows"
    import pyarrow.fs as pafs

    fs, root = catalog.filesystem(path)
    folder = f"ds={day.isoformat()}"
    infos = [i for i in fs.get_file_info(pafs.FileSelector(f"{root}/{folder}", allow_not_found=True))
             if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_"))]
    if not infos:
        return f"source {name}: folder {folder} in {path} holds no Parquet file"
    return f"source {name}: the {len(infos)} Parquet file(s) of {folder} in {path} hold 0 rows"


def recorded_source_days(spark: SparkSession, cfg: Config, fs: FeatureSet) -> dict[dt.date, frozenset]:
    """The (source, day) pairs each computed partition recorded in `_source_days` (one small
    aggregation over that column; a table written before lineage existed records nothing)."""
    path = feature_table(cfg, fs)
    if not tables.exists(path, spark):
        return {}
    df = tables.read(spark, path)
    if SOURCE_DAYS not in df.columns:
        return {}
    rows = df.groupBy("ds").agg(F.first(SOURCE_DAYS).alias("read")).collect()
    return {_as_date(r["ds"]): frozenset((x["source"], _as_date(x["ds"])) for x in (r["read"] or [])) for r in rows}


def stale_dates(spark: SparkSession, cfg: Config, fs: FeatureSet, excluded: Excluded, *,
                warned: Excluded | None = None) -> list[dt.date]:
    """Computed partitions whose windows read other days than they would now: a day they read
    was quarantined since, or a day they skipped was released (or has arrived). Recomputing
    them with `excluded` makes every row depend on valid days only."""
    recorded = recorded_source_days(spark, cfg, fs)
    if not recorded:
        return []
    sources = {fs.source} | {j.source for j in fs.as_of_joins}
    available = {s: set(source_dates(spark, cfg, s)) for s in sources}
    def now(d: dt.date, read: frozenset) -> frozenset:
        # A warning that came after the partition was computed (its window day had no verdict
        # yet) is not a reason to recompute it; a recorded warning that no longer holds (the
        # day was fixed or released) is.
        return frozenset(x for x in source_days_read(fs, d, excluded, available, warned=warned)
                         if not x[0].endswith(WARNED) or x in read)

    return sorted(d for d, read in recorded.items() if read != now(d, read))
