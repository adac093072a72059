"""Python feature transforms, registered by name in code (YAML names them, never an import path).

    @feature_transform("basket_band", outputs=["basket_band"])
    def basket_band(df): ...

A team's transforms live in its own package, a plugin (engine/plugins.py) named under
`plugins:` in project.yaml or installed with a `retrain.plugins` entry point.

The registry is its own module so that config (which checks transform names at load) and
features (which applies them) both depend on it, not on each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from pyspark.sql import DataFrame

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
