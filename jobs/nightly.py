"""spark-submit entry point for the nightly job (and backfills).

    spark-submit --master spark://HOST:7077 jobs/nightly.py --conf conf --date 2026-10-14
    spark-submit jobs/nightly.py --conf conf --backfill-start 2026-10-01 --backfill-end 2026-10-07

Thin on purpose: parse arguments, load config, call one engine function. Exit codes as the
CLI's (engine/exit_codes.py): 0 success, 1 failure, 2 config or usage error, 3 data-quality
checks blocked something, 4 some (model, segment) pairs failed to train, 143 / 130
stopped by SIGTERM / SIGINT (recorded as a failed run; the next run retries the night).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys

# Under spark-submit the repository root is not on sys.path; the engine may be installed
# (pip install .) or shipped with --py-files. Fall back to the checkout this file is in.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nightly.py", description="retrain nightly job")
    parser.add_argument("--conf", required=True, help="conf directory")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None,
                        help="logical date YYYY-MM-DD (default: yesterday, UTC)")
    parser.add_argument("--force", action="store_true", help="recompute a date already processed")
    parser.add_argument("--backfill", action="store_true",
                        help="allow a --date before the last processed night (retrains on its window)")
    parser.add_argument("--backfill-start", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--backfill-end", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--backfill-feature-set", default=None,
                        help="backfill only this feature set (without a range: every partition it has)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0

    from engine import pipeline
    from engine.config import load_config
    from engine.errors import RetrainError, UsageError
    from engine.exit_codes import error_label, exit_code, lost_spark
    from engine.report import render_summary
    from engine.signals import Terminated, handle_termination
    from engine.spark import get_spark
    from rich.console import Console

    console = Console()
    try:
        cfg = load_config(args.conf)
        spark = get_spark(f"retrain-{cfg.project.name}", cfg.project.spark.master, cfg.project.spark.conf)
        if (args.backfill_start is None) != (args.backfill_end is None):
            raise UsageError("--backfill-start and --backfill-end go together")
        with handle_termination():  # SIGTERM/SIGINT: recorded as a failed run, exit 143/130
            if args.backfill_start or args.backfill_feature_set:
                summaries = [pipeline.backfill(spark, cfg, args.backfill_start, args.backfill_end,
                                               feature_set=args.backfill_feature_set)]
            else:
                summaries = pipeline.run(spark, cfg, args.date, force=args.force, backfill=args.backfill)
                pipeline.write_report(spark, cfg)
    except (RetrainError, Terminated) as e:
        print(f"{error_label(e)}: {e}", file=sys.stderr)
        return exit_code(error=e)
    except Exception as e:
        text = lost_spark(e)
        if text is None:
            raise
        print(f"failed: {text}", file=sys.stderr)
        return 1
    for summary in summaries:
        render_summary(console, summary)
    return exit_code(summaries=summaries)


if __name__ == "__main__":
    sys.exit(main())
