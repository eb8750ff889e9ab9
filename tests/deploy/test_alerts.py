"""The alerting rules: promtool accepts and unit-tests them, the PrometheusRule is the same rules and a
valid resource, every metric they read is one the code exports, and every runbook section exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from deploy.prometheus.render_prometheus_rule import PROMETHEUS_RULE, RULES, render
from shared import metrics
from tests.support.manifests import K8S, overlay_on, validation_errors
from tests.support.paths import REPO_ROOT

ALERTS_COMPONENT = K8S / "components" / "alerts"
RULE_TESTS = RULES.parent / "alerts.test.yaml"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Never skipped: `make setup` installs promtool (scripts/install-promtool)."""
    executable = shutil.which("promtool")
    assert executable, "promtool not found: run `make setup` (scripts/install-promtool)"
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=60, check=False)


def alerting_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests compare what fires: a test expecting silence where an alert fires must fail."""
    broken = RULE_TESTS.read_text(encoding="utf-8").replace("- eval_time: 5m\n", "- eval_time: 2m\n", 1)
    assert broken != RULE_TESTS.read_text(encoding="utf-8")
    (tmp_path / "alerts.yaml").write_text(RULES.read_text(encoding="utf-8"))
    (tmp_path / "alerts.test.yaml").write_text(broken)
    assert promtool("test", "rules", str(tmp_path / "alerts.test.yaml")).returncode != 0


def test_every_failure_the_plan_names_has_an_alert() -> None:
    names = {str(rule["alert"]) for rule in alerting_rules()}
    assert names == {
        "SoulcasterUnclusteredBacklogGrowing",
        "SoulcasterGroupLagGrowing",
        "SoulcasterOldestPendingTooOld",
        "SoulcasterDeadLettersRising",
        "SoulcasterBreakerOpen",
        "SoulcasterHeartbeatStale",
        "SoulcasterApiServerErrors",
    }


def exported_metric_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name
            names.add(f"{name}_total" if isinstance(value, Counter) else name)
    return names


def test_the_rules_read_only_metrics_the_code_exports() -> None:
    used = {name for rule in alerting_rules() for name in re.findall(r"soulcaster_\w+", str(rule["expr"]))}
    assert used and used <= exported_metric_names(), used - exported_metric_names()


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_section_in_the_operations_guide() -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in alerting_rules():
        runbook = rule["annotations"]["runbook"]  # type: ignore[index]
        path, _, anchor = str(runbook).partition("#")
        assert path == "docs/operations.md" and anchor in anchors, f"{rule['alert']}: {runbook}"


def test_the_prometheus_rule_is_rendered_from_the_rules_file() -> None:
    assert PROMETHEUS_RULE.read_text(encoding="utf-8") == render(), (
        "stale: run python deploy/prometheus/render_prometheus_rule.py"
    )
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]


def test_the_alerts_component_renders_a_valid_prometheus_rule(tmp_path: Path) -> None:
    from tests.support.manifests import render as kustomize

    docs = kustomize(overlay_on(tmp_path, K8S / "base", [ALERTS_COMPONENT], []))
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    assert validation_errors(rule) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("expresion", "up == 0"), ("for", "15 minutes")],
    ids=["unknown-field", "bad-duration"],
)
def test_a_broken_prometheus_rule_fails_validation(field: str, value: str) -> None:
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    rule["spec"]["groups"][0]["rules"][0][field] = value
    assert validation_errors(rule) != []
