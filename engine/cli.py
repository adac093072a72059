"""`retrain` command line. Logs go to stderr, summaries to stdout.

Exit codes (engine/exit_codes.py, shared with jobs/nightly.py): 0 success, 1 failure,
2 config or usage error, 3 finished but data-quality checks blocked something (a
quarantined partition or a model not retrained), 4 finished but some (model, segment)
pairs failed to train, 143 / 130 stopped by SIGTERM / SIGINT (recorded as a failed run).
"""
from __future__ import annotations

import datetime as dt
import getpass
import logging
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import RetrainError, UsageError
from engine.exit_codes import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK, error_label, exit_code, lost_spark
from engine.signals import Terminated, handle_termination

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="retrain: nightly, observable batch retraining on Spark.")
out = Console() if sys.stdout.isatty() else Console(width=160)  # logs: wide tables, no truncation
err = Console(stderr=True, soft_wrap=True)  # error messages never wrap mid-path
log = logging.getLogger("retrain")

ConfOpt = typer.Option(Path("conf"), "--conf", help="conf directory (project.yaml, features.yaml, models/)")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "great_expectations", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _date(value: Optional[str], name: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name}: expected a date YYYY-MM-DD, got {value!r}") from None


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Map engine errors to the documented exit codes."""
    try:
        yield
    except (RetrainError, Terminated) as e:
        # escaped: a message naming a type such as timestamp[us, tz=UTC] is not rich markup
        err.print(f"[red]{error_label(e)}:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(exit_code(error=e)) from e
    except Exception as e:
        text = lost_spark(e)
        if text is None:
            raise  # a bug: its traceback is what to report
        err.print(f"[red]failed:[/red] {escape(text)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from e


def _session(cfg):
    from engine import plugins
    from engine.spark import get_spark

    spark = get_spark(f"retrain-{cfg.project.name}", cfg.project.spark.master, cfg.project.spark.conf)
    plugins.ship(spark, cfg)  # the project's plugins reach the Python workers (predict, ...)
    return spark


@contextmanager
def _progress() -> Iterator:
    """A progress bar over the nights and stages of a run (stderr; stdout stays a summary)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)
        yield lambda message, fraction: bar.update(task, description=message, completed=fraction)


def _print_summaries(summaries) -> int:
    from engine.report import render_summary

    for summary in summaries:
        render_summary(out, summary)
    return exit_code(summaries=summaries)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    _setup_logging(verbose)


@app.command()
def run(conf: Path = ConfOpt,
        date: Optional[str] = typer.Option(None, help="logical date YYYY-MM-DD (default: yesterday, UTC)"),
        force: bool = typer.Option(False, help="recompute a date that was already processed"),
        backfill: bool = typer.Option(False, "--backfill",
                                      help="allow a --date before the last processed night (retrains on its window)")) -> None:
    """One nightly run for a logical date; catches up on missed nights in order."""
    from engine import pipeline
    from engine.config import load_config

    with _exit_codes():
        day = _date(date, "--date")
        cfg = load_config(conf)
        spark = _session(cfg)
        with handle_termination():
            with _progress() as progress:
                summaries = pipeline.run(spark, cfg, day, force=force, progress=progress, backfill=backfill)
            code = _print_summaries(summaries)
            _print_report(pipeline.write_report(spark, cfg))
    raise typer.Exit(code)


def _print_report(path: str | None) -> None:
    if path:
        out.print(f"report: {path}", highlight=False, soft_wrap=True)


@app.command()
def backfill(conf: Path = ConfOpt, start: Optional[str] = typer.Option(None, help="first ds YYYY-MM-DD"),
             end: Optional[str] = typer.Option(None, help="last ds YYYY-MM-DD"),
             feature_set: Optional[str] = typer.Option(
                 None, "--feature-set", help="only this feature set; without --start/--end every partition it has")) -> None:
    """Recompute (and re-validate) feature partitions from --start to --end, in one job."""
    from engine import pipeline
    from engine.config import load_config

    with _exit_codes():
        d1, d2 = _date(start, "--start"), _date(end, "--end")
        cfg = load_config(conf)
        spark = _session(cfg)
        with handle_termination(), _progress() as progress:
            summary = pipeline.backfill(spark, cfg, d1, d2, progress=progress, feature_set=feature_set)
        code = _print_summaries([summary])
    raise typer.Exit(code)


@app.command()
def validate(conf: Path = ConfOpt, date: Optional[str] = typer.Option(None, help="one ds YYYY-MM-DD"),
             start: Optional[str] = typer.Option(None, help="first ds of a range"),
             end: Optional[str] = typer.Option(None, help="last ds of a range")) -> None:
    """Run validation alone on computed feature partitions."""
    from engine import pipeline
    from engine.config import load_config

    with _exit_codes():
        if date and (start or end):
            raise UsageError("give either --date or --start/--end, not both")
        if date:
            d1 = d2 = _date(date, "--date")
        elif start and end:
            d1, d2 = _date(start, "--start"), _date(end, "--end")
        else:
            raise UsageError("give --date D or --start D1 --end D2")
        cfg = load_config(conf)
        spark = _session(cfg)
        with handle_termination(), _progress() as progress:
            summary = pipeline.validate(spark, cfg, d1, d2, progress=progress)
        code = _print_summaries([summary])
    raise typer.Exit(code)


@app.command()
def release(conf: Path = ConfOpt, table: str = typer.Option(..., help="features/<feature_set>"),
            ds: str = typer.Option(..., help="the partition's ds YYYY-MM-DD"),
            reason: str = typer.Option(..., help="why it is safe to use")) -> None:
    """Mark a quarantined partition valid (recorded with who, when and why)."""
    from engine import pipeline
    from engine.config import load_config

    with _exit_codes():
        day = _date(ds, "--ds")
        cfg = load_config(conf)
        spark = _session(cfg)
        with handle_termination():
            status = pipeline.release(spark, cfg, table, day, reason, getpass.getuser())
        out.print(f"released {table} ds={day}: {status.status} ({reason})", highlight=False)
    raise typer.Exit(EXIT_OK)


@app.command()
def status(conf: Path = ConfOpt, limit: int = typer.Option(10, help="runs to list")) -> None:
    """Recent runs, quarantined partitions, latest alerts and champions."""
    from engine.config import load_config
    from engine.report import render_status

    with _exit_codes():
        cfg = load_config(conf)
        spark = _session(cfg)
        render_status(out, spark, cfg, limit)
    raise typer.Exit(EXIT_OK)


@app.command()
def predict(conf: Path = ConfOpt, model: str = typer.Option(..., help="model_id"),
            input: str = typer.Option(..., "--input", help="Delta table or Parquet path to score"),
            output: str = typer.Option(..., "--output", help="where to write the scored rows")) -> None:
    """Score a table with the champions of a model (per segment, distributed)."""
    from engine.config import load_config
    from engine.predict import predict as score

    with _exit_codes():
        cfg = load_config(conf)
        if model not in cfg.models:
            raise UsageError(f"--model: unknown model {model!r}; expected one of {sorted(cfg.models)}")
        spark = _session(cfg)
        rows = score(spark, cfg, model, input, output)
        out.print(f"scored {rows} rows with {model} champions -> {output}", highlight=False)
    raise typer.Exit(EXIT_OK)


@app.command()
def demo(conf: Path = ConfOpt,
         end: Optional[str] = typer.Option(None, help="last demo day (default: yesterday, UTC)"),
         days: int = typer.Option(70, help="days of demo data"),
         seed: int = typer.Option(7, help="random seed"),
         nights: int = typer.Option(3, help="nightly runs to simulate, ending at --end")) -> None:
    """Generate the demo source into the conf's lakehouse (replacing it) and run nightly jobs."""
    from engine import pipeline
    from engine.config import load_config
    from engine.demo import describe_faults, generate, is_demo_lakehouse

    with _exit_codes():
        cfg = load_config(conf)
        last = _date(end, "--end") or pipeline.latest_complete_day()
        if nights < 1 or nights >= days:
            raise UsageError(f"--nights must be between 1 and {days - 1}, got {nights}")
        root = Path(cfg.lakehouse)
        if not is_demo_lakehouse(str(root)):
            raise UsageError(f"{root} exists and is not a demo lakehouse; point --conf at a demo config")
        if root.exists():
            shutil.rmtree(root)
        err.print(f"generating {days} days of demo data ending {last} into {root}/raw")
        faults = generate(str(root), last, days=days, seed=seed)
        spark = _session(cfg)
        first = last - dt.timedelta(days=nights - 1)
        with handle_termination(), _progress() as progress:
            summaries = pipeline.run(spark, cfg, first, progress=progress)
            summaries += pipeline.run(spark, cfg, last, progress=progress)
        code = _print_summaries(summaries)
        from engine.report import render_locations

        out.print("\n[bold]demo[/bold]: " + "\n".join(describe_faults(faults)), highlight=False)
        render_locations(out, cfg, str(conf))
        _print_report(pipeline.write_report(spark, cfg))
    # The demo's blocked partitions are the point of the demo: blocked (3) exits 0; others pass.
    raise typer.Exit(EXIT_OK if code == EXIT_BLOCKED else code)


@app.command()
def suggest(conf: Path = ConfOpt, feature_set: str = typer.Option(..., "--feature-set", help="a feature set of features.yaml"),
            out_path: Optional[str] = typer.Option(None, "--out", help="suite file (default: expectations/<feature_set>.json)"),
            force: bool = typer.Option(False, help="replace an existing suite file")) -> None:
    """Write a GX 1.x suite from the table's valid history (bounds that held) for review."""
    from engine.config import load_config
    from engine.validation.api import suggest as suggest_suite

    with _exit_codes():
        cfg = load_config(conf)
        path = suggest_suite(_session(cfg), cfg, feature_set, out=out_path, force=force)
        out.print(f"suggested suite: {path} (review it before keeping it)", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)


@app.command()
def report(conf: Path = ConfOpt,
           out_path: Optional[str] = typer.Option(None, "--out", help="HTML file (default: <lakehouse>/reports/latest.html + a dated copy)"),
           start: Optional[str] = typer.Option(None, help="first day (default: 28 days before --end)"),
           end: Optional[str] = typer.Option(None, help="last day (default: the latest logical date)"),
           column: list[str] = typer.Option([], "--column", help="also show this column's history (table:column)"),
           data_docs: bool = typer.Option(True, help="also build GX Data Docs for the validated partitions")) -> None:
    """Write the HTML report (runs, validation heatmap, column history, models) and GX Data Docs."""
    from engine.config import load_config
    from engine.report_html import write_report

    with _exit_codes():
        cfg = load_config(conf)
        path = write_report(_session(cfg), cfg, out=out_path, start=_date(start, "--start"),
                            end=_date(end, "--end"), columns=tuple(column), data_docs=data_docs)
        _print_report(path)
    raise typer.Exit(EXIT_OK)


if __name__ == "__main__":
    app()
