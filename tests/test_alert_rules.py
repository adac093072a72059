"""deploy/prometheus/alerts.yml: valid for promtool, proven by alerts_test.yml, and built
only on metrics engine/metrics.py exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from engine.metrics import FAMILIES

RULES_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool not found (Debian package 'prometheus'; deploy/ci-system-packages.sh installs it)"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    return path


def alerts() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}


def test_promtool_check_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_test_rules():
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULES_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_required_alerts_exist_and_use_exported_metrics():
    rules = alerts()
    for name in ("RetrainNoSuccessIn26h", "RetrainPartitionsQuarantined",
                 "RetrainModelRejectedRepeatedly", "RetrainStageSlow"):
        assert name in rules
    for name, expr in rules.items():
        used = set(re.findall(r"\bretrain_[a-z_]+", expr))
        assert used, f"{name} uses no retrain metric"
        assert used <= set(FAMILIES), f"{name} uses metrics the engine does not export: {used - set(FAMILIES)}"


def test_every_alert_is_shown_firing_and_silent():
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    for name in alerts():
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no test where it stays silent"
