"""MAP 1 on small explicit data: point in time, as-of joins, incremental and idempotent."""
import datetime as dt
import decimal
import math
import os
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import catalog, expressions, features, tables
from engine.config import load_config
from engine.errors import ConfigError, FeatureError, SourceError

UTC = dt.timezone.utc


def day(n: int) -> dt.date:
    return dt.date(2026, 10, 1) + dt.timedelta(days=n)


def at(n: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day(n), dt.time(hour, minute), tzinfo=UTC)


# Orders of two customers over five days. Customer a orders every day; b on day 1 and 3.
# Day 4 has a huge order that no feature of an earlier day may see.
ORDERS = [
    # order_id, customer, region, ts, amount, outcome
    ("o0", "a", "n", at(0, 10), 10.0, 1.0),
    ("o1", "a", "n", at(1, 10), 20.0, 0.0),
    ("o2", "b", "s", at(1, 11), 5.0, 1.0),
    ("o3", "a", "n", at(2, 9), 30.0, 0.0),
    ("o4", "a", "n", at(3, 10), 40.0, 1.0),
    ("o5", "b", "s", at(3, 12), 7.0, 0.0),
    ("o6", "a", "n", at(4, 10), 1000.0, 1.0),
]
# Weather per region each hour-ish; the 10:30 reading of day 3 is later than order o4 (10:00).
WEATHER = [("n", at(n, h), float(n * 100 + h)) for n in range(5) for h in (8, 9)]
WEATHER += [("n", at(3, 10, 30), -1.0), ("s", at(1, 11), 55.0)]


def write_sources(root, orders=ORDERS, weather=WEATHER):
    schema = pa.schema([("order_id", pa.string()), ("customer_id", pa.string()), ("region", pa.string()),
                        ("event_ts", pa.timestamp("us", tz="UTC")), ("amount", pa.float64()),
                        ("outcome", pa.float64())])
    for n in sorted({o[3].date() for o in orders}):
        part = [o for o in orders if o[3].date() == n]
        folder = root / "raw" / "orders" / f"ds={n.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, o)) for o in part], schema=schema),
                       folder / "part-0.parquet")
    from deltalake import write_deltalake

    wt = pa.table({"region": [w[0] for w in weather], "obs_ts": [w[1] for w in weather],
                   "temp_c": [w[2] for w in weather], "ds": [w[1].date() for w in weather]},
                  schema=pa.schema([("region", pa.string()), ("obs_ts", pa.timestamp("us", tz="UTC")),
                                    ("temp_c", pa.float64()), ("ds", pa.date32())]))
    write_deltalake(str(root / "raw" / "weather"), wt, partition_by=["ds"])


FEATURES = """
feature_sets:
  orders:
    source: orders
    entity: [order_id]
    event_time: event_ts
    columns: [customer_id, region, amount]
    features:
      amount_x2: "amount * 2"
    rolling:
      - {name: orders_2d, by: [customer_id], column: "1", agg: count, days: 2}
      - {name: amount_mean_3d, by: [customer_id], column: amount, agg: mean, days: 3}
      - {name: amount_max_3d, by: [customer_id], column: amount, agg: max, days: 3}
    as_of_joins:
      - {source: weather, keys: [region], time: obs_ts, max_lag_hours: 2, columns: {temp: temp_c}}
    labels:
      outcome: {expr: "CAST(outcome AS INT)", delay_days: 1}
"""


@pytest.fixture
def project(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "project.yaml").write_text(textwrap.dedent("""
        lakehouse: ./lake
        sources:
          orders: {format: parquet, path: ./lake/raw/orders}
          weather: {format: delta, path: ./lake/raw/weather}
    """))
    (conf / "features.yaml").write_text(FEATURES)
    write_sources(tmp_path / "lake")
    return conf


def feature_rows(spark, cfg, version=None):
    df = tables.read(spark, catalog.Catalog.of(cfg).features("orders"), version)
    return {r.order_id: r.asDict() for r in df.collect()}


def test_rolling_features_use_only_the_days_before_ds(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    features.write_features(spark, cfg, fs, [day(n) for n in range(5)])
    got = feature_rows(spark, cfg)
    # o4 (a, day 3): orders of a on days 1-2 -> 2; mean of amounts on days 0-2 -> 20; max 30.
    assert got["o4"]["orders_2d"] == 2
    assert got["o4"]["amount_mean_3d"] == pytest.approx(20.0)
    assert got["o4"]["amount_max_3d"] == 30.0
    # day 0 has no history: count 0, mean null. The same day's own order is never counted.
    assert got["o0"]["orders_2d"] == 0 and got["o0"]["amount_mean_3d"] is None
    # b on day 3: only day 1 is within 3 days (5.0); day 4's 1000 never leaks backwards.
    assert got["o5"]["amount_mean_3d"] == pytest.approx(5.0)
    assert max(r["amount_max_3d"] or 0 for r in got.values() if r["ds"] < day(4)) == 30.0
    assert got["o6"]["amount_max_3d"] == 40.0
    assert got["o1"]["amount_x2"] == 40.0 and got["o1"]["outcome"] == 0


def test_as_of_join_takes_latest_earlier_row_never_a_later_one(spark, project):
    cfg = load_config(project)
    features.write_features(spark, cfg, cfg.feature_sets["orders"], [day(n) for n in range(5)])
    got = feature_rows(spark, cfg)
    assert got["o4"]["temp"] == 309.0  # 09:00 reading; the 10:30 one is after the order
    assert got["o3"]["temp"] == 209.0  # order at 09:00: the 09:00 reading (at, not before) wins over 08:00
    assert got["o2"]["temp"] == 55.0  # equal timestamp counts as "at or before"
    assert got["o5"]["temp"] is None  # south's only reading is 2 days older than max_lag_hours


def test_features_for_ds_do_not_change_when_later_days_arrive(spark, project, tmp_path):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    features.write_features(spark, cfg, fs, [day(n) for n in range(3)])
    early = feature_rows(spark, cfg)
    features.write_features(spark, cfg, fs, [day(3), day(4)])
    later = feature_rows(spark, cfg)
    assert {k: later[k] for k in early} == early


def test_incremental_computes_only_missing_partitions(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    assert features.pending_dates(spark, cfg, fs, day(2)) == [day(0), day(1), day(2)]
    features.write_features(spark, cfg, fs, [day(0), day(1), day(2)])
    path = catalog.Catalog.of(cfg).features("orders")
    files_before = {f for f in _files(path) if "ds=2026-10-04" not in f and "ds=2026-10-05" not in f}
    assert features.pending_dates(spark, cfg, fs, day(4)) == [day(3), day(4)]
    version, n = features.write_features(spark, cfg, fs, [day(3), day(4)])
    assert n == 3 and version == 1
    assert files_before <= set(_files(path))  # earlier partitions were not rewritten
    assert features.pending_dates(spark, cfg, fs, day(4)) == []


def test_recomputing_a_date_replaces_it_with_identical_rows(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    features.write_features(spark, cfg, fs, [day(n) for n in range(5)])
    before = feature_rows(spark, cfg)
    features.write_features(spark, cfg, fs, [day(3)])
    assert feature_rows(spark, cfg) == before
    assert tables.version(catalog.Catalog.of(cfg).features("orders")) == 1


def test_missing_source_partition_is_named(spark, project):
    cfg = load_config(project)
    with pytest.raises(SourceError, match=r"source orders .*no partition ds=2026-10-09"):
        features.write_features(spark, cfg, cfg.feature_sets["orders"], [day(8)])


def test_bad_expression_names_feature_set_and_feature(spark, project):
    (project / "features.yaml").write_text(FEATURES.replace('"amount * 2"', '"amount * price"'))
    cfg = load_config(project)
    with pytest.raises(FeatureError, match=r"feature set orders: feature 'amount_x2' = 'amount \* price'"):
        features.build_features(spark, cfg, cfg.feature_sets["orders"], [day(0)])


def test_registered_python_transform(spark, project):
    @features.feature_transform("amount_band_test", outputs=["amount_band"])
    def amount_band(df):
        from pyspark.sql import functions as F

        return df.withColumn("amount_band", F.when(F.col("amount") >= 30, "big").otherwise("small"))

    (project / "features.yaml").write_text(FEATURES + "    transforms: [amount_band_test]\n")
    cfg = load_config(project)
    df = features.build_features(spark, cfg, cfg.feature_sets["orders"], [day(3)])
    assert {r.order_id: r.amount_band for r in df.collect()} == {"o4": "big", "o5": "small"}


def _files(path):
    return [os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
            if f.endswith(".parquet")]


# --------------------------------------------------------------------------- quarantine


def read_days(row):
    return sorted((s["source"], s["ds"]) for s in row["_source_days"])


def test_quarantined_day_is_left_out_of_later_rolling_windows_and_comes_back_on_release(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    days = [day(n) for n in range(5)]
    features.write_features(spark, cfg, fs, days)
    clean = feature_rows(spark, cfg)
    # Day 2 (a's 30.0 order) is quarantined: the windows of days 3 and 4 skip it.
    excluded = features.excluded_source_days(cfg, {"orders": [day(2)]})
    assert excluded == {"orders": frozenset({day(2)})}
    todo = features.stale_dates(spark, cfg, fs, excluded)  # the partitions whose windows read day 2
    assert todo == [day(3), day(4)]
    features.write_features(spark, cfg, fs, todo, excluded)
    got = feature_rows(spark, cfg)
    assert got["o4"]["amount_mean_3d"] == pytest.approx(15.0)  # days 0, 1 (10, 20); not 20 with day 2
    assert got["o4"]["orders_2d"] == 1 and got["o4"]["amount_max_3d"] == 20.0
    assert got["o6"]["amount_mean_3d"] == pytest.approx(30.0)  # days 1, 3 (20, 40)
    assert got["o3"] == clean["o3"]  # the quarantined day's own rows are computed as before
    for r in got.values():  # checkable: no partition after day 2 read it
        if r["ds"] > day(2):
            assert ("orders", day(2)) not in read_days(r)
    assert read_days(got["o4"]) == [("orders", day(n)) for n in range(4) if n != 2] + [
        ("weather", day(2)), ("weather", day(3))]
    # Released: recomputing the dependents without exclusions brings day 2 back.
    assert features.stale_dates(spark, cfg, fs, {}) == todo
    features.write_features(spark, cfg, fs, todo, {})
    assert feature_rows(spark, cfg) == clean


def test_quarantined_day_of_a_joined_source_does_not_feed_as_of_joins(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    excluded = {"weather": {day(3)}}
    features.write_features(spark, cfg, fs, [day(3), day(4)], excluded)
    assert features.stale_dates(spark, cfg, fs, excluded) == []
    assert features.stale_dates(spark, cfg, fs, {}) == [day(3), day(4)]  # released: both read day 3's weather
    got = feature_rows(spark, cfg)
    assert got["o4"]["temp"] is None  # the 09:00 reading of day 3 is excluded; 2 h lag finds nothing else
    assert got["o6"]["temp"] == 409.0  # day 4 reads weather of day 4
    assert ("weather", day(3)) not in read_days(got["o6"]) and ("weather", day(4)) in read_days(got["o6"])


def test_a_multi_day_batch_equals_day_by_day(spark, project):
    cfg = load_config(project)
    fs = cfg.feature_sets["orders"]
    batch = {r["order_id"]: r.asDict() for r in features.build_features(spark, cfg, fs, [day(n) for n in range(5)]).collect()}
    single = {}
    for n in range(5):
        single.update({r["order_id"]: r.asDict() for r in features.build_features(spark, cfg, fs, [day(n)]).collect()})
    assert batch == single and len(batch) == len(ORDERS)


def test_event_time_may_be_an_expression(spark, project):
    text = FEATURES.replace("event_time: event_ts", 'event_time: "to_timestamp(date_format(event_ts, \'yyyy-MM-dd HH:mm:ss\'))"')
    (project / "features.yaml").write_text(text)
    cfg = load_config(project)
    df = features.build_features(spark, cfg, cfg.feature_sets["orders"], [day(3)])
    got = {r.order_id: r.temp for r in df.collect()}
    assert got == {"o4": 309.0, "o5": None}
    assert "event_ts" not in df.columns and "_event_time" not in df.columns


def test_event_time_that_is_not_a_timestamp_is_named(spark, project):
    (project / "features.yaml").write_text(FEATURES.replace("event_time: event_ts", "event_time: order_id"))
    cfg = load_config(project)
    with pytest.raises(FeatureError, match=r"feature set orders: event_time 'order_id' is string, expected a timestamp"):
        features.build_features(spark, cfg, cfg.feature_sets["orders"], [day(3)])


@pytest.mark.parametrize("expr", [
    "reflect('java.lang.Runtime', 'getRuntime')",
    "JAVA_METHOD('java.lang.System', 'exit', 1)",
    "`try_reflect`('java.lang.Thread', 'sleep', 100000L)",
    "amount + (SELECT max(amount) FROM parquet.`/etc`)",
])
def test_check_expression_rejects_reflection_and_subqueries(expr):
    with pytest.raises(ValueError, match="not allowed"):
        expressions.check_expression(expr)


@pytest.mark.parametrize("expr", ["amount / items", "concat('reflect(', region)", "coalesce(amount, 0)",
                                  "CAST(dayofweek(ds) IN (1, 7) AS INT)",
                                  "extract(HOUR FROM event_ts)", "from_unixtime(0)"])
def test_check_expression_accepts_row_expressions(expr):
    expressions.check_expression(expr)


def test_config_refuses_a_reflective_expression(project):
    (project / "features.yaml").write_text(FEATURES.replace('"amount * 2"', "\"java_method('java.lang.Math', 'random')\""))
    with pytest.raises(ConfigError, match=r"features.yaml: feature_sets.orders.features: amount_x2: expression .* not allowed"):
        load_config(project)


def _raw_day(root, day: str, table: pa.Table, name: str = "part-00000.parquet"):
    folder = root / f"ds={day}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name)
    return folder / name


def test_raw_parquet_files_are_checked_before_spark_reads_them(tmp_path):
    """Footers only: a changed type, a used column gone, an unreadable file are one SourceError
    naming the partition, file and column; widened numbers and unused columns pass."""
    ok = pa.table({"id": pa.array([1, 2], pa.int64()), "amount": [1.5, 2.0], "note": ["a", "b"]})
    for day in ("2026-10-01", "2026-10-02", "2026-10-03"):
        _raw_day(tmp_path, day, ok)
    start, end = dt.date(2026, 10, 1), dt.date(2026, 10, 4)
    uses = lambda c: c != "note"  # noqa: E731
    check = lambda: features.check_parquet_files("orders", str(tmp_path), start, end, uses)  # noqa: E731

    _raw_day(tmp_path, "2026-10-04", ok.drop_columns(["note"]).set_column(0, "id", pa.array([1, 2], pa.int32())))
    check()  # int32 among int64 files and an unused column gone: Spark reads both

    _raw_day(tmp_path, "2026-10-04", ok.set_column(1, "amount", pa.array(["1.5", "2"])))
    with pytest.raises(SourceError, match=r"source orders ds=2026-10-04: part-00000\.parquet: column amount is "
                                          r"string, expected double"):
        check()

    _raw_day(tmp_path, "2026-10-04", ok.drop_columns(["amount"]))
    with pytest.raises(SourceError, match=r"source orders ds=2026-10-04: part-00000\.parquet has no column amount"):
        check()

    (tmp_path / "ds=2026-10-04" / "part-00000.parquet").write_bytes(b"PAR1")
    with pytest.raises(SourceError, match=r"source orders ds=2026-10-04: part-00000\.parquet is not a readable "
                                          r"Parquet file"):
        check()
    features.check_parquet_files("orders", str(tmp_path), start, end - dt.timedelta(days=1), uses)  # not read


@pytest.mark.parametrize("agg", ["sum", "mean"])
def test_a_rolling_sum_of_floats_does_not_depend_on_how_rows_are_split(spark, agg):
    """Floating-point addition depends on the order of its terms (1e16 + 1 - 1e16 is 0 one way,
    1 the other), and the order depends on how rows and days are split among tasks: a backfill
    or a night on a cluster would change a feature in its last bits. Sums are exact."""
    from engine.config import Rolling

    spec = Rolling(name="x", by=["k"], column="v", agg=agg, days=3)
    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3, 1e-3, 7.7]
    rows = [("a", dt.date(2026, 10, 1) + dt.timedelta(days=i % 3), v) for i, v in enumerate(values)]
    target = spark.createDataFrame([(dt.date(2026, 10, 4),)], "_target date")
    results = set()
    for order, parts in ((rows, 1), (rows[::-1], 4), (rows[3:] + rows[:3], 3), (rows[1::2] + rows[::2], 2)):
        history = spark.createDataFrame(order, "k string, ds date, v double").repartition(parts)
        [row] = features.rolling_feature(spec, history, target).collect()
        results.add(row["x"])
    exact = sum(decimal.Decimal(repr(v)) for v in values)
    assert results == {float(exact) if agg == "sum" else float(exact) / len(values)}
    # NaN and infinities keep Spark's double semantics (cast to a decimal they would be null: left out)
    odd = spark.createDataFrame([("a", dt.date(2026, 10, 1), float("nan")), ("a", dt.date(2026, 10, 2), 1.0),
                                 ("b", dt.date(2026, 10, 2), float("inf")), ("b", dt.date(2026, 10, 3), 1e300)],
                                "k string, ds date, v double")
    got = {r["k"]: r["x"] for r in features.rolling_feature(spec, odd, target).collect()}
    assert math.isnan(got["a"]) and got["b"] == float("inf")
