"""The monitoring pages: every deployed version at a glance, and one version's windows as charts."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404, render

from common import charts
from common.access import requires
from modelops.models import Deployment, ModelEvent, ModelVersion

from . import monitoring
from .models import MonitorWindow

# Windows drawn on a version's page.
SHOWN = 48


@requires("modelops.view_modelversion")
def overview(request):
    rows = []
    for deployment in Deployment.objects.select_related("version").order_by("role", "-version__version"):
        version = deployment.version
        latest = MonitorWindow.objects.filter(version=version, role=deployment.role).first()
        rows.append(
            {
                "version": version,
                "role": deployment.role,
                "state": monitoring.state(version, deployment.role),
                "latest": latest,
                "has_reference": bool(version.reference),
            }
        )
    drift = ModelEvent.objects.filter(kind=ModelEvent.Kind.DRIFT).select_related("to_version")[:20]
    return render(
        request,
        "detection/monitoring.html",
        {"rows": rows, "drift": drift, "minutes": monitoring.window_minutes(), "psi_alert": settings.MONITOR_PSI_ALERT},
    )


@requires("modelops.view_modelversion")
def version_page(request, version: int):
    item = get_object_or_404(ModelVersion.objects.select_related("deployment"), version=version)
    role = request.GET.get("role") or item.role or "primary"
    windows = list(MonitorWindow.objects.filter(version=item, role=role).order_by("-start")[:SHOWN])[::-1]
    labels = [w.start.strftime("%m-%d %H:%M") for w in windows]
    pictures = {}
    if windows:
        pictures["volume"] = charts.lines(
            labels, {"transactions": [w.transactions for w in windows]}, title="Transactions", y_label="per window"
        )
        pictures["alert_rate"] = charts.lines(
            labels,
            {
                "alert rate": [w.alert_rate for w in windows],
                "expected": [item.reference.get("alert_rate") for _ in windows] if item.reference else [],
            },
            title="Alert rate",
            y_label="share of transactions",
        )
        pictures["quantiles"] = charts.lines(
            labels,
            {q: [w.score_quantiles.get(q) for w in windows] for q in ("p50", "p90", "p99")},
            title="Score quantiles",
            y_label="fraud probability",
        )
        pictures["psi"] = charts.lines(
            labels,
            {"score": [w.score_psi for w in windows], "worst feature": [w.top_feature_psi for w in windows]},
            title="Drift (PSI against training)",
            y_label="PSI",
        )
        pictures["precision"] = charts.lines(
            labels, {"precision": [w.precision for w in windows]}, title="Precision of decided alerts", y_label="share"
        )
        measured = next((w for w in reversed(windows) if w.feature_psi), None)
        if measured is not None:
            top = sorted(measured.feature_psi.items(), key=lambda pair: -pair[1])[:10]
            title = f"Most drifting features from {measured.start:%m-%d %H:%M} (PSI)"
            pictures["features"] = charts.bars(top, title=title, signed=False)
    context = {
        "item": item,
        "role": role,
        "state": monitoring.state(item, role),
        "windows": windows[::-1][:12],
        "pictures": pictures,
        "minutes": monitoring.window_minutes(),
        "drift": ModelEvent.objects.filter(kind=ModelEvent.Kind.DRIFT, to_version=item)[:10],
    }
    return render(request, "detection/monitoring_version.html", context)
