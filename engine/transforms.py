"""Python feature transforms, registered by name in code (YAML names them, never an import path).

    @feature_transform("distance_band", outputs=["distance_band"])
    def distance_band(df): ...

The registry is its own module so that config (which checks transform names at load) and
features (which applies them) both depend on it, not on each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

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
