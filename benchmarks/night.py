"""Benchmark: one ordinary night of the demo project vs its floor.

    .venv/bin/python benchmarks/night.py [--days 31 --end 2026-10-21 --warmup 0 --repeat 2]

The demo project (the repository's conf/ and expectations/, its plugin retrain_demo) over
DAYS days of demo data (engine.demo.generate; without its injected faults unless --faults:
the measured day is clean either way, and the faults only make the warm-up night longer)
ending at END, in a temporary folder:

  warm-up   pipeline.run for END - 1 - WARMUP: the first night computes, validates and
            trains on every source day up to it, not timed. It is the warm-up night: it
            starts the JVM and the Python workers (imports, xgboost) and runs every stage's
            code once, so the measured night pays neither the JVM's start nor a first
            import. --warmup N adds N ordinary nights after it, not timed either.
  night     pipeline.run for END, timed: one new source day; features (rolling windows,
            as-of join), validation (suite + learned checks), REDUCE, TRAIN (grid search,
            refit, champion scoring, artifacts), registry, the run records, the nightly
            sweep and table maintenance: all that engine.pipeline.run does. Not the HTML
            report `retrain run` writes after it.
  floor     what that night cannot do without: a plain Spark scan of END's source data
            (raw/orders ds=END and raw/weather ds=END, every column, a noop write) plus the
            very same fits (engine.training.fit.fit_pair of every (model, segment) pair the
            night trained, with the same champions to score) called one after the other in
            this one warm Python process, on pandas frames prepared beforehand (not timed)
            from the night's own training rows. The floor runs --repeat times (the first
            also warms this process's imports) and the fastest counts.

With the default END (a Wednesday) and 31 days (the fewest for late_delivery's 28-day
window and 2-day label delay to be full on the warm-up night) the warm-up and measured nights
train the same model: late_delivery (daily, one XGBoost per region, 4-point grid + refit);
delivery_time trains on Mondays and Thursdays only. The measured night runs in the session
that ran the warm-up night, so it also finds delta-spark's Delta log cache warm (a nightly
job in a fresh process would not). Target: night / floor <= 5. Prints figures; asserts
nothing about speed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def project(root: Path) -> Path:
    """The demo's conf/ and expectations/ under `root` (lakehouse: root/lakehouse)."""
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "expectations", root / "expectations")
    return root / "conf"


def stage_rows(cfg, run_id: str) -> list[dict]:
    from engine import tables
    from engine.catalog import Catalog

    rows = [r for r in tables.read_rows(Catalog.of(cfg).runs).to_pylist() if r["run_id"] == run_id]
    return sorted(rows, key=lambda r: r["started_at"])


def champions_before(spark, cfg, models, version: str) -> dict:
    """(model_id, segment) -> ChampionRef: what train_models compares the night's models with,
    read before the night (the same rule: engine.training.train._baseline)."""
    from engine import registry
    from engine.catalog import Catalog
    from engine.training.fit import ChampionRef
    from engine.training.train import _baseline

    cat = Catalog.of(cfg)
    wanted = {m.model_id for m in models}
    by_pair: dict = {}
    for e in registry.entries(spark, cfg):
        if e.model_id in wanted:
            by_pair.setdefault(e.key, []).append(e)
    out = {}
    for pair, entries in by_pair.items():
        baseline, _ = _baseline(entries, version)
        if baseline is not None and baseline.artifact_uri:
            out[pair] = ChampionRef(baseline.version, registry.artifact(cat, baseline), baseline.sha256)
    return out


def floor_frames(spark, cfg, models, day: dt.date, scratch: Path, champions: dict) -> list[tuple]:
    """(frame, segment, plan, champion) of every pair, as the training job hands them to
    fit_pair (engine.training.train._trainer): the night's training rows, rebuilt for `day`
    (same rows: same partitions, windows and exclusions), artifacts written under `scratch`."""
    from pyspark.sql import functions as F

    from engine.catalog import Catalog
    from engine.projection import map_value
    from engine.training.train import make_plans, pair_frame
    from engine.training_sets import build_training_sets, read_training_set
    from engine.validation import unusable_dates

    excluded = {name: unusable_dates(spark, cfg, name) for name in {m.feature_set for m in models}}
    sets = build_training_sets(spark, cfg, models, day, "bench-floor", excluded)
    plans = {k: replace(p, catalog=Catalog(str(scratch)))
             for k, p in make_plans(cfg, models, day, "bench-floor", sets, None).items()}
    frames = []
    for model_id, plan in sorted(plans.items()):
        columns = {(name, plan.feature_types[name]): name for name in plan.model.features}
        pdf = (read_training_set(spark, cfg, [model_id], sets.version)
               .select("segment", F.col("split").alias("_split"), "label", F.unix_date("ds").alias("_day"),
                       F.xxhash64("row_key").alias("_key"),
                       *[map_value(name, kind).alias(name) for (name, kind) in columns])
               .toPandas())
        for segment, part in pdf.groupby("segment", sort=True):
            frames.append((pair_frame(part, plan, columns), segment, plan, champions.get((model_id, segment))))
    return frames


def source_frames(spark, cfg, day: dt.date) -> dict:
    """source name -> a DataFrame of `day`'s source partition (every column)."""
    from engine import tables

    out = {}
    for name, source in cfg.project.sources.items():
        path = cfg.resolve(source.path)
        out[name] = (spark.read.parquet(os.path.join(path, f"ds={day.isoformat()}")) if source.format == "parquet"
                     else tables.read(spark, path, partitions=[day]))
    return out


def scan_source(spark, cfg, day: dt.date) -> None:
    """Every column of `day`'s source partitions read by Spark (a noop write each), nothing more."""
    for df in source_frames(spark, cfg, day).values():
        df.write.format("noop").mode("overwrite").save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=31, help="days of demo data ending at --end")
    ap.add_argument("--end", default="2026-10-21", help="the measured night (default: a Wednesday)")
    ap.add_argument("--warmup", type=int, default=0, help="ordinary nights after the first, before the measured one")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--faults", action="store_true",
                    help="inject the demo's faults (the warm-up night then also recomputes their dependents)")
    ap.add_argument("--repeat", type=int, default=2, help="floor runs; the fastest counts")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    end = dt.date.fromisoformat(args.end)

    from engine import pipeline, tables
    from engine.config import load_config
    from engine.demo import generate
    from engine.spark import get_spark
    from engine.training.fit import fit_pair
    from engine.training.train import model_version

    root = Path(tempfile.mkdtemp(prefix="retrain-bench-night-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    cfg = load_config(project(root))
    spark = get_spark("night", master=args.master, conf={**cfg.project.spark.conf, "spark.ui.enabled": "false"})
    try:
        generate(cfg.lakehouse, end, days=args.days, seed=args.seed, faults=args.faults)
        warm = []
        for i in range(args.warmup + 1):
            t = time.perf_counter()
            [summary] = pipeline.run(spark, cfg, end - dt.timedelta(days=1 + args.warmup - i))
            warm.append((summary, time.perf_counter() - t))

        due = [m for m in cfg.models.values() if m.due(end)]
        champions = champions_before(spark, cfg, due, model_version(end))
        t = time.perf_counter()
        [summary] = pipeline.run(spark, cfg, end)
        t_night = time.perf_counter() - t
        stages = stage_rows(cfg, summary.run_id)
        trained = [o for o in summary.models if o.status in ("champion", "rejected")]

        frames = floor_frames(spark, cfg, due, end, root / "lakehouse_floor", champions)
        scans, fits = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            scan_source(spark, cfg, end)
            scans.append(time.perf_counter() - t)
            t = time.perf_counter()
            results = [fit_pair(frame, segment, plan, champion) for frame, segment, plan, champion in frames]
            fits.append(time.perf_counter() - t)
            failed = [r for r in results if not r.trained]
            assert not failed, [(r.model_id, r.segment, r.reason) for r in failed]
        t_scan, t_fits = min(scans), min(fits)
        rows = source_frames(spark, cfg, end)["orders"].count()  # for the printout, not timed
        floor = t_scan + t_fits

        print(f"demo project: {args.days} days of demo data ending {end} ({end:%A}); Spark {args.master}, "
              f"backend {tables.backend_name(spark)}")
        print("warm-up nights (not timed): " + ", ".join(
            f"{s.logical_date} {t:.1f} s ({s.status}{', every partition' if i == 0 else ''})"
            for i, (s, t) in enumerate(warm)))
        in_stages = sum(r["seconds"] or 0 for r in stages if r["stage"] != "run")
        print(f"night {end}: {t_night:.1f} s ({summary.status}; {len(trained)} pairs trained of "
              f"{len(summary.models)}; {sum(r['spark_jobs'] or 0 for r in stages if r['stage'] != 'run')} Spark jobs "
              f"in its stages); stages: " + ", ".join(f"{r['stage']} {r['seconds']:.1f} s" for r in stages
                                                     if r["stage"] != "run")
              + f"; outside the stages (checks, lock, sweep, table maintenance): {t_night - in_stages:.1f} s")
        print(f"floor: scan of {end}'s source ({rows} orders + weather) {t_scan:.2f} s + {len(frames)} fit_pair "
              f"calls in this process {t_fits:.2f} s = {floor:.2f} s; runs: scan "
              + ", ".join(f"{x:.2f}" for x in scans) + "; fits " + ", ".join(f"{x:.2f}" for x in fits))
        print(f"fit time inside the night's training job (summed over executors) is not recorded; "
              f"models due: {', '.join(m.model_id for m in due)}")
        print("load average (1/5/15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"ratio night / floor: {t_night / floor:.2f}")
        from report import emit

        emit("P5 night", ratio=round(t_night / floor, 3), night_s=round(t_night, 2), floor_s=round(floor, 2),
             scan_s=round(t_scan, 3), fits_s=round(t_fits, 3), pairs=len(frames),
             warmup_s=[round(t, 2) for _, t in warm],
             stages_s={r["stage"]: r["seconds"] for r in stages}, days=args.days, end=str(end))
    finally:
        spark.stop()
        if args.keep:
            print(f"kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
