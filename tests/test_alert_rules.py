"""The Prometheus rules and scrape config of docs/operations.md (docs/prometheus/): promtool's own
checks and unit tests where promtool is installed (Debian package `prometheus`), and, always, that
every rule is complete and names only metrics and labels that /metrics exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

FOLDER = Path(__file__).resolve().parent.parent / "docs" / "prometheus"
RULES = FOLDER / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH (Debian: apt-get install prometheus)"
)

# What PromQL itself names, beside metrics: functions (followed by "("), aggregation modifiers,
# operators and keywords; and what Prometheus adds to every target's series.
KEYWORDS = {"by", "without", "and", "or", "unless", "offset", "on", "ignoring", "group_left", "group_right", "bool"}
FROM_PROMETHEUS = {"up"}
TARGET_LABELS = {"job", "instance"}
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names an expression reads, each with the label names its matchers use."""
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    expr = re.sub(GROUPING, "", expr)  # label names, not metrics: "max by (version) (...)" is max(...)
    found = []
    # Not inside a number or a duration ("offset 6h", "0.2").
    for match in re.finditer(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, matchers, call = match.groups()
        if call or name in KEYWORDS:
            continue
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.append((name, labels))
    return found


def grouping(expr: str) -> set[str]:
    """The label names of every by (...) / without (...) / on (...) clause."""
    names: set[str] = set()
    for clause in re.findall(GROUPING, expr):
        names |= {label.strip() for label in clause.split(",") if label.strip()}
    return names


def test_every_rule_says_what_it_is_and_how_bad():
    found = rules()
    assert len(found) >= 5
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)), "two rules of one name"
    for rule in found:
        assert rule.get("expr"), rule["alert"]
        assert "for" in rule and re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]


def test_the_parser_of_this_file_finds_names_and_labels():
    expr = 'max by (version) (x_psi{role="primary"}) > (max(y offset 6h) or vector(0)) and rate(z_total[5m]) > 0'
    assert selectors(expr) == [("x_psi", {"role"}), ("y", set()), ("z_total", set())]
    assert grouping(expr) == {"version"}


@pytest.fixture
def exposed(client, active_version, original_rows) -> dict[str, set[str]]:
    """Every metric name /metrics exposes after a scored transaction, a training run and a
    monitoring window (family names and sample names: fraud_decisions and fraud_decisions_total),
    with the label names of its samples."""
    from django.utils import timezone

    from detection.models import MonitorWindow
    from modelops.models import TrainingRun

    body = json.dumps(original_rows["fraud"])
    assert client.post("/detect-fraud", body, content_type="application/json").status_code == 200
    TrainingRun.objects.create(trigger=TrainingRun.Trigger.MANUAL, status=TrainingRun.Status.FAILED)
    start = timezone.now() - timedelta(hours=1)
    MonitorWindow.objects.create(
        version=active_version,
        role="primary",
        start=start,
        end=start + timedelta(hours=1),
        transactions=100,
        alerts=1,
        score_psi=0.1,
        top_feature="V3",
        top_feature_psi=0.05,
    )
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        names.setdefault(family.name, set())
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            names.setdefault(sample.name, set()).update(labels)
            names[family.name].update(labels)
    return names


def test_every_metric_a_rule_reads_is_one_metrics_exposes(exposed):
    read = set()
    for rule in rules():
        used = selectors(rule["expr"])
        assert used, rule["alert"]
        labels_here = set(TARGET_LABELS)
        for name, matchers in used:
            read.add(name)
            if name in FROM_PROMETHEUS:
                continue
            assert name in exposed, f"{rule['alert']} reads {name}, which /metrics does not expose"
            assert matchers <= exposed[name] | TARGET_LABELS, f"{rule['alert']}: {name} has no label {matchers}"
            labels_here |= exposed[name]
        assert grouping(rule["expr"]) <= labels_here, f"{rule['alert']} groups by a label its metrics lack"
    # The rules cover drift, alert rate, traffic, training and artifacts, each by its own metric.
    for name in (
        "fraud_window_score_psi",
        "fraud_window_max_feature_psi",
        "fraud_window_alert_rate",
        "fraud_decisions_total",
        "fraud_training_runs",
        "fraud_artifact_load_failures_total",
    ):
        assert name in read


def test_the_values_rules_match_on_are_ones_the_app_writes():
    from detection.models import Prediction
    from modelops.models import TrainingRun

    values = {
        "status": set(TrainingRun.Status.values),
        "role": set(Prediction.Role.values),
        "outcome": {"alert", "pass"},
        "job": {"fraud-detection"},
    }
    for rule in rules():
        for label, value in re.findall(r'([A-Za-z_]+)="([^"]*)"', rule["expr"]):
            assert value in values[label], f"{rule['alert']}: {label}={value!r}"


def test_the_scrape_config_loads_the_rules_and_scrapes_with_a_bearer_token():
    config = yaml.safe_load((FOLDER / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "fraud-detection"  # what the rules' up{job=...} reads
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]


def promtool(*args: str, cwd: Path = FOLDER) -> str:
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_promtool_checks_the_rules():
    assert "SUCCESS" in promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass():
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


@needs_promtool
def test_promtool_checks_the_scrape_config(tmp_path):
    # promtool wants the token file to exist: the same config, with one of its own.
    token = tmp_path / "fraud_metrics_token"
    token.write_text("a-token\n")
    config = (FOLDER / "prometheus.yml").read_text().replace("/etc/prometheus/fraud_metrics_token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES, tmp_path / "alerts.yml")
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml", cwd=tmp_path)
