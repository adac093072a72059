"""The demo's Python transforms (what SQL cannot say), registered by name."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from engine.transforms import feature_transform


@feature_transform("distance_band", outputs=["distance_band"])
def distance_band(df: DataFrame) -> DataFrame:
    """distance_km bucketed into short (< 3 km), medium (< 8 km) and long."""
    km = F.col("distance_km")
    return df.withColumn(
        "distance_band",
        F.when(km.isNull(), F.lit(None)).when(km < 3, "short").when(km < 8, "medium").otherwise("long"),
    )
