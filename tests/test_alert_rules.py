"""The Prometheus rules, scrape config and dashboard queries, checked by ``promtool``.

``promtool`` comes with Debian's ``prometheus`` package, which ``make test`` installs when
it is missing. Without it these tests skip with a message on a developer's machine, and
fail in CI (``CI`` set), where a skipped check would pass unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_metrics import dashboard_expressions
from workers.runtime.settings import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"


def require_promtool() -> str:
    """The promtool binary; skip (locally) or fail (in CI) without it."""
    path = shutil.which("promtool")
    if path:
        return path
    message = ("promtool not found: install Debian's prometheus package "
               "(apt-get install -y prometheus; `make test` does it)")
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the rule tests")
    pytest.skip(message)


def promtool(*args: str | Path, cwd: Path = PROMETHEUS_DIR) -> str:
    result = subprocess.run([require_promtool(), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def test_rule_unit_tests_pass() -> None:
    output = promtool("test", "rules", ALERTS_TEST.name)
    assert "SUCCESS" in output


def test_rules_file_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", ALERTS.name)


def test_scrape_config_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", SCRAPE_CONFIG.name)


def test_every_alert_has_a_firing_unit_test() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert alerts - fired == set(), "alerts without a test that expects them to fire"


def test_alerts_have_severity_and_summary() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"] if "alert" in r):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# Grafana's variables, replaced by what they stand for so promtool can parse the query.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$tier": ".*",
    "${datasource}": "",
}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_expressions()
    assert exprs
    rules = []
    for i, (title, expr) in enumerate(exprs):
        for var, replacement in _GRAFANA_VARIABLES.items():
            expr = expr.replace(var, replacement)
        assert "$" not in expr, f"unknown Grafana variable in {title!r}: {expr}"
        rules.append({"record": f"dashboard:check_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]},
                                   allow_unicode=True))
    output = promtool("check", "rules", path, cwd=tmp_path)
    assert re.search(rf"SUCCESS: {len(rules)} rules found", output), output
