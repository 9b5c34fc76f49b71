"""The metrics each process counts, for Prometheus: requests, decisions, artifact failures. Under
gunicorn, PROMETHEUS_MULTIPROC_DIR makes prometheus-client keep them in files that /metrics sums
across the workers. METRICS_ENABLED=false counts nothing."""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "fraud_http_request_seconds",
    "Time to answer a request, by endpoint (URL name) and status",
    ["endpoint", "status"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "fraud_decisions", "Transactions scored and stored, by model version and outcome", ["version", "outcome"]
)
ARTIFACT_FAILURES = Counter("fraud_artifact_load_failures", "Model artifacts that failed their checks when loaded")


def observe_request(request, response, seconds: float) -> None:
    if not settings.METRICS_ENABLED:
        return
    match = getattr(request, "resolver_match", None)
    endpoint = match.url_name if match is not None and match.url_name else "unmatched"
    REQUEST_SECONDS.labels(endpoint, str(response.status_code)).observe(seconds)


def count_decisions(version: int, alerts: int, total: int) -> None:
    if not settings.METRICS_ENABLED:
        return
    if alerts:
        DECISIONS.labels(str(version), "alert").inc(alerts)
    if total - alerts:
        DECISIONS.labels(str(version), "pass").inc(total - alerts)
