"""Human-readable run summaries and `retrain status`, rendered with rich."""
from __future__ import annotations

import datetime as dt
import json
import os

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine import catalog
from engine.config import Config
from engine.observability import RunSummary

STATUS_STYLE = {"success": "green", "blocked": "yellow", "partial": "red", "failed": "red", "skipped": "dim",
                "waiting": "dim", "rejected": "yellow", "champion": "green"}


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def render_summary(console: Console, summary: RunSummary) -> None:
    console.print(f"\n[bold]run {summary.run_id}[/bold]  logical date {summary.logical_date}  "
                  f"{_styled(summary.status)}  {summary.duration_seconds:.1f}s", highlight=False)
    if summary.stages:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("stage", "status", "seconds", "rows", "detail"):
            table.add_column(col)
        for s in summary.stages:
            if s.stage == "run":
                continue
            rows = s.rows_out if s.rows_out is not None else s.rows_in
            table.add_row(s.stage, _styled(s.status), f"{s.duration_seconds:.1f}",
                          "" if rows is None else str(rows), escape(s.error or s.detail or ""))
        console.print(table)
    for warning in summary.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    for tbl, dates in summary.quarantined.items():
        console.print(f"[yellow]quarantined[/yellow] {tbl}: {', '.join(d.isoformat() for d in dates)}",
                      highlight=False, soft_wrap=True)
    for alert in summary.validation_failures:
        # escaped: rich would read `entity [idNum]` as a style tag and print `entity  has ...`
        console.print(f"  [yellow]alert[/yellow] {escape(alert.message)}" + (" (warn)" if alert.severity == "warn" else ""),
                      highlight=False, soft_wrap=True)
    if summary.models:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("model", "segment", "result", "metric", "new", "champion", "reason"):
            table.add_column(col)
        for m in summary.models:
            table.add_row(m.model_id, m.segment, _styled(m.status), m.metric or "", _num(m.value),
                          _num(m.champion_value), m.reason or "")
        console.print(table)
    for note in summary.notes:
        console.print(f"  note: {note}", highlight=False)


def _num(value) -> str:
    return "" if value is None else f"{value:.4f}"


def render_status(console: Console, spark, cfg: Config, limit: int) -> None:
    from engine import tables

    console.print(f"[bold]lakehouse[/bold] {cfg.lakehouse}", highlight=False)
    runs = tables.read_rows(catalog.Catalog.of(cfg).runs, spark=spark)
    if runs is None:
        console.print("no runs yet")
        return
    rows = [r for r in runs.to_pylist() if r["stage"] == "run"]
    rows.sort(key=lambda r: r["started_at"], reverse=True)
    table = Table(title="recent runs", show_header=True, header_style="bold", box=None, title_justify="left")
    for col in ("run_id", "logical date", "status", "started", "seconds", "error"):
        table.add_column(col)
    for r in rows[:limit]:
        seconds = (r["ended_at"] - r["started_at"]).total_seconds() if r["ended_at"] else None
        table.add_row(r["run_id"], str(r["logical_date"]), _styled(r["status"]),
                      f"{r['started_at']:%Y-%m-%d %H:%M:%S}", "" if seconds is None else f"{seconds:.1f}",
                      (r["error"] or "")[:80])
    console.print(table)
    _render_partitions(console, spark, cfg)
    _render_alerts(console, cfg, rows[0]["run_id"] if rows else None)
    _render_champions(console, spark, cfg)


def _render_partitions(console: Console, spark, cfg: Config) -> None:
    from engine.validation import partition_statuses

    statuses = partition_statuses(spark, cfg)
    bad = [s for s in statuses if s.status == "quarantined"]
    console.print(f"\n[bold]partitions[/bold]: {len(statuses)} checked, {len(bad)} quarantined")
    for s in sorted(bad, key=lambda s: (s.table, s.ds)):
        console.print(f"  [yellow]quarantined[/yellow] {s.table} ds={s.ds}", highlight=False)


def _render_alerts(console: Console, cfg: Config, run_id: str | None) -> None:
    path = catalog.local_path(catalog.Catalog.of(cfg).alerts_file)
    if path is None or not os.path.exists(path):
        return
    with open(path) as f:
        alerts = [json.loads(line) for line in f if line.strip()]
    if not alerts:
        return
    latest = alerts[-1].get("run_id")
    recent = [a for a in alerts if a.get("run_id") == latest]
    console.print(f"\n[bold]alerts[/bold] of run {latest} ({len(recent)}; all in {path})", highlight=False)
    for a in recent[:20]:
        console.print(f"  {a.get('message')}", highlight=False, soft_wrap=True)


def _render_champions(console: Console, spark, cfg: Config) -> None:
    from engine.registry import champions

    entries = champions(spark, cfg)
    if not entries:
        console.print("\nno champions yet")
        return
    table = Table(title="\nchampions", show_header=True, header_style="bold", box=None, title_justify="left")
    for col in ("model", "segment", "version", "logical date", "metric", "eval value", "age (days)"):
        table.add_column(col)
    now = dt.datetime.now(dt.timezone.utc)
    for e in sorted(entries, key=lambda e: (e.model_id, e.segment)):
        trained = e.trained_at
        if trained is not None and trained.tzinfo is None:
            trained = trained.replace(tzinfo=dt.timezone.utc)
        age = "" if trained is None else f"{(now - trained).total_seconds() / 86400:.1f}"
        table.add_row(e.model_id, e.segment, e.version, str(e.logical_date), e.metric or "", _num(e.metric_value), age)
    console.print(table)


def render_locations(console: Console, cfg: Config, conf: str = "conf") -> None:
    """Where everything is: the lakehouse, the configured sources and feature tables, the
    engine's tables, the alerts and metrics files."""
    lake = catalog.Catalog.of(cfg)
    console.print(f"\nlakehouse: {cfg.lakehouse}", highlight=False)
    sources = [cfg.resolve(source.path) for source in cfg.project.sources.values()]
    for path in (*sources, *(lake.features(name) for name in cfg.feature_sets), lake.validation_results,
                 lake.validation_profiles, lake.validation_partitions, lake.training_sets, lake.registry,
                 lake.runs, lake.artifacts):
        console.print(f"  {path}", highlight=False)
    console.print(f"alerts:  {lake.alerts_file}", highlight=False)
    if lake.metrics_file:
        console.print(f"metrics: {lake.metrics_file}", highlight=False)
    console.print(f"next: retrain status --conf {conf}", highlight=False)
