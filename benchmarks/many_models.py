"""Benchmark: many (model, segment) pairs trained by the engine vs the same fits in one process.

    .venv/bin/python benchmarks/many_models.py [--models 4 --segments 50 --rows 5000 --trees 50]

Builds a synthetic feature table (a Delta table in a temporary lakehouse), the training sets
of MODELS models segmented by SEGMENTS shops (MODELS x SEGMENTS pairs, ROWS rows each), then:

  engine  train_models(): one Spark job (applyInPandas) fits every pair, writes artifacts,
          then one registry commit: wall time.
  loop    the very same per-pair function (engine.training.fit.fit_pair: checks, grid,
          refit, metrics, artifact) called pair after pair in this process, on pandas frames
          prepared beforehand (not timed).

Engine and loop runs alternate (--repeat, default 3) and the fastest of each counts, so a
busy machine distorts the ratio less.

Prints the engine's wall time as a ratio to loop / cores (the ideal on those cores) and the
overhead per pair in ms. Prints figures; asserts nothing about speed.
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

START = dt.date(2026, 1, 1)


def write_conf(root: Path, models: int, trees: int, days: int) -> Path:
    conf = root / "conf"
    (conf / "models").mkdir(parents=True)
    features = [f"f{i}" for i in range(8)]
    (conf / "project.yaml").write_text(yaml.safe_dump({
        "name": "bench", "lakehouse": str(root / "lakehouse"),
        "sources": {"bench": {"format": "parquet", "path": str(root / "raw")}},
    }))
    (conf / "features.yaml").write_text(yaml.safe_dump({"feature_sets": {"bench": {
        "source": "bench", "entity": ["id"], "columns": ["shop", *features],
        "labels": {"y": {"expr": "y", "delay_days": 0}},
    }}}))
    subsets = [features[:4], features[2:6], features[4:], features]
    for m in range(models):
        (conf / "models" / f"m{m}.yaml").write_text(yaml.safe_dump({
            "model_id": f"m{m}", "feature_set": "bench", "features": subsets[m % len(subsets)], "label": "y",
            "task": "classification", "estimator": "xgboost.XGBClassifier",
            "params": {"n_estimators": trees, "max_depth": 4}, "segment_by": "shop",
            "train_window_days": days, "eval_window_days": 2, "refit": False, "metric": "auc", "min_rows": 50,
        }))
    return conf


def write_features(spark, cfg, segments: int, rows: int, days: int) -> None:
    from pyspark.sql import functions as F

    from engine import tables
    from engine.catalog import Catalog

    per_day = segments * rows // days
    df = spark.range(segments * rows).select(
        F.col("id"),
        F.format_string("s%03d", (F.col("id") % segments).cast("int")).alias("shop"),
        *[F.rand(seed=i).alias(f"f{i}") for i in range(8)],
        F.date_add(F.lit(START), (F.col("id") / per_day).cast("int")).alias("ds"),
    )
    signal = F.col("f0") + 0.5 * F.col("f3") - 0.7 * F.col("f5") + 0.3 * F.col("f7") + F.rand(seed=99)
    df = df.withColumn("y", (signal > 1.05).cast("int"))
    tables.write(spark, df, Catalog.of(cfg).features("bench"), partition_by=["ds"])


def _calibration_fits(_) -> float:
    """ms per fit_pair of a fixed synthetic pair (5000 rows, XGBoost 50 trees), in this process."""
    import numpy as np
    import pandas as pd

    from engine.catalog import Catalog
    from engine.config import ModelConfig
    from engine.records import Lineage, Window
    from engine.training.estimators import get_estimator
    from engine.training.fit import ModelPlan, fit_pair

    m = ModelConfig(model_id="cal", feature_set="b", features=[f"f{i}" for i in range(4)], label="y",
                    task="classification", estimator="xgboost.XGBClassifier",
                    params={"n_estimators": 50, "max_depth": 4}, train_window_days=10, eval_window_days=2,
                    metric="auc", refit=False)
    window = Window(START, START + dt.timedelta(days=7), START + dt.timedelta(days=8), START + dt.timedelta(days=9))
    root = tempfile.mkdtemp(prefix="retrain-cal-")
    plan = ModelPlan(m, get_estimator(m.estimator), {f"f{i}": "numeric" for i in range(4)}, "v0", "cal",
                     START, Catalog(root), Lineage("cal", "training_sets", 0, "b", "features/b", 0, None, window))
    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({f"f{i}": rng.random(5000) for i in range(4)})
    pdf["label"] = (pdf.f0 + rng.random(5000) > 1).astype(float)
    pdf["split"] = np.where(np.arange(5000) < 4000, "train", "eval")
    fit_pair(pdf, "s", plan, None)
    t = time.perf_counter()
    for _ in range(20):
        fit_pair(pdf, "s", plan, None)
    shutil.rmtree(root, ignore_errors=True)
    return 1000 * (time.perf_counter() - t) / 20


def available_speedup(spark, cores: int) -> tuple[float, float, float]:
    """What `cores` concurrent Python workers get right now: the same fits in 1 task, then in
    `cores` tasks at once. Returns (ms alone, ms each when concurrent, speedup)."""
    sc = spark.sparkContext
    alone = sc.parallelize([0], 1).map(_calibration_fits).collect()[0]
    together = sc.parallelize(range(cores), cores).map(_calibration_fits).collect()
    each = sum(together) / len(together)
    return alone, each, cores * alone / each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--rows", type=int, default=5000, help="rows per (model, segment) pair")
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=3, help="engine and loop runs, alternating; the minimum counts")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lakehouse")
    args = ap.parse_args()

    from dataclasses import replace

    from engine.catalog import Catalog
    from engine.config import load_config
    from engine.spark import get_spark
    from engine.training import train_models
    from engine.training.fit import fit_pair
    from engine.training.train import make_plans, run_job
    from engine.training_sets import build_training_sets, read_training_set

    root = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    spark = get_spark("many-models", master=args.master, conf={
        "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8", "spark.python.worker.reuse": "true",
        "spark.driver.memory": "4g",
    })
    cores = spark.sparkContext.defaultParallelism
    try:
        cfg = load_config(write_conf(root, args.models, args.trees, args.days))
        models = list(cfg.models.values())
        logical = START + dt.timedelta(days=args.days - 1)
        t = time.perf_counter()
        write_features(spark, cfg, args.segments, args.rows, args.days)
        t_features = time.perf_counter() - t

        t = time.perf_counter()
        sets = build_training_sets(spark, cfg, models, logical, "bench", {})
        t_sets = time.perf_counter() - t
        pairs = len(sets.pairs)

        # Warm the Python workers (interpreter + xgboost import), as a long-lived cluster would be.
        def warm(batches):
            import pandas as pd
            import xgboost  # noqa: F401

            from engine.training import fit  # noqa: F401

            for b in batches:
                yield pd.DataFrame({"id": b["id"]})

        spark.range(cores * 4).repartition(cores).mapInPandas(warm, "id long").collect()

        # The same fits in one process: identical pandas input, identical per-pair function.
        plans = make_plans(cfg, models, logical, "bench", sets, None)
        loop_plans = {k: replace(p, catalog=Catalog(str(root / "lakehouse_loop"))) for k, p in plans.items()}
        frames = []
        import pandas as pd

        for model_id, plan in loop_plans.items():
            pdf = read_training_set(spark, cfg, [model_id], sets.version).toPandas()
            for segment, part in pdf.groupby("segment"):
                data = {"split": part["split"].to_numpy(), "label": part["label"].to_numpy()}
                for name in plan.model.features:
                    data[name] = [dict(f).get(name) for f in part["features"]]
                frames.append((pd.DataFrame(data), segment, plan))

        # Engine and loop alternate, so both see the same background load; min of the repeats.
        engine_times, loop_times, failed = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            outcomes = train_models(spark, cfg, models, logical, "bench", sets, None)
            engine_times.append(time.perf_counter() - t)  # a re-run of the date: same work
            failed = [o for o in outcomes if o.status == "failed"]
            t = time.perf_counter()
            for frame, segment, plan in frames:
                result = fit_pair(frame, segment, plan, None, threads=1)
                assert result.trained, result.reason
            loop_times.append(time.perf_counter() - t)
        t_engine, t_loop = min(engine_times), min(loop_times)

        cal_alone, cal_each, speedup = available_speedup(spark, cores)

        # Breakdown: the Spark job alone (no registry), and the fit time measured inside it.
        job_plans = {k: replace(p, catalog=Catalog(str(root / "lakehouse_job"))) for k, p in plans.items()}
        t = time.perf_counter()
        results = run_job(spark, cfg, job_plans, sets, {})
        t_job = time.perf_counter() - t
        fit_seconds = sum(r.seconds for r in results)

        ideal = t_loop / cores
        print(f"pairs: {pairs} ({args.models} models x {args.segments} segments), {args.rows} rows each, "
              f"XGBClassifier {args.trees} trees; Spark {args.master}, cores used: {cores}")
        print(f"feature table write: {t_features:.1f} s; training sets (one pass, one commit): {t_sets:.1f} s")
        print(f"engine train_models (one Spark job + registry commit): {t_engine:.1f} s "
              f"({1000 * t_engine / pairs:.0f} ms/pair wall); failed pairs: {len(failed)}; "
              f"runs: {', '.join(f'{x:.1f}' for x in engine_times)} s")
        print(f"  the Spark job alone (one more run, no registry): {t_job:.1f} s; time inside fit_pair summed "
              f"over the executors: {fit_seconds:.1f} s")
        print(f"same fits in one process: {t_loop:.1f} s ({1000 * t_loop / pairs:.0f} ms/pair on one core); "
              f"runs: {', '.join(f'{x:.1f}' for x in loop_times)} s")
        print(f"ideal on {cores} cores = loop / cores: {ideal:.1f} s")
        print("load average (1/5/15 min) at the end: " + " ".join(f"{x:.1f}" for x in os.getloadavg())
              + "  (anything else running inflates the engine more than the loop)")
        print(f"ratio engine / ideal: {t_engine / ideal:.2f}")
        print(f"calibration: a fixed fit takes {cal_alone:.0f} ms in one task, {cal_each:.0f} ms in each of {cores} "
              f"tasks at once: the machine gives a parallel speedup of {speedup:.2f} now ({cores} = idle); "
              f"engine / (loop / that speedup) = {t_engine / (t_loop / speedup):.2f}")
        print(f"overhead per pair: {1000 * (t_engine - ideal) / pairs:.1f} ms wall "
              f"({1000 * (t_engine * cores - t_loop) / pairs:.1f} ms of core time)")
        from report import emit

        emit("P2 many models", pairs=pairs, rows=args.rows, trees=args.trees, ratio=round(t_engine / ideal, 3),
             overhead_ms_per_pair=round(1000 * (t_engine - ideal) / pairs, 1), engine_s=round(t_engine, 2),
             loop_s=round(t_loop, 2), cores=cores)
    finally:
        spark.stop()
        if args.keep:
            print(f"lakehouse kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
