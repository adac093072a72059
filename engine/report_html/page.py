"""The report page: one self-contained HTML file (plotly.js, styles and data inlined; no CDN)."""
from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from engine.report_html import figures as F
from engine.report_html.data import ReportData

CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png"}}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px} header .meta{opacity:.8;font-size:13px;margin-top:4px}
header a{color:#80deea}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 24px;z-index:10}
nav a{margin-right:18px;color:#1565c0;text-decoration:none;font-weight:600}
main{padding:8px 24px 40px} section{margin-top:22px}
h2{border-bottom:2px solid #263238;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:22px;font-weight:700} .card .k{font-size:12px;color:#616161}
.bad{color:#c62828} .warn{color:#ef6c00} .ok{color:#2e7d32}
.chart{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:10px 0;padding:4px}
table.t{border-collapse:collapse;background:#fff;font-size:13px;margin:8px 0}
table.t th,table.t td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
table.t th{background:#eceff1}
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;border-radius:3px;font-size:12px}
.note{color:#616161;font-size:13px}
#report-errors{display:none;background:#ffebee;color:#b71c1c;border:1px solid #e57373;padding:8px 24px}
"""

# Any script error shows as a red banner (and is what the browser test looks for).
ERROR_HOOK = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e));
  var box = document.getElementById('report-errors');
  if (box) { box.style.display = 'block'; box.textContent = 'Chart error: ' + window.__reportErrors.join(' | '); }
});
"""

# A click on a heatmap cell opens that partition's page in GX's Data Docs.
CLICK_TO_DOCS = """
document.querySelectorAll('[data-docs]').forEach(function (el) {
  var links = JSON.parse(el.getAttribute('data-docs'));
  el.on && el.on('plotly_click', function (ev) {
    var p = ev.points && ev.points[0]; if (!p) return;
    var url = links[p.pointIndex ? p.pointIndex[1] : p.x];
    if (url) window.open(url, '_blank');
  });
});
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _chart(fig: go.Figure | None, div_id: str, attrs: str = "") -> str:
    if fig is None:
        return '<p class="note">No data for this chart yet.</p>'
    body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)
    if attrs:
        body = body.replace(f'<div id="{div_id}"', f'<div id="{div_id}" {attrs}', 1)
    return f'<div class="chart">{body}</div>'


def _cards(data: ReportData) -> str:
    runs = sorted((r for r in data.runs if r["stage"] == "run"), key=lambda r: r["started_at"])
    last = runs[-1] if runs else None
    ok = [r for r in runs if r["status"] in ("success", "blocked")]
    quarantined = [p for p in data.partitions if p["status"] == "quarantined"]
    champions = [e for e in data.registry if e["status"] == "champion"]
    alerts = [r for r in data.results if r["success"] is False]
    cards = [
        ("last run", f"{last['logical_date']} {last['status']}" if last else "none",
         {"success": "ok", "blocked": "warn", "failed": "bad"}.get(last["status"] if last else "", "")),
        ("last success", f"{ok[-1]['ended_at']:%Y-%m-%d %H:%M} UTC" if ok else "never", "" if ok else "bad"),
        ("quarantined partitions", str(len(quarantined)), "bad" if quarantined else "ok"),
        ("failed checks (latest per day)", str(len(alerts)), "warn" if alerts else "ok"),
        ("champions", str(len(champions)), ""),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v {cls}">{_esc(v)}</div><div class="k">{_esc(k)}</div></div>'
        for k, v, cls in cards) + "</div>"


def _quarantine_table(data: ReportData, links: dict) -> str:
    rows = sorted((p for p in data.partitions if p["status"] == "quarantined" or p.get("released_by")),
                  key=lambda p: (p["table"], p["ds"]))
    if not rows:
        return '<p class="note">No partition quarantined or released in the period.</p>'
    out = ['<table class="t"><tr><th>table</th><th>ds</th><th>status</th><th>why</th><th>Data Docs</th></tr>']
    for p in rows:
        why = "<br>".join(_esc(r.get("message")) for r in F.reasons(p))
        if p.get("released_by"):
            why = f"released by {_esc(p['released_by'])}: {_esc(p.get('release_reason'))}<br>{why}"
        link = links.get((p["table"].split("/", 1)[-1], p["ds"]))
        doc = f'<a href="{_esc(link)}">validation result</a>' if link else ""
        out.append(f"<tr><td>{_esc(p['table'])}</td><td>{p['ds']}</td><td>{_esc(p['status'])}</td>"
                   f"<td>{why}</td><td>{doc}</td></tr>")
    return "".join(out) + "</table>"


def _lineage_table(data: ReportData) -> str:
    champions = sorted((e for e in data.registry if e["status"] == "champion"),
                       key=lambda e: (e["model_id"], e["segment"]))
    if not champions:
        return '<p class="note">No champion yet.</p>'
    out = ['<table class="t"><tr><th>model</th><th>segment</th><th>version</th><th>metric (eval)</th>'
           "<th>lineage: training_sets → feature table → validation run</th><th>window (excluded days)</th></tr>"]
    for e in champions:
        value = f"{e['metric']} {e['metric_value']:.4f}" if e["metric_value"] is not None else _esc(e["metric"])
        excluded = ", ".join(json.loads(e["excluded_days"] or "[]"))
        lineage = (f"<code>training_sets</code> v{_esc(e['training_sets_version'])} → "
                   f"<code>{_esc(e['feature_table'])}</code> v{_esc(e['feature_version'])} → "
                   f"validation run <code>{_esc(e['validation_run_id'])}</code>")
        out.append(f"<tr><td>{_esc(e['model_id'])}</td><td>{_esc(e['segment'])}</td><td>{_esc(e['version'])}<br>"
                   f"<span class='note'>run {_esc(e['run_id'])}</span></td><td>{value}</td><td>{lineage}</td>"
                   f"<td>{e['train_start']} … {e['eval_end']}"
                   f"{'<br>excluded: ' + _esc(excluded) if excluded else ''}</td></tr>")
    return "".join(out) + "</table>"


def render(data: ReportData, *, docs_index: str | None, doc_links: dict, columns: tuple[str, ...] = (),
           generated_at: dt.datetime | None = None) -> str:
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc)
    heatmaps = F.validation_heatmaps(data, doc_links)
    heat_html = []
    for i, (table, fig, links) in enumerate(heatmaps):
        heat_html.append(_chart(fig, f"heatmap-{i}", attrs=f"data-docs='{html.escape(json.dumps(links), quote=True)}'"))
    legend = ('<div class="legend"><span style="background:#a5d6a7">valid</span>'
              '<span style="background:#fff176">valid, learned score near its threshold</span>'
              '<span style="background:#ffb300">warned</span>'
              '<span style="background:#e53935;color:#fff">failed: partition quarantined</span>'
              '<span style="background:#1e88e5;color:#fff">released (R)</span>'
              '<span style="background:#eeeeee">no check</span></div>')
    history = [_chart(F.column_history(data, t, c), f"history-{i}")
               for i, (t, c) in enumerate(F.alerted_columns(data, columns))]
    models = sorted({e["model_id"] for e in data.registry})
    model_html = [_chart(F.model_history(data, m), f"model-{i}") for i, m in enumerate(models)]
    docs_link = (f' · <a href="{_esc(docs_index)}">Great Expectations Data Docs</a>' if docs_index else "")
    sections = [
        ("runs", "Runs", _cards(data) + _chart(F.runs_timeline(data), "runs-timeline")
         + _chart(F.golden_signals(data), "golden-signals")),
        ("validation", "Validation heatmap",
         '<p class="note">Each cell: one column of one day, as its latest validation left it; hover for the '
         "checks and alert text; click to open the partition's page in Data Docs.</p>" + legend
         + ("".join(heat_html) or '<p class="note">No validated partition in the period.</p>')
         + "<h3>Quarantined and released partitions</h3>" + _quarantine_table(data, doc_links)),
        ("columns", "Column history",
         '<p class="note">Every column that failed a check in the period: its profile over time, flagged days '
         "marked ✖, the expected band where learned checks give one.</p>"
         + ("".join(history) or '<p class="note">No column alerted in the period.</p>')),
        ("models", "Models", ("".join(model_html) or '<p class="note">No model trained yet.</p>')
         + "<h3>Champions and their lineage</h3>" + _lineage_table(data)),
    ]
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{title}</h2>{content}</section>' for sid, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>retrain report · {_esc(data.project)} · {data.start} … {data.end}</title>
<style>{STYLE}</style>
<script>{ERROR_HOOK}</script>
<script>{get_plotlyjs()}</script>
</head><body>
<div id="report-errors"></div>
<header><h1>retrain report · {_esc(data.project)}</h1>
<div class="meta">{data.start} … {data.end} · lakehouse {_esc(data.lakehouse)} ·
generated {generated_at:%Y-%m-%d %H:%M} UTC{docs_link}</div></header>
<nav>{nav}</nav>
<main>{body}</main>
<script>{CLICK_TO_DOCS}</script>
</body></html>
"""
