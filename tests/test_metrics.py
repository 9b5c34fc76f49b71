"""GET /metrics: Prometheus' text format, parsed by prometheus-client's own parser; values move
with requests; not open to the world."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detection.models import MonitorWindow


def scrape(client, **headers) -> dict[str, list]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {family.name: family.samples for family in text_string_to_metric_families(response.content.decode())}


def value(samples, name: str, **labels) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found)


def test_requests_and_decisions_are_counted(client, active_version, original_rows):
    before = scrape(client)
    for _ in range(3):
        body = json.dumps([original_rows["legit"], original_rows["fraud"]])
        assert client.post("/detect-fraud", body, content_type="application/json").status_code == 200
    after = scrape(client)
    version = str(active_version.version)
    requests = "fraud_http_request_seconds_count"
    moved = value(after["fraud_http_request_seconds"], requests, endpoint="detect-fraud", status="200") - value(
        before.get("fraud_http_request_seconds", []), requests, endpoint="detect-fraud", status="200"
    )
    assert moved == 3
    decided = sum(
        value(after["fraud_decisions"], "fraud_decisions_total", version=version, outcome=o) for o in ("alert", "pass")
    ) - sum(
        value(before.get("fraud_decisions", []), "fraud_decisions_total", version=version, outcome=o)
        for o in ("alert", "pass")
    )
    assert decided == 6
    assert value(after["fraud_review_queue"], "fraud_review_queue") >= 1  # the fraud row raised an alert


def test_the_database_gauges_follow_the_latest_window(client, active_version):
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(hours=1)
    MonitorWindow.objects.create(
        version=active_version,
        role="primary",
        start=start,
        end=start + timedelta(hours=1),
        transactions=200,
        alerts=4,
        score_psi=0.31,
        top_feature="V3",
        top_feature_psi=0.05,
    )
    found = scrape(client)
    labels = {"version": str(active_version.version), "role": "primary"}
    assert value(found["fraud_window_score_psi"], "fraud_window_score_psi", **labels) == pytest.approx(0.31)
    assert value(found["fraud_window_alert_rate"], "fraud_window_alert_rate", **labels) == pytest.approx(0.02)
    assert "fraud_training_runs" in found and "fraud_data_files" in found


def test_without_a_token_only_the_loopback_may_scrape(client, db, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 403  # the loopback too, once a token is set
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="203.0.113.9")
