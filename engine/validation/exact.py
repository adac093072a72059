"""The exact pass: value counts, exact medians and entity-key duplicates in ONE Spark job.

Runs after the grouped aggregation, only when a check needs value-level counts: exact
distinct and duplicate counts (to_be_unique, unique_value_count, proportion of unique
values), an exact median (the aggregation's KLL sketch gave the ranks 0.5 ± w per partition;
the values between them are counted exactly here), or the feature set's entity key.

Every row becomes a few small elements (key k, value v, number x): one per distinct column
(its value), one for the entity key (xxhash64 of the key columns and their null flags: exact
up to a 64-bit collision), one per median column (below the window: a counter; inside it:
the value). A shuffle aggregation over (ds, k, v, x) counts them (map-side partial
aggregation folds the counters; hash aggregation spills to disk, so a partition larger than
memory is fine), a second one over (ds, k, x) gives distinct values, duplicated rows and the
window's value counts. Only those totals and the window values (about 2w of a partition)
reach the driver. If a sketch's bracket missed the middle ranks (it holds w.h.p.), Spark's
exact percentile computes that median in one more job.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from engine.validation.plan import PartitionMetrics, Plan, q, sql_lit

log = logging.getLogger("retrain.validation")

ENTITY_KEY = "e"


def entity_key_sql(columns: list[str]) -> str:
    """One 64-bit key per row from the entity columns; null flags keep (1, NULL) and (NULL, 1) apart."""
    cols = [q(c) for c in columns]
    return f"xxhash64({', '.join(cols + [f'isnull({c})' for c in cols])})"


def run(part, plan: Plan, metrics: dict[dt.date, PartitionMetrics]) -> int:
    """Fill metrics with ("distinct", c), ("dup_rows", c), ("median", c) and
    ("entity_distinct",) per partition. Returns the number of Spark jobs (1, or 2 with the
    median fallback)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    elements = []
    for c in sorted(plan.distinct):
        col = q(c)
        if plan.kinds[c] == "float":  # -0.0 and 0.0 are one value for pandas
            col = f"CASE WHEN {col} = 0 THEN CAST(0.0 AS DOUBLE) ELSE CAST({col} AS DOUBLE) END"
        elements.append(f"CASE WHEN {plan.present(c)} THEN "
                        f"named_struct('k', {sql_lit('d:' + c)}, 'v', CAST({col} AS STRING), 'x', CAST(NULL AS DOUBLE)) END")
    # a one-column entity key whose values are counted anyway: its distinct keys are the
    # distinct present values plus one for the missing ones (no second element per row)
    shared_key = len(plan.entity) == 1 and plan.entity[0] in plan.distinct and plan.kinds[plan.entity[0]] != "float"
    if plan.entity and not shared_key:
        elements.append(f"named_struct('k', {sql_lit(ENTITY_KEY)}, 'v', CAST({entity_key_sql(plan.entity)} AS STRING), "
                        "'x', CAST(NULL AS DOUBLE))")
    medians = sorted(plan.median)
    frame = part
    if medians:
        bounds = _bounds(plan, medians, metrics)
        schema = T.StructType([T.StructField("ds", T.DateType())] + [
            T.StructField(f"_{side}{j}", T.DoubleType()) for j in range(len(medians)) for side in ("lo", "hi")])
        table = part.sparkSession.createDataFrame(bounds, schema)
        frame = part.join(F.broadcast(table), on="ds", how="left")
        for j, c in enumerate(medians):
            x, present = f"CAST({q(c)} AS DOUBLE)", plan.present(c)
            elements.append(
                f"CASE WHEN {present} AND {x} < _lo{j} THEN named_struct('k', {sql_lit('b:' + c)}, "
                f"'v', CAST(NULL AS STRING), 'x', CAST(NULL AS DOUBLE)) "
                f"WHEN {present} AND {x} <= _hi{j} THEN named_struct('k', {sql_lit('w:' + c)}, "
                f"'v', CAST(NULL AS STRING), 'x', {x}) END")
    exploded = (frame.select("ds", F.explode(F.expr(f"array({', '.join(elements)})")).alias("e"))
                .where(F.col("e").isNotNull())
                .select("ds", F.col("e.k").alias("k"), F.col("e.v").alias("v"), F.col("e.x").alias("x")))
    per_value = exploded.groupBy("ds", "k", "v", "x").agg(F.count(F.lit(1)).alias("n"))
    totals = per_value.groupBy("ds", "k", "x").agg(
        F.count(F.lit(1)).alias("values"),
        F.sum("n").alias("rows"),
        F.sum(F.when(F.col("n") > 1, F.col("n")).otherwise(0)).alias("dup_rows"),
    ).collect()
    below: dict[tuple[dt.date, str], int] = {}
    windows: dict[tuple[dt.date, str], list[tuple[float, int]]] = {}
    for r in totals:
        m, k = metrics[r["ds"]], r["k"]
        if k == ENTITY_KEY:
            m.values[("entity_distinct",)] = int(r["values"])
        elif k.startswith("d:"):
            m.values[("distinct", k[2:])] = int(r["values"])
            m.values[("dup_rows", k[2:])] = int(r["dup_rows"])
        elif k.startswith("b:"):
            below[(r["ds"], k[2:])] = int(r["rows"])
        else:
            windows.setdefault((r["ds"], k[2:]), []).append((float(r["x"]), int(r["rows"])))
    if shared_key:
        c = plan.entity[0]
        for m in metrics.values():
            m.values[("entity_distinct",)] = m.get(("distinct", c), 0) + (1 if m.get(("missing", c), 0) else 0)
    unresolved: list[tuple[dt.date, str]] = []
    for d, m in metrics.items():
        for c in medians:
            n = m.rows - m.get(("missing", c), 0)
            if n <= 0:
                continue
            value = median_from_window(n, below.get((d, c), 0), windows.get((d, c), []))
            if value is None:
                unresolved.append((d, c))
            else:
                m.values[("median", c)] = value
    if not unresolved:
        return 1
    log.info("validation: exact median fallback for %d partition columns", len(unresolved))
    for c in sorted({c for _, c in unresolved}):
        ds_list = [d for d, cc in unresolved if cc == c]
        rows = (part.where(F.col("ds").isin(ds_list)).where(plan.present(c))
                .groupBy("ds").agg(F.expr(f"percentile(CAST({q(c)} AS DOUBLE), 0.5)").alias("med")).collect())
        for r in rows:
            metrics[r["ds"]].values[("median", c)] = float(r["med"])
    return 2


def _bounds(plan: Plan, medians: list[str], metrics: dict[dt.date, PartitionMetrics]) -> list[tuple]:
    """Per partition, the sketch's values at the ranks bracketing each median (None: no values)."""
    bounds = []
    for d, m in metrics.items():
        row: list[Any] = [d]
        for c in medians:
            qs = m.get(("pct", c))
            lo_rank, hi_rank = plan.median[c]
            row += [float(qs[lo_rank]), float(qs[hi_rank])] if qs else [None, None]
        bounds.append(tuple(row))
    return bounds


def median_from_window(n: int, below: int, window: list[tuple[float, int]]) -> float | None:
    """The exact median (pandas: mean of the two middle values when n is even) from the
    value counts of a window of sorted values that starts at rank `below`; None if the
    window does not hold both middle ranks."""
    if n <= 0:
        return None
    k1, k2 = (n - 1) // 2, n // 2
    picked: dict[int, float] = {}
    rank = below
    for value, count in sorted(window):
        for k in (k1, k2):
            if rank <= k < rank + count:
                picked[k] = value
        rank += count
    if k1 not in picked or k2 not in picked:
        return None
    return float(picked[k1]) if k1 == k2 else (float(picked[k1]) + float(picked[k2])) / 2
