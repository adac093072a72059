"""Synthetic demo source: food-delivery orders and hourly weather, deterministic by seed.

raw/orders  Parquet, hive-style ds=YYYY-MM-DD folders (one row per order)
raw/weather Delta, partitioned by ds (one row per region and hour)

Four regions (segments), weekly seasonality (more and larger orders at weekends), slow drift
(basket sizes and courier load grow over the period), labels (delivery_minutes, and late =
delivery_minutes > promised_minutes), and engineering faults on known days, listed in
raw/orders/_faults.json as {ds, column, kind, source_column}: `column` is the column of
features/orders in which the fault shows.

The demo's Python transform is not here: it lives in the demo's plugin, retrain_demo/, which
conf/project.yaml names under `plugins:` as a team's own package would be.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FAULTS_FILE = os.path.join("raw", "orders", "_faults.json")  # under the lakehouse root
REGIONS = ["north", "south", "east", "west"]
REGION_BASE_MINUTES = {"north": 18.0, "south": 22.0, "east": 20.0, "west": 25.0}
REGION_TEMP = {"north": 8.0, "south": 20.0, "east": 14.0, "west": 16.0}


@dataclass(frozen=True)
class Fault:
    ds: str
    column: str  # the column of features/orders where it shows
    kind: str
    source_column: str  # the raw column that was damaged


def fault_days(start: dt.date, days: int) -> dict[str, dt.date]:
    """Fault days, placed late in the period so they fall inside the training windows."""
    at = lambda frac: start + dt.timedelta(days=int(days * frac))  # noqa: E731
    return {"half_null": at(0.60), "unit_change_x100": at(0.70), "stale_copy": at(0.80),
            "category_renamed": at(0.90)}


def _orders_for_day(rng: np.random.Generator, day: dt.date, t: float, n_customers: int) -> dict[str, np.ndarray]:
    weekend = day.weekday() >= 5
    n = int(rng.poisson(1000 * (1.25 if weekend else 1.0)))
    region = rng.choice(REGIONS, size=n, p=[0.3, 0.25, 0.25, 0.2])
    customer = rng.integers(0, n_customers, size=n)
    seconds = np.sort(rng.integers(8 * 3600, 23 * 3600, size=n))
    items = rng.integers(1, 11, size=n)
    price = rng.gamma(4.0, 3.0, size=n) * (1.0 + 0.15 * t) * (1.1 if weekend else 1.0)
    amount = np.round(np.clip(items * price, 5.0, 150.0), 2)
    discount = np.round(np.where(rng.random(n) < 0.3, rng.uniform(0.05, 0.5, size=n), 0.0), 3)
    distance = np.round(np.clip(rng.lognormal(1.3, 0.6, size=n), 0.3, 25.0), 2)
    load = np.clip(rng.beta(2 + 2 * t, 3, size=n) + (0.1 if weekend else 0.0), 0.0, 1.0)
    base = np.array([REGION_BASE_MINUTES[r] for r in region])
    # The promise knows the region and the distance, not the courier load or the rush hour:
    # about a quarter of orders are late at the start, 40% by the end (drift).
    promised = np.clip(np.round(base + 13 + 1.8 * distance), 20, 60).astype(np.int32)
    hour = seconds // 3600
    rush = ((hour >= 18) & (hour <= 20)).astype(float)
    minutes = base + 1.6 * distance + 14 * load + 6 * rush + 0.4 * items + rng.normal(0, 4, size=n)
    minutes = np.round(np.maximum(minutes, 5.0), 1)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    return {
        "order_id": np.array([f"{day:%Y%m%d}-{i:05d}" for i in range(n)]),
        "customer_id": np.array([f"c{c:05d}" for c in customer]),
        "region": region,
        "event_ts": np.array([midnight + dt.timedelta(seconds=int(s)) for s in seconds]),
        "amount": amount,
        "discount": discount,
        "items": items.astype(np.int32),
        "distance_km": distance,
        "courier_load": np.round(load, 3),
        "promised_minutes": promised,
        "delivery_minutes": minutes,
    }


ORDERS_SCHEMA = pa.schema([
    ("order_id", pa.string()), ("customer_id", pa.string()), ("region", pa.string()),
    ("event_ts", pa.timestamp("us", tz="UTC")), ("amount", pa.float64()), ("discount", pa.float64()),
    ("items", pa.int32()), ("distance_km", pa.float64()), ("courier_load", pa.float64()),
    ("promised_minutes", pa.int32()), ("delivery_minutes", pa.float64()),
])


def generate(lakehouse: str, end: dt.date, days: int = 70, seed: int = 7, n_customers: int = 4000,
             faults: bool = True) -> list[Fault]:
    """Write raw/orders and raw/weather for the `days` days ending at `end`; return the faults."""
    if days < 14:
        raise ValueError(f"days must be at least 14, got {days}")
    rng = np.random.default_rng(seed)
    start = end - dt.timedelta(days=days - 1)
    orders_root = os.path.join(lakehouse, "raw", "orders")
    weather_root = os.path.join(lakehouse, "raw", "weather")
    for root in (orders_root, weather_root):
        if os.path.exists(root):
            shutil.rmtree(root)
    os.makedirs(orders_root)
    planned = fault_days(start, days) if faults else {}
    injected: list[Fault] = []
    previous: dict[str, np.ndarray] | None = None
    weather_parts = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        t = i / days
        cols = _orders_for_day(rng, day, t, n_customers)
        clean = cols
        if day == planned.get("half_null"):
            cols = dict(cols)
            mask = rng.random(len(cols["discount"])) < 0.5
            cols["discount"] = np.where(mask, np.nan, cols["discount"])
            injected.append(Fault(day.isoformat(), "discount", "half_null", "discount"))
        elif day == planned.get("unit_change_x100"):
            cols = dict(cols, amount=np.round(cols["amount"] * 100, 2))
            injected.append(Fault(day.isoformat(), "amount", "unit_change_x100", "amount"))
        elif day == planned.get("stale_copy") and previous is not None:
            cols = previous  # yesterday's file delivered again
            injected.append(Fault(day.isoformat(), "event_lag_days", "stale_copy", "event_ts"))
        elif day == planned.get("category_renamed"):
            cols = dict(cols, region=np.char.upper(cols["region"].astype(str)))
            injected.append(Fault(day.isoformat(), "region", "category_renamed", "region"))
        previous = clean
        arrays = {k: (pa.array(v, mask=np.isnan(v)) if k == "discount" else pa.array(v)) for k, v in cols.items()}
        table = pa.table(arrays).cast(ORDERS_SCHEMA)
        folder = os.path.join(orders_root, f"ds={day.isoformat()}")
        os.makedirs(folder)
        pq.write_table(table, os.path.join(folder, "part-00000.parquet"))
        weather_parts.append(_weather_for_day(rng, day, t))

    from deltalake import write_deltalake

    write_deltalake(weather_root, pa.concat_tables(weather_parts), partition_by=["ds"], mode="overwrite")
    with open(os.path.join(lakehouse, FAULTS_FILE), "w") as f:
        json.dump([asdict(x) for x in injected], f, indent=2)
    return injected


def _weather_for_day(rng: np.random.Generator, day: dt.date, t: float) -> pa.Table:
    rows = {"region": [], "obs_ts": [], "temp_c": [], "rain_mm": [], "ds": []}
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    for region in REGIONS:
        rainy_day = rng.random() < 0.3
        for hour in range(24):
            rows["region"].append(region)
            rows["obs_ts"].append(midnight + dt.timedelta(hours=hour))
            temp = REGION_TEMP[region] - 6 * t + 5 * np.sin((hour - 9) / 24 * 2 * np.pi) + rng.normal(0, 1.5)
            rows["temp_c"].append(round(float(temp), 1))
            rows["rain_mm"].append(round(float(rng.exponential(2.0)) if rainy_day else 0.0, 1))
            rows["ds"].append(day)
    return pa.table(rows, schema=pa.schema([
        ("region", pa.string()), ("obs_ts", pa.timestamp("us", tz="UTC")), ("temp_c", pa.float64()),
        ("rain_mm", pa.float64()), ("ds", pa.date32()),
    ]))


def read_faults(lakehouse: str) -> list[Fault]:
    with open(os.path.join(lakehouse, FAULTS_FILE)) as f:
        return [Fault(**x) for x in json.load(f)]


def is_demo_lakehouse(lakehouse: str) -> bool:
    """Whether `lakehouse` is empty, missing, or one `generate` wrote (so it may be replaced)."""
    return not os.path.isdir(lakehouse) or not os.listdir(lakehouse) or os.path.isfile(os.path.join(lakehouse, FAULTS_FILE))


def describe_faults(faults: list[Fault]) -> list[str]:
    """The injected faults, one line each, for the demo's summary."""
    return [f"injected faults ({FAULTS_FILE}), validation should catch each:"] + [
        f"  ds={f.ds} column {f.column}: {f.kind}" for f in faults]
