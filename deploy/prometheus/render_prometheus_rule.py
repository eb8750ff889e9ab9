"""Write deploy/k8s/components/alerts/prometheus-rule.yaml from deploy/prometheus/alerts.yaml.

The plain rules file is the source (promtool checks and unit-tests it); the PrometheusRule carries
the same groups for clusters that run the Prometheus Operator. tests/deploy/test_alerts.py fails
when the committed PrometheusRule is not what this renders, so the two never drift.

Usage: python deploy/prometheus/render_prometheus_rule.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "alerts.yaml"
PROMETHEUS_RULE = HERE.parent / "k8s" / "components" / "alerts" / "prometheus-rule.yaml"
PART_OF = "soulcaster-streams"
HEADER = """\
# Generated from deploy/prometheus/alerts.yaml by deploy/prometheus/render_prometheus_rule.py:
# edit alerts.yaml, then run the script (tests/deploy/test_alerts.py fails when this is stale).
# Prometheus selects rules by label (`ruleSelector`): add the label yours expects in your overlay,
# e.g. `release: kube-prometheus-stack`.
"""


class _BlockStrings(yaml.SafeDumper):
    """Multi-line expressions stay readable block scalars."""


def _string(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_BlockStrings.add_representer(str, _string)


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "soulcaster-alerts", "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {"groups": groups},
    }


def render() -> str:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    body = yaml.dump(prometheus_rule(groups), Dumper=_BlockStrings, sort_keys=False, width=200)
    return HEADER + body


if __name__ == "__main__":
    PROMETHEUS_RULE.write_text(render(), encoding="utf-8")
