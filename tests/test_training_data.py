"""Helpers (no tests): a tmp project with one small feature set written as a real Delta table.

Feature set `shop`: entity order_id; columns region (north/south), x, noise, city (string),
labels y (double, delay 1 day) and late (0/1, delay 2 days).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from engine import tables
from engine.catalog import Catalog
from engine.config import Config, load_config

START = dt.date(2026, 3, 1)

FEATURES_YAML = {
    "feature_sets": {
        "shop": {
            "source": "orders",
            "entity": ["order_id"],
            "columns": ["region", "x", "noise", "city"],
            "labels": {"y": {"expr": "y", "delay_days": 1}, "late": {"expr": "late", "delay_days": 2}},
        }
    }
}


def model_yaml(model_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_id": model_id, "feature_set": "shop", "features": ["x", "noise"], "label": "y",
        "task": "regression", "estimator": "sklearn.Ridge", "grid": {"alpha": [0.1]},
        "train_window_days": 10, "eval_window_days": 3, "metric": "mae", "min_rows": 5,
    }
    base.update(overrides)
    return base


def make_project(root: Path, models: list[dict[str, Any]], **project: Any) -> Config:
    conf = root / "conf"
    (conf / "models").mkdir(parents=True, exist_ok=True)
    for f in (conf / "models").glob("*.yaml"):
        f.unlink()
    settings = {"name": "t", "lakehouse": str(root / "lakehouse"),
                "sources": {"orders": {"format": "parquet", "path": str(root / "raw")}}, **project}
    (conf / "project.yaml").write_text(yaml.safe_dump(settings))
    (conf / "features.yaml").write_text(yaml.safe_dump(FEATURES_YAML))
    for m in models:
        (conf / "models" / f"{m['model_id']}.yaml").write_text(yaml.safe_dump(m))
    return load_config(conf)


def day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


def shop_rows(days: list[dt.date], per_region: int = 20, seed: int = 0, regions=("north", "south"),
              y_fn=None) -> pd.DataFrame:
    """Deterministic rows. y = 3x + region offset + noise (or y_fn(x, ds) if given);
    late = 1 when x + noise/3 > 0.65."""
    rng = np.random.default_rng(seed)
    frames = []
    for d in days:
        for r in regions:
            n = per_region
            x = rng.uniform(0, 1, n)
            noise = rng.uniform(0, 1, n)
            off = 0.0 if r == "north" else 1.0
            y = y_fn(x, d) if y_fn is not None else 3 * x + off + rng.normal(0, 0.05, n)
            frames.append(pd.DataFrame({
                "order_id": [f"{d:%Y%m%d}-{r}-{i}" for i in range(n)],
                "region": r, "x": x, "noise": noise,
                "city": rng.choice(["a", "b", "c"], n),
                "y": y, "late": ((x + noise / 3 + rng.normal(0, 0.05, n)) > 0.65).astype("int32"),
                "ds": d,
            }))
    return pd.concat(frames, ignore_index=True)


def write_features(spark, cfg: Config, pdf: pd.DataFrame, replace: bool = True) -> int:
    df = spark.createDataFrame(pdf, schema=(
        "order_id string, region string, x double, noise double, city string, y double, late int, ds date"))
    days = sorted(set(pdf["ds"]))
    return tables.write(spark, df, Catalog.of(cfg).features("shop"), mode="overwrite" if replace else "append",
                        partition_by=["ds"], replace_partitions=days if replace else None)
