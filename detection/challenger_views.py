"""Pages of challengers: a shadow against the primary on live traffic, backtests of a version on a
window of stored transactions, and two backtests side by side."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib import messages
from django.db.models import Max
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from common import charts
from common.access import requires
from modelops.models import Deployment, ModelVersion

from . import backtests, shadow_scoring, stored_rows, tasks
from .comparison import SCORE_BINS, Comparison
from .models import Backtest, Prediction

PAGE_CHUNK = 20_000
STORED, CHALLENGER = "stored decisions", "this version"
COLOURS = {STORED: charts.LINE_COLOUR, CHALLENGER: "#8e44ad"}


def _pictures(figures: dict) -> dict:
    if not figures.get("transactions"):
        return {}
    days = list(figures["per_day"])
    per_day = figures["per_day"].values()
    edges = [i / SCORE_BINS for i in range(SCORE_BINS + 1)]
    stored, challenger = figures["histograms"]
    return {
        "alerts": charts.daily_counts(
            days,
            {STORED: [row[1] for row in per_day], CHALLENGER: [row[2] for row in per_day]},
            COLOURS,
            title="Alerts per day",
        ),
        "scores": charts.histogram(
            edges, {STORED: stored, CHALLENGER: challenger}, COLOURS, title="Scores of the same transactions"
        ),
    }


@requires("modelops.view_modelversion")
def shadow_page(request, version: int):
    item = get_object_or_404(ModelVersion.objects.select_related("deployment"), version=version)
    shadow = Prediction.objects.filter(model_version=item, role=Prediction.Role.SHADOW)
    last = shadow.aggregate(last=Max("transaction_id"))["last"]
    comparison = Comparison()
    if last is not None:
        after = max(0, last - settings.SHADOW_PAGE_ROWS)
        while True:
            after, chunk = stored_rows.read_pairs(item.pk, after=after, through=last, size=PAGE_CHUNK)
            if not chunk:
                break
            comparison.add(**chunk)
    figures = comparison.figures()
    in_shadow = item.role == Deployment.Role.SHADOW
    context = {
        "item": item,
        "label": f"v{item.version}",
        "figures": figures,
        "pictures": _pictures(figures),
        "lag": shadow_scoring.lag(item.deployment) if in_shadow else None,
        "in_shadow": in_shadow,
        "window": settings.SHADOW_PAGE_ROWS,
        "primary": ModelVersion.objects.primary().first(),
        "can_manage": request.user.has_perm("modelops.activate_modelversion"),
    }
    return render(request, "detection/shadow.html", context)


@require_POST
@requires("modelops.activate_modelversion")
def start_backtest(request, version: int):
    item = get_object_or_404(ModelVersion, version=version)
    try:
        first, last = date.fromisoformat(request.POST.get("from", "")), date.fromisoformat(request.POST.get("to", ""))
    except ValueError:
        messages.error(request, "Give the first and last day of the window as YYYY-MM-DD.")
        return redirect("model-version", version=item.version)
    if last < first:
        messages.error(request, "The last day is before the first.")
        return redirect("model-version", version=item.version)
    since, until = backtests.window(first, last)
    backtest = backtests.create(version=item, since=since, until=until, requested_by=request.user.get_username())
    tasks.enqueue_backtest(backtest.pk)
    return redirect("backtest", pk=backtest.pk)


@requires("modelops.view_modelversion")
def backtest_page(request, pk: int):
    backtest = get_object_or_404(Backtest.objects.select_related("version"), pk=pk)
    others = (
        Backtest.objects.filter(since=backtest.since, until=backtest.until, status=Backtest.Status.DONE)
        .exclude(pk=backtest.pk)
        .select_related("version")
    )
    context = {
        "backtest": backtest,
        "figures": backtest.figures,
        "pictures": _pictures(backtest.figures),
        "others": others,
        "can_manage": request.user.has_perm("modelops.activate_modelversion"),
    }
    return render(request, "detection/backtest.html", context)


@require_POST
@requires("modelops.activate_modelversion")
def resume_backtest(request, pk: int):
    backtest = get_object_or_404(Backtest, pk=pk)
    if backtest.status != Backtest.Status.DONE:
        tasks.enqueue_backtest(backtest.pk)
        messages.success(request, f"Backtest {backtest.pk} is queued again; it goes on from where it stopped.")
    return redirect("backtest", pk=backtest.pk)


@requires("modelops.view_modelversion")
def backtest_csv(request, pk: int):
    backtest = get_object_or_404(Backtest, pk=pk)
    response = StreamingHttpResponse(backtests.csv_lines(backtest), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="backtest-{backtest.pk}.csv"'
    return response


@requires("modelops.view_modelversion")
def compare_backtests(request):
    chosen = []
    for key in ("a", "b"):
        value = request.GET.get(key, "")
        chosen.append(
            get_object_or_404(Backtest.objects.select_related("version"), pk=int(value) if value.isdigit() else 0)
        )
    return render(request, "detection/backtest_compare.html", {"backtests": chosen})
