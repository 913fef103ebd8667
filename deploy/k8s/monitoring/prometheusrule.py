"""Write prometheusrule.yaml: deploy/prometheus/alerts.yml as a prometheus-operator resource.

The rules have one source, deploy/prometheus/alerts.yml (what promtool's unit tests run
and what the ConfigMap ships); this file wraps its groups in a ``PrometheusRule`` for
clusters where the operator loads rules. tests/test_manifests.py fails when the two
differ, so after changing the alerts run::

    python deploy/k8s/monitoring/prometheusrule.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "prometheus" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/k8s/monitoring/prometheusrule.py;
# do not edit (tests/test_manifests.py checks they are the same rules). The operator's
# Prometheus selects rules by label (ruleSelector): kube-prometheus-stack's default is
# release=<its Helm release>; set it with a kustomize patch or labels for yours.
"""


def prometheus_rule(alerts: Path = ALERTS) -> dict[str, Any]:
    """The ``PrometheusRule`` holding the groups of ``alerts``."""
    groups = yaml.safe_load(alerts.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "hotline-alerts",
            "labels": {"app.kubernetes.io/name": "hotline",
                       "app.kubernetes.io/component": "alerts",
                       "release": "kube-prometheus-stack"},
        },
        "spec": {"groups": groups},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions and descriptions as ``|`` blocks, readable in review."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(alerts: Path = ALERTS) -> str:
    body = yaml.dump(prometheus_rule(alerts), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, width=100)
    return HEADER + body


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
