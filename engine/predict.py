"""Close the loop: score a table with the champions of a model, one per segment.

Distributed and without collecting data: `mapInPandas` scores each batch on the executors,
which load the champion artifacts themselves (each task loads a champion once, after
verifying its sha256 against the registry) and route each row to the champion of its
segment. Output = the input
columns + `prediction` (P(label = 1) for a classifier, the value for a regressor) +
`model_version` (null where the row's segment has no champion).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from engine import registry, tables
from engine.catalog import Catalog
from engine.config import Config
from engine.errors import RetrainError, UsageError
from engine.projection import Projection, map_value
from engine.training.artifacts import load_artifact


def read_input(spark, path: str):
    """A Delta table, or Parquet files/folders."""
    if tables.exists(path, spark):
        return tables.read(spark, path)
    try:
        return spark.read.parquet(path)
    except Exception as e:
        raise UsageError(f"input {path}: neither a Delta table nor Parquet: {str(e).splitlines()[0]}") from e


def projected(df, projection: Projection):
    """`df`'s columns + `_segment` + one `_p<i>` column per feature (in the order of
    `projection.features`), through the same projection as training sets."""
    from pyspark.sql import functions as F

    features, categories = projection.maps(df.schema)
    values = [map_value(name, projection.feature_types[name], "_features", "_categories").alias(f"_p{i}")
              for i, name in enumerate(projection.features)]
    return (df.select(*[F.col(c) for c in df.columns], projection.segment().alias("_segment"),
                      features.alias("_features"), categories.alias("_categories"))
            .select(*[F.col(c) for c in df.columns], "_segment", *values))


def predict(spark, cfg: Config, model_id: str, input_path: str, output_path: str, *,
            output_format: str = "parquet") -> int:
    """Score `input_path` with the champions of `model_id`; write `output_path` (replaced);
    return the number of rows written."""
    from pyspark.sql import types as T

    if output_format not in ("parquet", "delta"):
        raise UsageError(f"output format must be parquet or delta, got {output_format!r}")
    cat = Catalog.of(cfg)
    champs = registry.champions(spark, cfg, model_id)
    if not champs:
        raise RetrainError(f"model {model_id!r}: no champion in the registry {cat.registry}")
    # Each champion is loaded here once (sha256 against the registry, skops' trusted types), so a
    # damaged or tampered artifact is one error before any task starts or any output is written.
    metas = {c.segment: load_artifact(registry.artifact(cat, c), expected_sha256=c.sha256)[1] for c in champs}
    segment_by = {m.segment_by for m in metas.values()}
    if len(segment_by) != 1:
        raise RetrainError(f"model {model_id!r}: champions disagree on segment_by: {sorted(map(str, segment_by))}")
    segment_by = segment_by.pop()
    task = next(iter(metas.values())).task

    df = read_input(spark, input_path)
    types: dict[str, str] = {}
    for meta in metas.values():
        types.update(meta.feature_types)
    needed = sorted(types) + ([segment_by] if segment_by else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UsageError(f"input {input_path}: lacks column(s) {missing} that the champions of {model_id!r} need")

    projection = Projection(tuple(sorted(types)), types, segment_by)
    keep = list(df.columns)
    out_schema = T.StructType(list(df.schema.fields) + [
        T.StructField("prediction", T.DoubleType(), True), T.StructField("model_version", T.StringType(), True)])
    refs = {c.segment: (registry.artifact(cat, c), c.sha256, c.version) for c in champs}
    result = projected(df, projection).mapInPandas(_scorer(refs, projection, task, keep), out_schema)

    if output_format == "delta":
        version = tables.write(spark, result, output_path, mode="overwrite")
        return tables.num_records(output_path, version)
    result.write.mode("overwrite").parquet(output_path)
    import pyarrow.dataset as ds

    return int(ds.dataset(output_path, format="parquet").count_rows())


def feature_frame(pdf, projection: Projection):
    """The projected feature columns of a batch of `projected(...)` rows, named by feature."""
    import pandas as pd

    return pd.DataFrame({name: pdf[f"_p{i}"].to_numpy() for i, name in enumerate(projection.features)},
                        index=pdf.index)


def _scorer(refs: dict[str, tuple[str, str, str]], projection: Projection, task: str, keep: list[str]):
    import pandas as pd

    from engine.projection import design_matrix
    from engine.training.fit import predict_scores

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        loaded: dict[str, tuple[Any, Any]] = {}  # this task's champions, by segment
        for pdf in batches:
            pdf = pdf.reset_index(drop=True)
            prediction = np.full(len(pdf), np.nan)
            version = np.full(len(pdf), None, dtype=object)
            values = feature_frame(pdf, projection)
            for segment, idx in pdf.groupby("_segment", sort=False).indices.items():
                if segment not in refs:
                    continue
                uri, sha, model_version = refs[segment]
                if segment not in loaded:
                    loaded[segment] = load_artifact(uri, expected_sha256=sha)
                model, meta = loaded[segment]
                X = design_matrix(values.iloc[idx], meta.features, meta.feature_types, meta.kind, meta.categories)
                prediction[idx] = predict_scores(model, task, X)
                version[idx] = model_version
            out = pdf[keep].copy()
            out["prediction"] = pd.Series(prediction).where(~np.isnan(prediction), None)
            out["model_version"] = version
            yield out

    return score
