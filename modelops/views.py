"""HTML pages of model operations: versions, their evaluation, activation, rollback and shadowing,
data files and training runs. Reading needs the view permissions (the Analysts group has them);
activating, rolling back or shadowing needs ``modelops.activate_modelversion`` (Model managers)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from common import charts
from common.access import requires

from .models import DataFile, ModelEvent, ModelVersion, TrainingRun
from .services import deployments
from .services.training_runs import crash_loop


@requires("modelops.view_modelversion")
def version_list(request):
    context = {
        "versions": ModelVersion.objects.select_related("parent", "training_run", "deployment"),
        "events": ModelEvent.objects.select_related("from_version", "to_version")[:20],
        "can_activate": request.user.has_perm("modelops.activate_modelversion"),
    }
    return render(request, "modelops/version_list.html", context)


@requires("modelops.view_modelversion")
def version_page(request, version: int):
    item = get_object_or_404(
        ModelVersion.objects.select_related("parent", "training_run", "deployment"), version=version
    )
    metrics = item.metrics or {}
    pictures = {}
    curve = metrics.get("pr_curve")
    if curve:
        at = (metrics["recall"], metrics["precision"]) if "recall" in metrics else None
        pictures["pr_curve"] = charts.pr_curve(curve["recall"], curve["precision"], at=at)
    if metrics.get("confusion"):
        pictures["confusion"] = charts.confusion_matrix(**metrics["confusion"])
    histogram = metrics.get("score_histogram")
    if histogram:
        pictures["histogram"] = charts.histogram(
            histogram["edges"],
            {"legitimate": histogram["legit"], "fraud": histogram["fraud"]},
            {"legitimate": charts.LEGIT_COLOUR, "fraud": charts.FRAUD_COLOUR},
        )
    # Average gain per split of each feature, recorded by the training (no artifact to read).
    importance = item.params.get("feature_importance") or {}
    total = sum(importance.values())
    if total > 0:
        shares = sorted(((name, gain / total) for name, gain in importance.items()), key=lambda pair: -pair[1])
        pictures["importance"] = charts.bars(
            [pair for pair in shares[:15] if pair[1] > 0], title="Feature importance (share of gain)", signed=False
        )
    active = ModelVersion.objects.primary().first()
    manager = request.user.has_perm("modelops.activate_modelversion")
    context = {
        "item": item,
        "metrics": metrics,
        "pictures": pictures,
        "params": {key: value for key, value in item.params.items() if key != "feature_importance"},
        "run": item.training_run,
        "data_files": item.data_files.all(),
        "events": ModelEvent.objects.filter(Q(from_version=item) | Q(to_version=item)).select_related(
            "from_version", "to_version"
        ),
        "active": active,
        "can_activate": manager and item.pk != getattr(active, "pk", None),
        "can_shadow": manager and item.role is None,
        "was_shadow": ModelEvent.objects.filter(kind=ModelEvent.Kind.SHADOW, to_version=item).exists(),
        "can_backtest": manager,
        "backtests": item.backtests.all()[:20],
    }
    return render(request, "modelops/version.html", context)


def _change(request, change, item: ModelVersion):
    """A deployment change asked for on these pages, audited under the signed-in user with their reason."""
    return change(
        version_id=item.pk,
        actor=request.user.get_username(),
        user=request.user,
        reason=request.POST.get("reason", "").strip() or "from the model pages",
    )


@requires("modelops.activate_modelversion")
def activate(request, version: int):
    """GET: what would change, and a reason to give. POST: activate (or roll back to) it."""
    item = get_object_or_404(ModelVersion, version=version)
    active = ModelVersion.objects.primary().first()
    if request.method == "POST":
        try:
            _change(request, deployments.activate_version, item)
        except deployments.ActivationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"v{item.version} is now active; every worker serves it from its next request.")
        return redirect("model-version", version=item.version)
    rollback = active is not None and item.version < active.version
    return render(request, "modelops/activate.html", {"item": item, "active": active, "rollback": rollback})


@requires("modelops.activate_modelversion")
def start_shadow(request, version: int):
    """GET: what shadowing means, and a reason to give. POST: put the version into shadow."""
    item = get_object_or_404(ModelVersion, version=version)
    if request.method == "POST":
        try:
            _change(request, deployments.deploy_shadow, item)
        except (deployments.ShadowError, deployments.ActivationUnavailable) as exc:
            messages.error(request, str(exc))
            return redirect("model-version", version=item.version)
        messages.success(request, f"v{item.version} is in shadow: it scores the traffic stored from now on.")
        return redirect("shadow", version=item.version)
    return render(request, "modelops/start_shadow.html", {"item": item, "primary": deployments.primary_version()})


@require_POST
@requires("modelops.activate_modelversion")
def stop_shadow(request, version: int):
    item = get_object_or_404(ModelVersion, version=version)
    try:
        _change(request, deployments.stop_shadow, item)
    except deployments.ShadowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"v{item.version} is no longer in shadow; the scores it made are kept.")
    return redirect("model-version", version=item.version)


@requires("modelops.view_datafile")
def data_files(request):
    status = request.GET.get("status", "")
    files = DataFile.objects.all()
    if status in DataFile.Status.values:
        files = files.filter(status=status)
    page = Paginator(files, 50).get_page(request.GET.get("page"))
    return render(request, "modelops/data_files.html", {"page": page, "status": status, "statuses": DataFile.Status})


@requires("modelops.view_trainingrun")
def training_runs(request):
    page = Paginator(TrainingRun.objects.select_related("result_version"), 25).get_page(request.GET.get("page"))
    return render(request, "modelops/training_runs.html", {"page": page, "paused": crash_loop()})
