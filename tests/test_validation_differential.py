"""Differential test: the engine's verdicts equal GX's own on the same partition.

For every expectation type the engine evaluates itself, random data (nulls, NaN, ±0.0, inf,
duplicates, strings, dates, empty and all-null partitions) and random kwargs (bounds,
strict flags, mostly, sets, regexes) are evaluated twice: by the engine (one grouped
aggregation over all partitions) and by GX's pandas engine on each partition's rows (as
Spark's Arrow conversion hands them over). Success and the whole GX result (observed_value,
element/unexpected/missing counts and percents) must agree.
"""
from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from engine.validation import exact, native
from engine.validation.evaluate import evaluate, supported_types
from engine.validation.gx_adapter import validate_pandas
from engine.validation.suites import parse_suite

SCHEMA = ("ds date, f double, i int, l bigint, s string, d date, ts timestamp, b boolean, "
          "nn double, e string")
COLUMNS = ["ds", "f", "i", "l", "s", "d", "ts", "b", "nn", "e"]
BASE = dt.date(2026, 3, 1)
WORDS = ["a", "b", "ab", "ba", "B", "", "x1", "a.b", "abc", "zz", "é", "a\\b", "it's"]
IGNORED = {"partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list"}


def _float(rng: random.Random) -> float | None:
    r = rng.random()
    if r < 0.12:
        return None
    if r < 0.2:
        return float("nan")
    if r < 0.23:
        return rng.choice([0.0, -0.0])
    if r < 0.24:
        return rng.choice([float("inf"), float("-inf")])
    return round(rng.gauss(10, 8), rng.choice([0, 1, 3]))


def make_rows(rng: random.Random, big: bool = False) -> tuple[list[tuple], list[dt.date]]:
    """Partitions: normal ones, an all-null one, a one-row one, and a date with no rows."""
    rows = []
    dates = [BASE + dt.timedelta(days=k) for k in range(5)]
    sizes = [rng.randint(20, 70), rng.randint(2, 40), rng.randint(10, 30), 1, 0]
    if big:
        sizes[0] = 24000  # larger than percentile_approx's exact range: exercises the median window
    for day, n in zip(dates, sizes):
        all_null = day == dates[2]
        for _ in range(n):
            f = None if all_null else _float(rng)
            i = None if (all_null or rng.random() < 0.1) else rng.randint(-3, 20)
            l_ = rng.randint(0, 10**12) if rng.random() < 0.5 else rng.randint(0, 50)
            s = None if (all_null or rng.random() < 0.1) else rng.choice(WORDS)
            d = None if rng.random() < 0.1 else BASE - dt.timedelta(days=rng.randint(0, 30))
            ts = None if rng.random() < 0.1 else dt.datetime(2026, 3, 1, rng.randint(0, 23), rng.randint(0, 59))
            b = None if rng.random() < 0.2 else rng.random() < 0.5
            e = None if rng.random() < 0.5 else rng.choice(["p", "q"])
            rows.append((day, f, i, l_, s, d, ts, b, None, e))
    return rows, dates


def _bounds(rng: random.Random, values: list, kind: str) -> dict:
    """Random min/max (sometimes one-sided, sometimes on a data value) and strict flags."""
    pool = [v for v in values if v is not None and not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))]
    if kind == "date":
        pick = lambda: (rng.choice(pool) if pool and rng.random() < 0.5  # noqa: E731
                        else BASE - dt.timedelta(days=rng.randint(-2, 32))).isoformat()
    else:
        pick = lambda: (rng.choice(pool) if pool and rng.random() < 0.5 else round(rng.uniform(-10, 40), 2))  # noqa: E731
    lo, hi = sorted([pick(), pick()])
    kw: dict = {"min_value": lo, "max_value": hi}
    r = rng.random()
    if r < 0.2:
        kw.pop("min_value")
    elif r < 0.4:
        kw.pop("max_value")
    if rng.random() < 0.3:
        kw["strict_min"] = True
    if rng.random() < 0.3:
        kw["strict_max"] = True
    return kw


def _mostly(rng: random.Random) -> dict:
    r = rng.random()
    if r < 0.4:
        return {}
    return {"mostly": rng.choice([1.0, 0.9, 0.5, 0.0, round(rng.random(), 3)])}


def make_expectations(rng: random.Random, rows: list[tuple], rounds: int = 1) -> list[dict]:
    col = {c: [r[k] for r in rows] for k, c in enumerate(COLUMNS)}
    exps: list[dict] = []

    def add(t: str, **kw):
        exps.append({"type": t, "kwargs": kw})

    for _ in range(rounds):
        for c in ["f", "i", "l", "s", "d", "ts", "b", "nn", "e"]:
            add("expect_column_values_to_not_be_null", column=c, **_mostly(rng))
            add("expect_column_values_to_be_null", column=c, **_mostly(rng))
        for c, kind in [("f", "num"), ("i", "num"), ("l", "num"), ("d", "date"), ("nn", "num")]:
            add("expect_column_values_to_be_between", column=c, **_bounds(rng, col[c], kind), **_mostly(rng))
        for c in ["s", "i", "f", "e"]:
            present = sorted({v for v in col[c] if v is not None and not (isinstance(v, float) and math.isnan(v))},
                             key=repr)
            subset = rng.sample(present, k=min(len(present), rng.randint(0, 4))) if present else []
            if c == "s":
                subset += rng.sample(["a", "zz", "nope"], k=1)
            elif c in ("i", "f"):
                subset += [rng.choice([1, 2.5, 0.0])]
            add("expect_column_values_to_be_in_set", column=c, value_set=subset, **_mostly(rng))
            add("expect_column_values_to_not_be_in_set", column=c, value_set=subset, **_mostly(rng))
        add("expect_column_values_to_be_in_set", column=rng.choice(["s", "f"]), value_set=[], **_mostly(rng))
        add("expect_column_values_to_not_be_in_set", column=rng.choice(["s", "i"]), value_set=[], **_mostly(rng))
        for c in ["f", "i", "l", "s", "d", "e"]:
            add("expect_column_values_to_be_unique", column=c, **_mostly(rng))
        for regex in ["^a", "b$", "^[ab]+$", r"\d", "^$", r"\.", "(?i)^B", r"a\\b", "'"]:
            add("expect_column_values_to_match_regex", column=rng.choice(["s", "e"]), regex=regex, **_mostly(rng))
        for t in ["expect_column_min_to_be_between", "expect_column_max_to_be_between",
                  "expect_column_mean_to_be_between", "expect_column_stdev_to_be_between",
                  "expect_column_median_to_be_between"]:
            for c in ["f", "i", "l", "nn"]:
                kw = _bounds(rng, col[c] if t in ("expect_column_min_to_be_between", "expect_column_max_to_be_between",
                                                  "expect_column_median_to_be_between") else [], "num")
                if t == "expect_column_stdev_to_be_between":
                    kw = {k: abs(v) if isinstance(v, float) else v for k, v in kw.items()}
                    if kw.get("min_value", 0) > kw.get("max_value", math.inf):
                        kw["min_value"], kw["max_value"] = kw["max_value"], kw["min_value"]
                add(t, column=c, **kw)
        for c in ["s", "i", "f", "d", "e"]:
            lo = rng.randint(0, 8)
            add("expect_column_unique_value_count_to_be_between", column=c, min_value=lo, max_value=lo + rng.randint(0, 20))
            p = round(rng.random(), 2)
            add("expect_column_proportion_of_unique_values_to_be_between", column=c, min_value=p,
                max_value=min(1.0, p + round(rng.random(), 2)))
        lo = rng.randint(0, 40)
        add("expect_table_row_count_to_be_between", min_value=lo, max_value=lo + rng.randint(0, 40))
        add("expect_table_row_count_to_be_between", min_value=rng.randint(0, 2))
        add("expect_table_columns_to_match_set", column_set=rng.sample(COLUMNS + ["zz"], k=rng.randint(1, 11)),
            exact_match=rng.random() < 0.5)
        add("expect_table_columns_to_match_set", column_set=list(COLUMNS))
        add("expect_column_to_exist", column=rng.choice(COLUMNS + ["zz"]))
        add("expect_column_to_exist", column=rng.choice(COLUMNS), column_index=rng.randint(0, 10))
    return exps


def _same(a, b, path="") -> list[str]:
    """Differences between two GX result values (numbers compared to 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - IGNORED
        return [d for k in sorted(keys) for d in _same(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {a!r} != {b!r}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _same(x, y, f"{path}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def run_differential(spark, seed: int, big: bool = False) -> tuple[int, set[str], int]:
    rng = random.Random(seed)
    rows, dates = make_rows(rng, big)
    exps = make_expectations(rng, rows)
    suite = parse_suite({"name": f"diff{seed}", "expectations": exps})
    df = spark.createDataFrame(rows, SCHEMA)
    got = evaluate(spark, df, suite, dates, profile=False)
    mismatches, types = [], set()
    for d in dates:
        pdf = df.where(df.ds == d).toPandas()
        reference = validate_pandas(pdf, [c.as_json() for c in suite.checks])
        for check, mine, ref in zip(suite.checks, got.outcomes[d], reference):
            if mine.engine != "native":
                continue
            types.add(check.type)
            diffs = _same(mine.result, ref["result"], "result")
            if mine.success != ref["success"]:
                diffs.insert(0, f"success {mine.success} != GX {ref['success']}")
            if (mine.exception is None) != (ref["exception"] is None):
                diffs.append(f"exception {mine.exception!r} != GX {ref['exception']!r}")
            if diffs:
                mismatches.append(f"ds={d} #{check.index} {check.type} {check.kwargs}: " + "; ".join(diffs))
    assert not mismatches, f"{len(mismatches)} differences from GX:\n" + "\n".join(mismatches[:30])
    return len(suite.checks), types, got.jobs


@pytest.mark.parametrize("seed", [1, 2])
def test_engine_equals_gx_on_random_partitions(spark, seed):
    n, types, jobs = run_differential(spark, seed)
    assert n > 75
    # every natively supported type was compared (none silently went to GX)
    assert types == set(supported_types())


def test_engine_equals_gx_with_a_partition_beyond_exact_percentiles(spark):
    """24 000 rows in one partition: percentile_approx is approximate there, so the exact
    median comes from the value window around it."""
    _, types, jobs = run_differential(spark, 7, big=True)
    assert "expect_column_median_to_be_between" in types
    assert jobs == 2  # aggregation, exact pass (value counts + median window): the sketch's bracket held


def test_exact_median_fallback_when_the_window_misses(spark, monkeypatch):
    """With a zero-width window the middle ranks are outside it for even counts; the exact
    percentile job must still give GX's median."""
    monkeypatch.setattr(native, "MEDIAN_WINDOW", 0.0)
    rows = [(BASE, float(v), None, None, None, None, None, None, None, None) for v in [5, 1, 9, 3, 7, 2]]
    rows += [(BASE + dt.timedelta(days=1), float(v), None, None, None, None, None, None, None, None) for v in [4, 8]]
    df = spark.createDataFrame(rows, SCHEMA)
    suite = parse_suite({"name": "m", "expectations": [
        {"type": "expect_column_median_to_be_between", "kwargs": {"column": "f", "min_value": 0, "max_value": 10}}]})
    got = evaluate(spark, df, suite, [BASE, BASE + dt.timedelta(days=1)], profile=False)
    assert got.outcomes[BASE][0].result["observed_value"] == 4.0  # (3 + 5) / 2
    assert got.outcomes[BASE + dt.timedelta(days=1)][0].result["observed_value"] == 6.0
    assert got.jobs == 3  # aggregation, exact pass with the value window, exact percentile


def test_median_from_window():
    med = exact.median_from_window
    assert med(5, 1, [(2.0, 1), (3.0, 2), (4.0, 1)]) == 3.0  # ranks 1..4, middle rank 2
    assert med(4, 0, [(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)]) == 2.5
    assert med(4, 0, [(7.0, 4)]) == 7.0  # ties
    assert med(4, 2, [(3.0, 2)]) is None  # middle ranks 1 and 2: rank 1 is below the window
    assert med(0, 0, []) is None


def test_other_types_run_through_gx_itself(spark):
    """Types / column types the engine does not aggregate are validated by GX on each
    partition (inside applyInPandas; on the driver for an empty partition)."""
    rng = random.Random(5)
    rows, dates = make_rows(rng)
    exps = [
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "s", "min_value": 1, "max_value": 2}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "d", "value_set": ["2026-02-20"]}},
        {"type": "expect_column_min_to_be_between", "kwargs": {"column": "d", "min_value": "2026-02-01"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "i", "min_value": 0, "max_value": 10, "row_condition": 'l>5', "condition_parser": "pandas"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "(?P<x>a)"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "f"}},  # native, for contrast
    ]
    suite = parse_suite({"name": "fb", "expectations": exps})
    df = spark.createDataFrame(rows, SCHEMA)
    got = evaluate(spark, df, suite, dates, profile=False)
    assert got.gx_types == sorted({e["type"] for e in exps[:5]})
    for d in dates:
        reference = validate_pandas(df.where(df.ds == d).toPandas(), exps)
        engines = [o.engine for o in got.outcomes[d]]
        assert engines == ["gx"] * 5 + ["native"]
        for mine, ref in zip(got.outcomes[d], reference):
            assert mine.success == ref["success"]
            assert not _same(mine.result, ref["result"])
