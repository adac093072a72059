"""Benchmark: what 100 models cost a night compared with 10, on the same feature table.

    .venv/bin/python benchmarks/models_scale.py [--models 10 100 --days 10 --rows 1000 --repeat 2]

A synthetic source (Parquet, ds=YYYY-MM-DD folders: DAYS days of ROWS rows, 4 shops, 8
numeric columns, a 0/1 label known one day later) in a temporary folder; one feature set
(features.yaml: the columns and two SQL features) and LARGE models (one YAML file each:
scikit-learn logistic regressions, feature subsets and train windows of 4 to 8 days that
differ from model to model, one in four segmented by shop, all daily). The SMALL project is
the same with only the first SMALL of those model files. Two figures:

  P3      Spark jobs of an ordinary night. A first night (engine.pipeline.run for DAYS - 2:
          every partition computed and validated, the SMALL models trained) builds the
          history once, not measured. Its lakehouse is copied twice and the SMALL and the
          LARGE project run the next night on a copy each (one new partition; the SMALL
          models have champions, the others train for the first time): identical tables,
          at paths this session has not read yet, as a nightly job in a fresh process reads
          them (delta-spark's Delta log cache is cold; the lakehouse a session has just
          written would save some snapshot jobs, for one of the two only). The jobs are
          those the run records store (`spark_jobs` of the run row: its stages' job groups
          and the run's own between them); the jobs the whole SparkContext started during
          pipeline.run are counted too (the job ids of a marker job before and after), so
          work outside the run's records (pipeline.run's checks before the night, table
          maintenance after it) shows as the difference.
          Target: LARGE / SMALL recorded jobs ~ 1 (<= 1.2).
  REDUCE  wall time of engine.training_sets.build_training_sets (one pass over the valid
          partitions, one Delta commit, one grouped count) for the first SMALL models and for
          all LARGE, on the LARGE lakehouse after its night: the same feature partitions and
          the excluded days the pipeline would pass. The sizes alternate (SMALL, LARGE,
          SMALL, LARGE, ...: --repeat each) and the fastest of each counts. Target:
          LARGE / SMALL <= 10 (the rows written grow ~10x: linear at worst).

Prints figures; asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import yaml  # noqa: E402

START = dt.date(2026, 3, 2)
SHOPS = 4
FEATURES = [f"f{i}" for i in range(8)]


def write_source(raw: Path, days: int, rows: int) -> None:
    """DAYS Parquet partitions ds=YYYY-MM-DD of ROWS rows each (pyarrow, no Spark)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    for i in range(days):
        day = START + dt.timedelta(days=i)
        cols = {"id": np.arange(i * rows, (i + 1) * rows, dtype=np.int64),
                "shop": np.array([f"s{k % SHOPS}" for k in range(rows)])}
        for j, name in enumerate(FEATURES):
            cols[name] = rng.random(rows) + 0.01 * j
        signal = cols["f0"] + 0.5 * cols["f3"] - 0.7 * cols["f5"] + 0.3 * cols["f7"] + rng.random(rows)
        cols["y"] = (signal > 1.05).astype(np.int32)
        folder = raw / f"ds={day.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table(cols), folder / "part-00000.parquet")


def write_conf(root: Path, raw: Path, models: int) -> Path:
    conf = root / "conf"
    (conf / "models").mkdir(parents=True)
    (conf / "project.yaml").write_text(yaml.safe_dump({
        "name": "bench-scale", "lakehouse": str(root / "lakehouse"),
        "sources": {"bench": {"format": "parquet", "path": str(raw)}},
    }))
    (conf / "features.yaml").write_text(yaml.safe_dump({"feature_sets": {"bench": {
        "source": "bench", "entity": ["id"], "columns": ["shop", *FEATURES],
        "features": {"f01": "f0 * f1", "f_sum": "f2 + f3 + f4"},
        "labels": {"y": {"expr": "y", "delay_days": 1}},
    }}}))
    subsets = [FEATURES[:4], FEATURES[2:6], FEATURES[4:] + ["f01"], FEATURES + ["f_sum"]]
    for m in range(models):
        spec = {
            "model_id": f"m{m:03d}", "feature_set": "bench", "features": subsets[m % len(subsets)], "label": "y",
            "task": "classification", "estimator": "sklearn.LogisticRegression", "params": {"max_iter": 200},
            "train_window_days": 4 + m % 5, "eval_window_days": 2, "refit": False, "metric": "auc",
            "min_rows": 50, "cadence": "daily",
        }
        if m % 4 == 1:
            spec["segment_by"] = "shop"
        (conf / "models" / f"m{m:03d}.yaml").write_text(yaml.safe_dump(spec))
    return conf


_MARKERS = iter(range(1 << 30))


def context_job_id(spark, marker: str) -> int:
    """The id of a tiny job run now (job ids count every job of the SparkContext)."""
    sc = spark.sparkContext
    marker = f"{marker}-{next(_MARKERS)}"
    sc.setJobGroup(marker, marker)
    try:
        sc.parallelize([0], 1).count()
        [job] = sc.statusTracker().getJobIdsForGroup(marker)
        return job
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)


def night(spark, cfg, day: dt.date) -> dict:
    """One pipeline.run for `day`; its stages' recorded jobs and seconds, and all jobs."""
    from engine import pipeline, tables
    from engine.catalog import Catalog

    before = context_job_id(spark, f"bench-before-{day}")
    t = time.perf_counter()
    [summary] = pipeline.run(spark, cfg, day)
    seconds = time.perf_counter() - t
    after = context_job_id(spark, f"bench-after-{day}")
    rows = [r for r in tables.read_rows(Catalog.of(cfg).runs).to_pylist() if r["run_id"] == summary.run_id]
    stages: dict[str, int] = {}
    stage_seconds: dict[str, float] = {}
    for r in sorted(rows, key=lambda r: r["started_at"]):
        stages[r["stage"]] = stages.get(r["stage"], 0) + (r["spark_jobs"] or 0)
        stage_seconds[r["stage"]] = stage_seconds.get(r["stage"], 0.0) + (r["seconds"] or 0.0)
    trained = sum(1 for m in summary.models if m.status in ("champion", "rejected"))
    return {"status": summary.status, "stages": stages, "recorded": stages.get("run", 0),
            "context": after - before - 1, "seconds": seconds, "stage_seconds": stage_seconds,
            "pairs": len(summary.models), "trained": trained}


def jobs_in(spark, group: str, fn):
    """(result, seconds, Spark jobs) of fn() run in job group `group` (the pipeline's counter)."""
    from engine.pipeline import _JobCounter

    counter = _JobCounter(spark, group, group)
    t = time.perf_counter()
    try:
        out = fn()
        seconds = time.perf_counter() - t
    finally:
        jobs = counter.stop()
    return out, seconds, jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, nargs=2, default=(10, 100), metavar=("SMALL", "LARGE"))
    ap.add_argument("--days", type=int, default=10, help="source days (the two nights are the last two)")
    ap.add_argument("--rows", type=int, default=1000, help="source rows per day")
    ap.add_argument("--repeat", type=int, default=2, help="REDUCE runs of each size, alternating; the fastest counts")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    small, large = args.models

    from engine.config import load_config
    from engine.spark import get_spark
    from engine.training_sets import build_training_sets
    from engine.validation import unusable_dates

    root = Path(tempfile.mkdtemp(prefix="retrain-bench-scale-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    spark = get_spark("models-scale", master=args.master, conf={
        "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8", "spark.python.worker.reuse": "true",
        "spark.driver.memory": "4g",
    })
    try:
        write_source(root / "raw", args.days, args.rows)
        first, second = START + dt.timedelta(days=args.days - 2), START + dt.timedelta(days=args.days - 1)
        base = load_config(write_conf(root / "history", root / "raw", small))
        history = night(spark, base, first)
        print(f"first night, {small} models ({history['status']}, {history['trained']} of {history['pairs']} pairs "
              f"trained, {history['seconds']:.1f} s, not measured): recorded jobs {history['recorded']}", flush=True)
        cfgs = {n: load_config(write_conf(root / f"models{n}", root / "raw", n)) for n in (small, large)}
        for cfg in cfgs.values():
            shutil.copytree(base.lakehouse, cfg.lakehouse)
        nights = {}
        for n in (small, large):
            r = nights[n] = night(spark, cfgs[n], second)
            print(f"{n:4d} models, ordinary night ({r['status']}, {r['trained']} of {r['pairs']} pairs trained, "
                  f"{r['seconds']:.1f} s): recorded jobs {r['recorded']}, all jobs of the context {r['context']}; "
                  "per stage: " + ", ".join(f"{k} {v} ({r['stage_seconds'][k]:.1f} s)"
                                            for k, v in r["stages"].items()), flush=True)

        # REDUCE on the LARGE lakehouse: the first SMALL models vs all LARGE, same partitions.
        cfg = cfgs[large]
        models = sorted(cfg.models.values(), key=lambda m: m.model_id)
        excluded = {"bench": unusable_dates(spark, cfg, "bench")}
        times: dict[int, list[float]] = {small: [], large: []}
        jobs: dict[int, int] = {}
        rows: dict[int, int] = {}
        for i in range(args.repeat):
            for n in (small, large):
                sets, seconds, count = jobs_in(spark, f"bench-reduce-{n}-{i}", lambda: build_training_sets(
                    spark, cfg, models[:n], second, f"bench-reduce-{n}-{i}", excluded))
                assert not sets.skipped, sets.skipped
                times[n].append(seconds)
                jobs[n], rows[n] = count, sum(sets.rows.values())
        best = {n: min(v) for n, v in times.items()}

        s_night, l_night = nights[small], nights[large]
        p3 = l_night["recorded"] / s_night["recorded"]
        p3_context = l_night["context"] / s_night["context"]
        print(f"source: {args.days} days x {args.rows} rows, {SHOPS} shops; Spark {args.master}; "
              f"models: LogisticRegression, train windows 4..8 days, one in four segmented by shop")
        print(f"P3 Spark jobs of the ordinary night, {large} / {small} models: recorded {l_night['recorded']} / "
              f"{s_night['recorded']} = {p3:.2f}; all jobs of the context {l_night['context']} / "
              f"{s_night['context']} = {p3_context:.2f} ({s_night['context'] - s_night['recorded']} and "
              f"{l_night['context'] - l_night['recorded']} outside the run's records)")
        for stage in l_night["stages"]:
            if stage != "run":
                print(f"   {stage:15} {s_night['stages'].get(stage, 0):4d} -> {l_night['stages'][stage]:4d}")
        print(f"REDUCE build_training_sets: {small} models {best[small]:.2f} s ({rows[small]} rows, {jobs[small]} "
              f"Spark jobs), {large} models {best[large]:.2f} s ({rows[large]} rows, {jobs[large]} Spark jobs); "
              f"runs: " + "; ".join(f"{n}: {', '.join(f'{x:.2f}' for x in v)}" for n, v in times.items()))
        print(f"REDUCE {large} / {small} models: {best[large] / best[small]:.2f} "
              f"(rows {rows[large] / rows[small]:.1f}x)")
        print("load average (1/5/15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        from report import emit

        emit("P3 REDUCE models scale", models=[small, large], p3=round(p3, 3), p3_context=round(p3_context, 3),
             jobs={str(n): {**nights[n]["stages"], "context": nights[n]["context"]} for n in (small, large)},
             night_s={str(n): round(nights[n]["seconds"], 2) for n in (small, large)},
             reduce=round(best[large] / best[small], 3), reduce_s={str(n): round(v, 3) for n, v in best.items()},
             reduce_rows={str(n): v for n, v in rows.items()}, reduce_jobs={str(n): v for n, v in jobs.items()})
    finally:
        spark.stop()
        if args.keep:
            print(f"kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
