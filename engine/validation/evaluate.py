"""MAP 2, the evaluation: every partition of a run against its checks, all partitions at once.

1. One grouped aggregation per table (`groupBy(ds)`, one Spark job, plan.py) computes every
   metric the natively supported expectations need (native.py), the per-column profile
   (profiles.py: approximate statistics) and any extra aggregations a caller rides on the
   same scan (e.g. learned-check partition summaries). Every aggregate keeps a bounded buffer
   per (ds, column), so a partition larger than an executor's memory streams.
2. Only when a check needs value-level counts (exact distinct / duplicates, an exact median,
   the entity key): the exact pass (exact.py), one more job.
3. From the few aggregated rows the driver asks GX's own expectation classes for the verdict
   (gx_adapter.verdict), so success, `mostly`, strict bounds, empty partitions and the result
   format are GX's by construction; the engine's own table-level checks (entity.py) are
   decided here.
4. Anything else — other expectation types, other column types, row conditions,
   Python-only regex syntax — runs through GX itself (gx_adapter.validate_partitions: GX's
   pandas engine inside `groupBy(ds).applyInPandas`, one GX run per partition).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Sequence

from engine.validation import entity as entity_check
from engine.validation import exact, gx_adapter, profiles
from engine.validation.native import MEDIAN_SKETCH_K, NATIVE, route, supported_types
from engine.validation.outcomes import PROFILE_QUANTILES, CheckOutcome, ColumnProfile, Evaluation
from engine.validation.plan import PartitionMetrics, Plan, kind_of, sql_lit
from engine.validation.profiles import PROFILE_SKETCH_K
from engine.validation.suites import Suite

log = logging.getLogger("retrain.validation")

__all__ = ["CheckOutcome", "ColumnProfile", "Evaluation", "PROFILE_QUANTILES", "evaluate", "supported_types"]


def evaluate(spark, df, suite: Suite | None, dates: list[dt.date], *, profile: bool = True,
             entity: Sequence[str] = (), entity_severity: str = "block",
             extra_aggregations: Sequence = ()) -> Evaluation:
    """Validate every `ds` partition of `df` listed in `dates` (a date with no rows is an
    empty partition) against `suite` (optional) and, when `entity` is given, check that the
    entity key is unique per ds; profile the columns.

    `extra_aggregations`: aliased Spark Columns (aggregate expressions) evaluated per ds in
    the same `groupBy("ds").agg(...)`; `Evaluation.extras[ds]` is a Row of their values by
    alias (all None for a date with no rows; `extras` is empty without extra aggregations).

    Spark work: one grouped aggregation; one exact pass when the checks need value-level
    counts (exact distinct, median, entity key); one applyInPandas job when some
    expectations run through GX."""
    dates = sorted(set(dates))
    columns = list(df.columns)
    kinds = {f.name: kind_of(f.dataType) for f in df.schema.fields}
    dtypes = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    suite_checks = suite.checks if suite else []
    native, gx = [], []
    for check in suite_checks:
        why = route(check, kinds)
        if why is None:
            native.append(check)
        else:
            gx.append(check)
            log.debug("validation: %s (#%d) runs through GX: %s", check.type, check.index, why)

    plan = Plan(kinds)
    plan.rows()
    missing_column: dict[int, str] = {}
    for check in native:
        c = check.column
        if c is not None and check.type != "expect_column_to_exist" and c not in kinds:
            missing_column[check.index] = c
            continue
        NATIVE[check.type].request(check, plan)
    entity = list(entity)
    engine_checks = [entity_check.check(entity, entity_severity)] if entity else []
    entity_missing = [c for c in entity if c not in kinds]
    if entity and not entity_missing:
        plan.entity = entity
    profiled = [c for c in columns if c != "ds"] if profile else []
    for c in profiled:
        profiles.request(plan, c)

    from pyspark.sql import functions as F

    part = df.where(F.col("ds").isin(dates)) if dates else df.limit(0)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    metrics, extras = aggregate(part, plan, dates, columns, extra_aggregations)
    jobs = 1 if dates else 0
    seconds["aggregation"] = time.perf_counter() - clock
    if plan.exact and dates:
        clock = time.perf_counter()
        jobs += exact.run(part, plan, metrics)
        seconds["exact"] = time.perf_counter() - clock

    clock = time.perf_counter()
    outcomes: dict[dt.date, dict[int, CheckOutcome]] = {d: {} for d in dates}
    for d in dates:
        m = metrics[d]
        for check in native:
            if check.index in missing_column:
                outcomes[d][check.index] = CheckOutcome(
                    check.index, d, False, {}, f'column "{missing_column[check.index]}" does not exist', "native")
                continue
            success, result, exception = gx_adapter.verdict(check.expectation, NATIVE[check.type].metrics(check, m))
            outcomes[d][check.index] = CheckOutcome(check.index, d, success, result, exception, "native")
        if entity:
            outcomes[d][entity_check.ENTITY_INDEX] = entity_check.outcome(entity, d, m, entity_missing)
    seconds["verdicts"] = time.perf_counter() - clock

    if gx and dates:
        jobs += 1
        clock = time.perf_counter()
        for o in gx_adapter.validate_partitions(part, gx, columns, dates):
            outcomes[o.ds][o.index] = o
        seconds["gx"] = time.perf_counter() - clock

    checks = list(suite_checks) + engine_checks
    column_profiles = {d: [profiles.profile(c, dtypes[c], kinds[c], metrics[d]) for c in profiled] for d in dates}
    ordered = {d: [outcomes[d][c.index] for c in checks] for d in dates}
    return Evaluation(columns=columns, outcomes=ordered, profiles=column_profiles,
                      native_types=sorted({c.type for c in native}), gx_types=sorted({c.type for c in gx}),
                      jobs=jobs, seconds=seconds, checks=checks, extras=extras)


def aggregate(part, plan: Plan, dates: list[dt.date], columns: list[str],
              extra_aggregations: Sequence = ()) -> tuple[dict[dt.date, PartitionMetrics], dict]:
    """The grouped aggregation (one Spark job): the plan's metrics per ds, and a Row of the
    extra aggregations' values per ds."""
    from pyspark.sql import Row
    from pyspark.sql import functions as F

    keys = list(plan.exprs)
    pct_cols = sorted(plan.percentiles)
    exprs = [F.expr(plan.exprs[k]).alias(f"__m{i}") for i, k in enumerate(keys)]
    for j, c in enumerate(pct_cols):
        ps = ", ".join(sql_lit(float(p)) for p in sorted(plan.percentiles[c]))
        k = MEDIAN_SKETCH_K if c in plan.median else PROFILE_SKETCH_K
        value = plan.value(c)
        exprs.append(F.expr(
            f"CASE WHEN count({value}) > 0 THEN kll_sketch_get_quantile_double("
            f"kll_sketch_agg_double(CAST({value} AS DOUBLE), {k}), array({ps})) END"
        ).alias(f"__q{j}"))
    if plan.flags:
        part = part.select("*", *[F.expr(condition).alias(name) for condition, name in plan.flags.items()])
    grouped = part.groupBy("ds").agg(*exprs, *extra_aggregations)
    extra_names = grouped.columns[1 + len(exprs):]
    rows = grouped.collect() if dates else []
    metrics = {d: PartitionMetrics(columns) for d in dates}
    extras = {d: Row(**{n: None for n in extra_names}) for d in dates} if extra_names else {}
    for row in rows:
        values = {k: row[f"__m{i}"] for i, k in enumerate(keys)}
        for j, c in enumerate(pct_cols):
            qs = row[f"__q{j}"]
            if qs is not None:
                values[("pct", c)] = dict(zip(sorted(plan.percentiles[c]), qs))
        metrics[row["ds"]] = PartitionMetrics(columns, values)
        if extra_names:
            extras[row["ds"]] = Row(**{n: row[n] for n in extra_names})
    return metrics, extras
