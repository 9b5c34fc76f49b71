"""GET /metrics: the counters of every process (common/metrics.py), and what the database knows
(training runs, data files, the review queue, the latest monitoring windows), read at each scrape."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.db.models import Count, Max
from django.http import HttpResponse, HttpResponseForbidden
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from common import metrics
from detection import reviews
from detection.models import MonitorWindow
from modelops.models import DataFile, TrainingRun


class DatabaseCollector:
    """Gauges read from the database at each scrape: they are the same whichever worker answers."""

    def collect(self):
        runs = GaugeMetricFamily("fraud_training_runs", "Training runs by status", labels=["status"])
        for status, n in TrainingRun.objects.order_by().values_list("status").annotate(n=Count("id")):
            runs.add_metric([status], n)
        yield runs
        last = TrainingRun.objects.exclude(finished_at=None).order_by("-finished_at").first()
        duration = GaugeMetricFamily("fraud_training_last_seconds", "Duration of the last finished training run")
        if last is not None:
            duration.add_metric([], (last.finished_at - last.started_at).total_seconds())
        yield duration
        files = GaugeMetricFamily("fraud_data_files", "Data files by status", labels=["status"])
        for status, n in DataFile.objects.order_by().values_list("status").annotate(n=Count("id")):
            files.add_metric([status], n)
        yield files
        queue = GaugeMetricFamily("fraud_review_queue", "Alerts awaiting an analyst's decision")
        queue.add_metric([], reviews.counts()["awaiting"])
        yield queue
        psi = GaugeMetricFamily("fraud_window_score_psi", "Score PSI of the latest window", labels=["version", "role"])
        feature = GaugeMetricFamily(
            "fraud_window_max_feature_psi", "Largest feature PSI of the latest window", labels=["version", "role"]
        )
        rate = GaugeMetricFamily(
            "fraud_window_alert_rate", "Alert rate of the latest window", labels=["version", "role"]
        )
        volume = GaugeMetricFamily(
            "fraud_window_transactions", "Transactions of the latest window", labels=["version", "role"]
        )
        latest = MonitorWindow.objects.values("version_id", "role").annotate(start=Max("start"))
        for row in latest:
            window = MonitorWindow.objects.select_related("version").get(
                version_id=row["version_id"], role=row["role"], start=row["start"]
            )
            labels = [str(window.version.version), window.role]
            volume.add_metric(labels, window.transactions)
            if window.alert_rate is not None:
                rate.add_metric(labels, window.alert_rate)
            if window.score_psi is not None:
                psi.add_metric(labels, window.score_psi)
            if window.top_feature_psi is not None:
                feature.add_metric(labels, window.top_feature_psi)
        yield from (psi, feature, rate, volume)


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request):
    """GET /metrics in Prometheus' text format: METRICS_TOKEN as a bearer token, else the loopback only."""
    if not _allowed(request):
        return HttpResponseForbidden("metrics need METRICS_TOKEN as a bearer token, or a loopback address\n")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:  # one process (the development server, the tests): its own counters
        for collector in (metrics.REQUEST_SECONDS, metrics.DECISIONS, metrics.ARTIFACT_FAILURES):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
