"""kubernetes/serving/alerts.yaml: Prometheus' own promtool checks the rules and runs their unit
tests (alerts-test.yaml), and every series the rules read is one TF Serving exports."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

SERVING = pathlib.Path(__file__).resolve().parents[2] / "kubernetes" / "serving"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: scripts/prometheus.sh (Debian's prometheus package; make test runs it)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=SERVING, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_checks_the_rules():
    result = _promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


@needs_promtool
def test_promtool_runs_the_rules_unit_tests():
    result = _promtool("test", "rules", "alerts-test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_broken_expectation_fails(tmp_path):
    """The unit tests can fail: one changed threshold and promtool reports the alert it misses."""
    shutil.copy(SERVING / "alerts-test.yaml", tmp_path)
    rules = (SERVING / "alerts.yaml").read_text().replace("> 500000", "> 5000000")
    (tmp_path / "alerts.yaml").write_text(rules)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts-test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "TFServingHighP99Latency" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_reads_tf_servings_series():
    from serving.metrics import ServingMetrics

    rules = [r for g in yaml.safe_load((SERVING / "alerts.yaml").read_text())["groups"] for r in g["rules"]]
    tested = {
        t["alertname"]
        for test in yaml.safe_load((SERVING / "alerts-test.yaml").read_text())["tests"]
        for t in test["alert_rule_test"]
    }
    assert {r["alert"] for r in rules if "alert" in r} == tested
    exported = ServingMetrics().series()
    recorded = {r["record"] for r in rules if "record" in r}
    for rule in rules:
        for name in re.findall(r"(:tensorflow:[a-z_:]+|[a-z_]+:[a-z_]+:[a-z0-9]+)", rule["expr"]):
            assert name in exported | recorded, (rule.get("alert") or rule["record"], name)
