"""The one feature projection: how a feature row becomes a model's input, for training sets,
the promotion gate, `predict` and the notebooks alike (no training/serving skew).

Spark side (`Projection`): the segment value (the `segment_by` value as a string; null ->
NULL_SEGMENT; unsegmented models -> ALL_SEGMENT) and the feature values, typed by kind:
  numeric      double: numbers and booleans cast, timestamps as epoch seconds, dates as
               epoch days
  categorical  string
carried as two maps (`features` map<string,double>, `categories` map<string,string>), which is
what `training_sets` stores and what `predict` builds from its input.

pandas side (`design_matrix`): numeric features as float64 (null -> NaN); categorical ones as
pandas categoricals with the categories seen in training (XGBoost) or as strings with nulls as
MISSING_CATEGORY (scikit-learn, one-hot encoded in the estimator's pipeline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
NULL_SEGMENT = "__null__"  # the segment of rows whose segment_by value is null
ALL_SEGMENT = "all"  # the segment of an unsegmented model
MISSING_CATEGORY = "__missing__"  # a null categorical value, for scikit-learn's one-hot encoder


class ProjectionError(ValueError):
    """A feature or label column cannot be projected (missing, or a type the engine cannot train on)."""


# --------------------------------------------------------------------------- Spark


def feature_kind(data_type) -> str | None:
    """numeric | categorical for a Spark type, None if the engine cannot train on it."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.StringType):
        return CATEGORICAL
    if isinstance(data_type, (T.NumericType, T.BooleanType, T.TimestampType, T.TimestampNTZType, T.DateType)):
        return NUMERIC
    return None


def segment_column(segment_by: str | None):
    from pyspark.sql import functions as F

    if segment_by is None:
        return F.lit(ALL_SEGMENT)
    return F.coalesce(F.col(segment_by).cast("string"), F.lit(NULL_SEGMENT))


def _value(name: str, kind: str, data_type):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(name)
    if kind == CATEGORICAL:
        return col.cast("string")
    if isinstance(data_type, T.DateType):
        return F.unix_date(col).cast("double")
    return col.cast("double")  # booleans -> 0/1, timestamps -> epoch seconds


def _map(items: list[tuple[str, Any]], value_type: str):
    from pyspark.sql import functions as F

    if not items:
        return F.create_map().cast(f"map<string,{value_type}>")
    args: list[Any] = []
    for name, col in items:
        args += [F.lit(name), col]
    return F.create_map(*args).cast(f"map<string,{value_type}>")


def map_value(name: str, kind: str, features: str = "features", categories: str = "categories"):
    """The value of one feature from the two projected maps."""
    from pyspark.sql import functions as F

    return F.col(categories if kind == CATEGORICAL else features)[name]


@dataclass(frozen=True)
class Projection:
    """What a model reads from a feature row: its features (with their kinds) and segment."""

    features: tuple[str, ...]
    feature_types: Mapping[str, str]  # feature -> numeric | categorical
    segment_by: str | None = None

    @classmethod
    def of_schema(cls, features: list[str] | tuple[str, ...], segment_by: str | None, schema,
                  where: str = "the feature table") -> "Projection":
        """The projection of `features` on a Spark schema (kinds from the column types)."""
        types = {f.name: f.dataType for f in schema.fields}
        missing = [c for c in list(features) + ([segment_by] if segment_by else []) if c not in types]
        if missing:
            raise ProjectionError(f"{where} has no column(s) {missing}")
        kinds: dict[str, str] = {}
        for name in features:
            kind = feature_kind(types[name])
            if kind is None:
                raise ProjectionError(f"feature {name!r} has type {types[name].simpleString()}, "
                                      "which the engine cannot train on")
            kinds[name] = kind
        return cls(tuple(features), kinds, segment_by)

    def segment(self):
        return segment_column(self.segment_by)

    def maps(self, schema) -> tuple[Any, Any]:
        """(features map<string,double>, categories map<string,string>) columns over `schema`."""
        types = {f.name: f.dataType for f in schema.fields}
        numeric = [(n, _value(n, NUMERIC, types[n])) for n in self.features if self.feature_types[n] == NUMERIC]
        categorical = [(n, _value(n, CATEGORICAL, types[n])) for n in self.features
                       if self.feature_types[n] == CATEGORICAL]
        return _map(numeric, "double"), _map(categorical, "string")


# --------------------------------------------------------------------------- pandas


def categories_of(pdf: pd.DataFrame, features, feature_types: Mapping[str, str]) -> dict[str, list[str]]:
    """The categories seen in `pdf` (what an XGBoost model is trained with)."""
    return {n: sorted(str(v) for v in pdf[n].dropna().unique()) for n in features if feature_types[n] == CATEGORICAL}


def design_matrix(pdf: pd.DataFrame, features, feature_types: Mapping[str, str], kind: str,
                  categories: Mapping[str, list[str]] | None = None) -> pd.DataFrame:
    """The model input from projected values (see the module docstring). Raises
    ProjectionError when a feature is not in `pdf`."""
    columns: dict[str, Any] = {}
    for name in features:
        if name not in pdf.columns:
            raise ProjectionError(f"feature {name!r} is not in the data")
        if feature_types[name] == NUMERIC:
            columns[name] = pd.to_numeric(pdf[name], errors="coerce").astype("float64").to_numpy()
        elif kind == "xgboost":
            cats = (categories or {}).get(name, [])
            columns[name] = pd.Categorical(pdf[name].astype(object).where(pdf[name].notna(), None), categories=cats)
        else:
            columns[name] = pdf[name].astype(object).where(pdf[name].notna(), MISSING_CATEGORY).astype(str).to_numpy()
    return pd.DataFrame(columns, index=pdf.index)


def frame_from_maps(features: pd.Series, categories: pd.Series, feature_types: Mapping[str, str]) -> pd.DataFrame:
    """Feature columns from collected training-set rows (the two maps, as dicts or entry lists)."""
    feats = [dict(f) if f is not None else {} for f in features]
    cats = [dict(c) if c is not None else {} for c in categories]
    return pd.DataFrame({
        name: [(c if kind == CATEGORICAL else f).get(name) for f, c in zip(feats, cats)]
        for name, kind in feature_types.items()
    }, index=features.index)
