"""deploy/grafana/retrain.json: a Grafana dashboard whose every query is valid PromQL (checked
by promtool as recording rules) over metrics and labels that engine/metrics.py exports."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from engine.metrics import FAMILIES
from tests.test_alert_rules import promtool

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "retrain.json"
# Golden signals the issue asks the dashboard to show, by the metric that carries each.
REQUIRED = {"retrain_last_success_timestamp_seconds", "retrain_stage_duration_seconds", "retrain_rows_processed",
            "retrain_rows_written", "retrain_partitions_quarantined", "retrain_models",
            "retrain_validation_failures"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def panels(items: list[dict]) -> list[dict]:
    out = []
    for p in items:
        out.append(p)
        out.extend(panels(p.get("panels", [])))
    return out


def queries() -> dict[str, str]:
    """'panel title / refId' -> PromQL, for every target of every panel (rows included)."""
    board = json.loads(DASHBOARD.read_text())
    return {f"{p['title']} / {t['refId']}": t["expr"] for p in panels(board["panels"]) for t in p.get("targets", [])}


def test_dashboard_is_grafana_json_with_unique_panel_ids():
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in panels(board["panels"])]
    assert len(ids) == len(set(ids)), ids
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for p in panels(board["panels"]):
        if p["type"] != "row":
            assert p["targets"], f"panel {p['title']!r} has no query"
            assert p["datasource"]["uid"] == "${datasource}", p["title"]


def test_every_query_passes_promtool_as_a_recording_rule(tmp_path):
    exprs = queries()
    assert len(exprs) >= 10
    rules = {"groups": [{"name": "grafana_panels", "rules": [
        {"record": f"retrain_dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs.values())]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_rejects_a_broken_query(tmp_path):
    """The check above can fail: a malformed expression is reported by promtool."""
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "x:y", "expr": "sum by (table (retrain_partitions_quarantined)"}]}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_queries_use_only_exported_metrics_and_their_labels():
    used_metrics: set[str] = set()
    for name, expr in queries().items():
        metrics = set(re.findall(r"\bretrain_[a-z_]+\b", expr))
        assert metrics, f"{name}: {expr} uses no retrain metric"
        assert metrics <= set(FAMILIES), f"{name}: not exported by the engine: {metrics - set(FAMILIES)}"
        used_metrics |= metrics
        labels = {label for metric in metrics for label in FAMILIES[metric].labels}
        matched = set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        grouped = {w.strip() for g in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for w in g.split(",")}
        unknown = (matched | grouped) - labels - PROMQL_WORDS - {""}
        assert not unknown, f"{name}: labels {unknown} are not labels of {metrics}"
        for legend in re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps(_targets_of(name))):
            assert legend in labels, f"{name}: legend uses {legend!r}, not a label of {metrics}"
    assert REQUIRED <= used_metrics, f"golden signals missing from the dashboard: {REQUIRED - used_metrics}"


def _targets_of(name: str) -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    title, ref = name.rsplit(" / ", 1)
    return [t.get("legendFormat", "") for p in panels(board["panels"]) if p["title"] == title
            for t in p.get("targets", []) if t["refId"] == ref]
