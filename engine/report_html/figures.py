"""The report's charts: plotly figures made from ReportData (no I/O here)."""
from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter, defaultdict
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.report_html.data import ReportData, learned_details, reasons

STATUS_COLORS = {"success": "#2e7d32", "blocked": "#f9a825", "failed": "#c62828", "skipped": "#9e9e9e",
                 "running": "#1565c0"}
MODEL_COLORS = {"champion": "#2e7d32", "rejected": "#ef6c00", "failed": "#c62828", "challenger": "#1565c0"}
TABLE_ROW = "(table)"
PARTITION_ROW = "partition"
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=40), font=dict(size=12),
              hoverlabel=dict(align="left"))

# Heatmap cell codes, drawn with a piecewise colour scale over [0, 5].
NOT_CHECKED, VALID, WARNED, FAILED, RELEASED = 0.0, 1.0, 3.0, 4.0, 5.0
HEAT_SCALE = [
    [0.0, "#eeeeee"], [0.1, "#eeeeee"],  # 0: not checked
    [0.1, "#a5d6a7"], [0.3, "#a5d6a7"],  # 1: valid
    [0.3, "#dce775"], [0.4, "#fff176"],  # 1..2: valid, learned score approaching its threshold
    [0.4, "#ffb300"], [0.7, "#ffb300"],  # 3: warned
    [0.7, "#e53935"], [0.9, "#e53935"],  # 4: failed, partition quarantined
    [0.9, "#1e88e5"], [1.0, "#1e88e5"],  # 5: released
]


def _seconds(row: dict[str, Any]) -> float:
    if row.get("ended_at") is None or row.get("started_at") is None:
        return 0.0
    return max(0.0, (row["ended_at"] - row["started_at"]).total_seconds())


def _wrap(text: str | None, width: int = 90) -> str:
    """Hover text: escaped, wrapped with <br> (plotly hover labels do not wrap)."""
    words, lines, line = html.escape(text or "").split(), [], ""
    for w in words:
        if line and len(line) + len(w) > width:
            lines.append(line)
            line = ""
        line = f"{line} {w}".strip()
    return "<br>".join(lines + [line])


# --------------------------------------------------------------------------- runs


def runs_timeline(data: ReportData) -> go.Figure | None:
    """One row per run (night), its stages as bars from the run's start, coloured by status."""
    runs = sorted((r for r in data.runs if r["stage"] == "run"), key=lambda r: r["started_at"])[-14:]
    if not runs:
        return None
    fig = go.Figure()
    labels = {r["run_id"]: f"{r['logical_date']} · {r['run_id'][-6:]}" for r in runs}
    stages = [s for s in data.runs if s["run_id"] in labels and s["stage"] != "run"]
    begin = {r["run_id"]: r["started_at"] for r in runs}
    for status in sorted({s["status"] for s in stages}):
        rows = [s for s in stages if s["status"] == status]
        fig.add_bar(
            orientation="h", name=status, marker_color=STATUS_COLORS.get(status, "#607d8b"),
            y=[labels[s["run_id"]] for s in rows],
            base=[(s["started_at"] - begin[s["run_id"]]).total_seconds() for s in rows],
            x=[max(_seconds(s), 0.05) for s in rows],
            text=[s["stage"] for s in rows], textposition="inside", insidetextanchor="middle",
            customdata=[[s["stage"], f"{_seconds(s):.1f}", s["rows_in"] if s["rows_in"] is not None else "",
                         s["rows_out"] if s["rows_out"] is not None else "",
                         _wrap(s["error"] or s["detail"] or ""), f"{s['started_at']:%Y-%m-%d %H:%M:%S}"] for s in rows],
            hovertemplate=("<b>%{customdata[0]}</b> " + status + "<br>started %{customdata[5]} UTC, "
                           "%{customdata[1]} s<br>rows in %{customdata[2]}, out %{customdata[3]}"
                           "<br>%{customdata[4]}<extra></extra>"),
        )
    fig.add_scatter(  # the run's own outcome at its end
        x=[_seconds(r) for r in runs], y=[labels[r["run_id"]] for r in runs], mode="markers", name="run end",
        marker=dict(symbol="line-ns-open", size=18, color=[STATUS_COLORS.get(r["status"], "#607d8b") for r in runs],
                    line=dict(width=3)),
        customdata=[[r["status"], f"{_seconds(r):.1f}", _wrap(r["error"] or "")] for r in runs],
        hovertemplate="run %{customdata[0]} after %{customdata[1]} s<br>%{customdata[2]}<extra></extra>")
    fig.update_layout(**LAYOUT, barmode="overlay", height=140 + 34 * len(runs),
                      title="Recent nights: stages from the run's start (bar = stage, colour = status)",
                      xaxis_title="seconds since the run started", yaxis=dict(type="category", autorange="reversed"),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def golden_signals(data: ReportData) -> go.Figure | None:
    runs = sorted((r for r in data.runs if r["stage"] == "run"), key=lambda r: r["started_at"])
    if not runs:
        return None
    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.2, horizontal_spacing=0.08, subplot_titles=(
        "run duration (s)", "rows written by stage", "partitions quarantined", "models by outcome"))
    day = [r["logical_date"] for r in runs]
    fig.add_bar(x=day, y=[_seconds(r) for r in runs], name="run duration", showlegend=False,
                marker_color=[STATUS_COLORS.get(r["status"], "#607d8b") for r in runs],
                customdata=[[r["status"], r["run_id"]] for r in runs],
                hovertemplate="%{x}: %{y:.1f} s, %{customdata[0]}<br>run %{customdata[1]}<extra></extra>",
                row=1, col=1)
    run_day = {r["run_id"]: r["logical_date"] for r in runs}
    for stage in ("features", "training_sets", "train"):
        rows = sorted((s for s in data.runs if s["stage"] == stage and s["run_id"] in run_day and s["rows_out"] is not None),
                      key=lambda s: s["logical_date"])
        if rows:
            fig.add_scatter(x=[s["logical_date"] for s in rows], y=[s["rows_out"] for s in rows], name=stage,
                            mode="lines+markers", legendgroup="rows", row=1, col=2)
    quarantined: dict[str, set] = defaultdict(set)
    for r in data.all_results:
        learning = (learned_details(r) or {}).get("learning")
        if r["success"] is False and r["severity"] == "block" and not learning:
            quarantined[r["run_id"]].add((r["table"], r["ds"]))
    fig.add_bar(x=day, y=[len(quarantined.get(r["run_id"], ())) for r in runs], name="quarantined",
                marker_color="#e53935", showlegend=False, row=2, col=1,
                hovertemplate="%{x}: %{y} partitions quarantined<extra></extra>")
    outcomes: dict[str, Counter] = defaultdict(Counter)
    for e in data.registry:
        if e["run_id"] in run_day:
            outcomes[e["run_id"]][_model_outcome(e)] += 1
    for outcome in ("champion", "rejected", "failed", "challenger"):
        counts = [outcomes[r["run_id"]][outcome] for r in runs]
        if any(counts):
            fig.add_bar(x=day, y=counts, name=outcome, marker_color=MODEL_COLORS[outcome], legendgroup="models",
                        row=2, col=2, hovertemplate="%{x}: %{y} " + outcome + "<extra></extra>")
    fig.update_layout(**LAYOUT, barmode="stack", height=560, title="Golden signals per night",
                      legend=dict(orientation="h", y=-0.15))
    fig.update_xaxes(type="date", tickformat="%b %d", dtick=86400000)
    return fig


def _model_outcome(entry: dict[str, Any]) -> str:
    """What the run that trained the entry decided (ModelStatus's run outcomes): a model retired
    since then was the run's champion."""
    status = entry["status"]
    if status in ("champion", "retired") and not (entry.get("reason") or "").startswith("champion again"):
        return "champion"
    return status


# --------------------------------------------------------------------------- validation


def validation_heatmaps(data: ReportData, docs: dict[tuple[str, dt.date], str]) -> list[tuple[str, go.Figure, list]]:
    """(table, figure, per-day Data Docs links) for each feature table with validated partitions."""
    out = []
    days = [data.start + dt.timedelta(days=i) for i in range((data.end - data.start).days + 1)]
    for table in data.feature_tables:
        statuses = {r["ds"]: r for r in data.partitions if r["table"] == table}
        results = [r for r in data.results if r["table"] == table]
        columns = sorted({p["column"] for p in data.profiles if p["table"] == table} |
                         {r["column"] for r in results if r["column"] and r["column"] != "*"})
        checked_days = sorted({r["ds"] for r in results} | set(statuses))
        if not checked_days:
            continue
        days_shown = [d for d in days if d >= checked_days[0]] or days
        rows = [PARTITION_ROW, TABLE_ROW] + columns
        index = {c: i for i, c in enumerate(rows)}
        z = [[None] * len(days_shown) for _ in rows]
        text = [[""] * len(days_shown) for _ in rows]
        cells: dict[tuple[int, int], list] = defaultdict(list)
        pos = {d: j for j, d in enumerate(days_shown)}
        for r in results:
            if r["ds"] not in pos:
                continue
            column = TABLE_ROW if not r["column"] or r["column"] == "*" else r["column"]
            cells[(index[column], pos[r["ds"]])].append(r)
        for (i, j), checks in cells.items():
            z[i][j], text[i][j] = _cell(rows[i], days_shown[j], checks, statuses.get(days_shown[j]))
        for j, d in enumerate(days_shown):
            status = statuses.get(d)
            for i in range(1, len(rows)):
                if z[i][j] is None and (status is not None or d in checked_days):
                    z[i][j], text[i][j] = NOT_CHECKED, f"{rows[i]} · {d}<br>no check on this column"
            if status is not None:
                z[0][j], text[0][j] = _partition_cell(status)
        fig = go.Figure(go.Heatmap(
            z=z, x=[d.isoformat() for d in days_shown], y=rows, text=text, hovertemplate="%{text}<extra></extra>",
            colorscale=HEAT_SCALE, zmin=0, zmax=5, xgap=1, ygap=1, hoverongaps=False, showscale=False))
        for j, d in enumerate(days_shown):  # released partitions: a marker above the column
            if statuses.get(d) and statuses[d].get("released_by"):
                fig.add_annotation(x=d.isoformat(), y=PARTITION_ROW, text="R", showarrow=False,
                                   font=dict(color="white", size=11))
        fig.update_layout(**{**LAYOUT, "margin": dict(l=170, r=20, t=60, b=70)},
                          height=160 + 22 * len(rows),
                          title=f"{table}: partitions × columns (latest validation of each day)",
                          yaxis=dict(autorange="reversed", type="category"),
                          xaxis=dict(type="category", tickangle=-60))
        out.append((table, fig, [docs.get((table.split("/", 1)[-1], d)) for d in days_shown]))
    return out


def _partition_cell(status: dict[str, Any]) -> tuple[float, str]:
    head = f"<b>{html.escape(status['table'])} ds={status['ds']}</b>: "
    if status.get("released_by"):
        return RELEASED, head + (f"released by {html.escape(status['released_by'])}"
                                 f"<br>{_wrap(status.get('release_reason'))}")
    if status["status"] == "quarantined":
        lines = [_wrap(r.get("message")) for r in reasons(status)][:6]
        return FAILED, head + "quarantined<br>" + "<br>".join(lines)
    return VALID, head + "valid"


def _cell(column: str, day: dt.date, checks: list[dict[str, Any]], status: dict | None) -> tuple[float, str]:
    failed = [c for c in checks if c["success"] is False]
    learned = [(learned_details(c) or {}) for c in checks]
    ratios = [d["score"] / d["threshold"] for d in learned
              if d.get("score") is not None and d.get("threshold") not in (None, 0)]
    lines = [f"<b>{html.escape(column)} · {day}</b>: {len(checks) - len(failed)} of {len(checks)} checks passed"]
    if ratios:
        lines.append(f"learned-check score {max(ratios):.2f} × its threshold")
    for c in failed[:6]:
        lines.append(("⚠ " if c["severity"] == "warn" else "✖ ") + _wrap(c["message"] or c["expectation_type"]))
    blocking = [c for c in failed if c["severity"] == "block" and not (learned_details(c) or {}).get("learning")]
    if blocking:
        released = bool(status and status.get("released_by"))
        return (RELEASED if released else FAILED), "<br>".join(lines + (["(partition released)"] if released else []))
    if failed:
        return WARNED, "<br>".join(lines)
    return VALID + (min(max(ratios), 0.99) if ratios else 0.0), "<br>".join(lines)


# --------------------------------------------------------------------------- column history


PANELS = (("value", "mean and quantiles"), ("null_fraction", "null fraction"), ("row_count", "rows"))


def alerted_columns(data: ReportData, picked: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(table, column) pairs that failed a check in the period, plus the ones picked
    ('features/orders:amount', 'orders:amount' or 'amount')."""
    out = {(r["table"], r["column"]) for r in data.results
           if r["success"] is False and r["column"] and r["column"] != "*"}
    known = {(p["table"], p["column"]) for p in data.profiles}
    for pick in picked:
        table, _, column = pick.rpartition(":")
        out |= {(t, c) for t, c in known if c == column and (not table or t in (table, f"features/{table}"))}
    return sorted(out)


def column_history(data: ReportData, table: str, column: str) -> go.Figure:
    profiles = sorted((p for p in data.profiles if p["table"] == table and p["column"] == column),
                      key=lambda p: p["ds"])
    flagged = defaultdict(list)
    for r in data.results:
        if r["table"] == table and r["column"] in (column, None, "*") and r["success"] is False:
            flagged[r["ds"]].append(r)
    learned = defaultdict(dict)  # statistic -> ds -> details
    for r in data.results:
        d = learned_details(r)
        if d and r["table"] == table and r["column"] == column and d.get("statistic"):
            learned[d["statistic"]][r["ds"]] = {**d, "observed": _num(r["observed_value"])}
    numeric = any(p["mean"] is not None for p in profiles)
    extra = sorted(s for s in learned if s not in ("mean", "p50", "null_fraction", "row_count", "distinct")
                   and any(r["success"] is False for r in data.results if r["table"] == table
                           and r["column"] == column and (learned_details(r) or {}).get("statistic") == s))
    titles = ["mean, median, p05–p95 and p25–p75" if numeric else "distinct values (estimate)",
              "null fraction", "rows"] + [f"learned: {s}" for s in extra]
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.07, subplot_titles=titles)
    x = [p["ds"] for p in profiles]
    if numeric:
        for lo, hi, name, alpha in (("p05", "p95", "p05–p95", 0.15), ("p25", "p75", "p25–p75", 0.3)):
            fig.add_scatter(x=x, y=[p[hi] for p in profiles], mode="lines", line=dict(width=0), showlegend=False,
                            hoverinfo="skip", row=1, col=1)
            fig.add_scatter(x=x, y=[p[lo] for p in profiles], mode="lines", line=dict(width=0), fill="tonexty",
                            fillcolor=f"rgba(30,136,229,{alpha})", name=name, hoverinfo="skip", row=1, col=1)
        fig.add_scatter(x=x, y=[p["p50"] for p in profiles], mode="lines", name="median",
                        line=dict(color="#1565c0", dash="dot"), row=1, col=1)
        fig.add_scatter(x=x, y=[p["mean"] for p in profiles], mode="lines+markers", name="mean",
                        line=dict(color="#0d47a1"), row=1, col=1)
        _band(fig, learned.get("mean") or learned.get("p50"), 1)
    else:
        fig.add_scatter(x=x, y=[p["distinct_count"] for p in profiles], mode="lines+markers", name="distinct",
                        line=dict(color="#0d47a1"), row=1, col=1)
        _band(fig, learned.get("distinct"), 1)
    fig.add_scatter(x=x, y=[p["null_fraction"] for p in profiles], mode="lines+markers", name="null fraction",
                    line=dict(color="#6a1b9a"), row=2, col=1)
    _band(fig, learned.get("null_fraction"), 2)
    fig.add_scatter(x=x, y=[p["row_count"] for p in profiles], mode="lines+markers", name="rows",
                    line=dict(color="#37474f"), row=3, col=1)
    for k, stat in enumerate(extra, start=4):
        series = sorted(learned[stat].items())
        fig.add_scatter(x=[d for d, _ in series], y=[v["observed"] for _, v in series], mode="lines+markers",
                        name=stat, row=k, col=1)
        _band(fig, learned[stat], k)
    by_day = {p["ds"]: p for p in profiles}
    for day, checks in sorted(flagged.items()):  # flagged days: a red marker on every panel
        note = "<br>".join(("⚠ " if c["severity"] == "warn" else "✖ ") + _wrap(c["message"] or c["expectation_type"])
                           for c in checks[:5])
        p = by_day.get(day)
        ys = [(p["mean"] if numeric else p["distinct_count"]) if p else None, p["null_fraction"] if p else None,
              p["row_count"] if p else None]
        for k, y in enumerate(ys, start=1):
            if y is not None:
                fig.add_scatter(x=[day], y=[y], mode="markers", showlegend=(k == 1 and day == min(flagged)),
                                name="flagged day", legendgroup="flagged",
                                marker=dict(symbol="x", size=13, color="#d50000", line=dict(width=1)),
                                hovertemplate=f"<b>{day}</b> flagged<br>{note}<extra></extra>", row=k, col=1)
        fig.add_vrect(x0=day - dt.timedelta(hours=12), x1=day + dt.timedelta(hours=12), fillcolor="#ffcdd2",
                      opacity=0.35, line_width=0, layer="below")
    fig.update_layout(**LAYOUT, height=230 * len(titles) + 60, title=f"{table} · {column}",
                      legend=dict(orientation="h", y=-0.08), hovermode="x unified")
    fig.update_xaxes(range=[data.start - dt.timedelta(days=1), data.end + dt.timedelta(days=1)])
    return fig


def _num(text: str | None) -> float | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _band(fig: go.Figure, series: dict | None, row: int) -> None:
    """The learned check's expected band (expected_low..expected_high) where it gives one."""
    points = sorted((d, v) for d, v in (series or {}).items()
                    if v.get("expected_low") is not None and v.get("expected_high") is not None)
    if not points:
        return
    x = [d for d, _ in points]
    fig.add_scatter(x=x, y=[v["expected_high"] for _, v in points], mode="lines", line=dict(width=0, shape="hv"),
                    showlegend=False, hoverinfo="skip", row=row, col=1)
    fig.add_scatter(x=x, y=[v["expected_low"] for _, v in points], mode="lines", line=dict(width=0, shape="hv"),
                    fill="tonexty", fillcolor="rgba(67,160,71,0.18)", name="expected (learned)",
                    legendgroup="expected", showlegend=row == 1, hoverinfo="skip", row=row, col=1)


# --------------------------------------------------------------------------- models


MAX_SEGMENT_PANELS = 8


def model_history(data: ReportData, model_id: str) -> go.Figure | None:
    entries = sorted((e for e in data.registry if e["model_id"] == model_id), key=lambda e: e["logical_date"])
    entries = [e for e in entries if data.start <= e["logical_date"] <= data.end] or entries
    if not entries:
        return None
    segments = sorted({e["segment"] for e in entries})
    shown = segments[:MAX_SEGMENT_PANELS]
    metric = next((e["metric"] for e in entries if e["metric"]), "metric")
    more = f" (first {len(shown)} of {len(segments)} segments)" if len(segments) > len(shown) else ""
    fig = make_subplots(rows=len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[f"segment {s}" for s in shown])
    slo_min, slo_max = data.slo.get(model_id, (None, None))
    for k, segment in enumerate(shown, start=1):
        rows = [e for e in entries if e["segment"] == segment]
        trained = [e for e in rows if e["status"] != "failed"]
        first = k == 1
        x = [e["logical_date"] for e in trained]
        fig.add_scatter(x=x, y=[e["metric_value"] for e in trained], mode="lines", name=f"eval {metric}",
                        line=dict(color="#1565c0"), legendgroup="eval", showlegend=first, row=k, col=1)
        fig.add_scatter(x=x, y=[e["train_value"] for e in trained], mode="lines", name=f"train {metric}",
                        line=dict(color="#90a4ae", dash="dash"), legendgroup="train", showlegend=first, row=k, col=1)
        gated = [e for e in trained if e["gate_value"] is not None]
        if gated:
            fig.add_scatter(x=[e["logical_date"] for e in gated], y=[e["champion_value"] for e in gated],
                            mode="markers", name="gate: champion", legendgroup="gate_champion", showlegend=first,
                            marker=dict(symbol="circle-open", size=9, color="#455a64"), row=k, col=1)
            fig.add_scatter(x=[e["logical_date"] for e in gated], y=[e["gate_value"] for e in gated],
                            mode="markers", name="gate: challenger", legendgroup="gate", showlegend=first,
                            marker=dict(symbol="diamond", size=8, color="#1565c0"), row=k, col=1)
        for outcome, symbol in (("champion", "star"), ("rejected", "x"), ("failed", "x-thin-open")):
            hits = [e for e in rows if _model_outcome(e) == outcome]
            if not hits:
                continue
            y = [e["metric_value"] if e["metric_value"] is not None else (slo_min or slo_max or 0) for e in hits]
            fig.add_scatter(
                x=[e["logical_date"] for e in hits], y=y, mode="markers", name=outcome, legendgroup=outcome,
                showlegend=first or not any(_model_outcome(e) == outcome for e in entries
                                            if e["segment"] in shown[:k - 1]),
                marker=dict(symbol=symbol, size=14, color=MODEL_COLORS[outcome], line=dict(width=2)),
                customdata=[[e["version"], _wrap(e["reason"]), e["status"]] for e in hits],
                hovertemplate=("%{x}: <b>" + outcome + "</b> %{customdata[0]} (now %{customdata[2]})"
                               "<br>%{customdata[1]}<extra></extra>"), row=k, col=1)
        for bound, name in ((slo_min, "SLO min"), (slo_max, "SLO max")):
            if bound is not None:
                fig.add_hline(y=bound, line=dict(color="#c62828", dash="dot"), row=k, col=1,
                              annotation_text=f"{name} {bound:g}", annotation_position="top left")
    fig.update_layout(**LAYOUT, height=120 + 230 * len(shown), legend=dict(orientation="h", y=-0.05),
                      title=f"{model_id}: {metric} per night — train, eval, gate; promotions, rejections, failures{more}")
    return fig
