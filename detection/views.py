"""HTML pages of the detection app: scoring a transaction or a file, and the review queue."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from common import charts
from common.access import requires
from modelops.models import ModelVersion

from . import parsing, reviews, selectors
from .auth import client_of
from .errors import MODEL_ERRORS, model_unavailable
from .forms import BulkDecisionForm, DecisionForm, QueueFilter, ScoreFileForm
from .models import Transaction
from .services import score_csv, score_transactions

EXAMPLE = {
    "Time": 0,
    **{f"V{i}": 0.0 for i in range(1, 29)},
    "Amount": 10.0,
}


analyst_required = requires("detection.review_transaction")


@analyst_required
def score_form(request):
    """Paste a transaction (JSON, as the API takes it) and see the decision."""
    text = request.POST.get("transaction", "") if request.method == "POST" else json.dumps(EXAMPLE, indent=1)
    context: dict = {"text": text}
    if request.method == "POST":
        try:
            batch, is_list = parsing.parse(parsing.decode(text))
            if is_list:
                raise parsing.InvalidInput("paste one transaction; send lists to POST /detect-fraud")
            context["result"] = score_transactions(
                batch=batch, source=Transaction.Source.FORM, client=client_of(request)
            )[0]
        except parsing.InvalidInput as exc:
            context["error"] = exc.detail
        except MODEL_ERRORS as exc:
            context["error"] = model_unavailable(exc, request)[0]
    status = 400 if "error" in context else 200
    return render(request, "detection/score_form.html", context, status=status)


@analyst_required
def score_file(request):
    """Upload a CSV of transactions, download it scored (the same scoring as the API)."""
    form = ScoreFileForm(request.POST or None, request.FILES or None)
    error = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        max_rows = settings.SCORING_UPLOAD_MAX_ROWS
        try:
            # Refused unread: a file this large cannot be within the row limit.
            if upload.size > max_rows * 1_000:
                raise parsing.InvalidInput(
                    f"the file is {upload.size:,} bytes; at most {max_rows:,} rows are scored at once"
                )
            scored = score_csv(data=upload.read(), max_rows=max_rows, client=client_of(request))
        except parsing.InvalidInput as exc:
            error = exc.detail
        except MODEL_ERRORS as exc:
            error = model_unavailable(exc, request)[0]
        else:
            name = upload.name.rsplit("/", 1)[-1].removesuffix(".csv")
            response = HttpResponse(scored, content_type="text/csv; charset=utf-8")
            # The helper quotes and encodes the client's file name: never format it in by hand.
            response["Content-Disposition"] = content_disposition_header(True, f"{name}-scored.csv")
            return response
    status = 400 if error or form.errors else 200
    return render(request, "detection/score_file.html", {"form": form, "error": error}, status=status)


@analyst_required
def queue(request):
    """Flagged transactions awaiting review, highest score first, with filters."""
    form = QueueFilter(request.GET)
    page, next_query = [], None
    if form.is_valid():
        filters = form.cleaned_data
        page, cursor = selectors.queue_page(filters=filters, after=filters.get("after"), size=filters["per_page"])
        if cursor:
            query = request.GET.copy()
            query["after"] = cursor
            next_query = query.urlencode()
    context = {
        "form": form,
        "page": page,
        "next_query": next_query,
        "first_query": _without(request.GET, "after"),
        "counts": reviews.counts(),
        "versions": ModelVersion.objects.values_list("version", flat=True),
        "here": request.get_full_path(),
        "labels": Transaction.Label,
    }
    return render(request, "detection/queue.html", context, status=200 if form.is_valid() else 400)


def _without(query, name: str) -> str:
    query = query.copy()
    query.pop(name, None)
    return query.urlencode()


@analyst_required
def transaction_page(request, pk: int):
    """One transaction: its features, score, the version that scored it, why, and its reviews."""
    item = get_object_or_404(Transaction, pk=pk)
    prediction = item.predictions.primary().select_related("model_version").first()
    contributions = prediction.contributions if prediction else []
    chart = charts.bars(
        [(c["feature"], c["contribution"]) for c in contributions],
        title="What moved the score (log-odds contributions)",
        signed=True,
    )
    context = {
        "item": item,
        "prediction": prediction,
        "chart": chart,
        "reviews": item.reviews.all(),
        "form": DecisionForm(),
        "next": _safe_next(request),
        "labels": Transaction.Label,
    }
    return render(request, "detection/transaction.html", context)


@require_POST
@analyst_required
def decide(request, pk: int):
    """Record a decision on one transaction, then go back where the analyst came from."""
    _record(request, DecisionForm(request.POST), ids=[pk])
    return redirect(_safe_next(request) or reverse("transaction", args=[pk]))


@require_POST
@analyst_required
def decide_many(request):
    """The same decision on every selected transaction of the queue."""
    form = BulkDecisionForm(request.POST)
    _record(request, form, ids=None)
    return redirect(_safe_next(request) or reverse("queue"))


def _record(request, form: DecisionForm, *, ids: list[int] | None) -> None:
    """Record the form's decision on ``ids`` (or the form's own ids) and say what happened."""
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return
    ids = ids if ids is not None else form.cleaned_data["ids"]
    try:
        recorded = reviews.decide(
            transaction_ids=ids, label=form.cleaned_data["label"], note=form.cleaned_data["note"], user=request.user
        )
    except reviews.ReviewError as exc:
        messages.error(request, str(exc))
        return
    label = Transaction.Label(form.cleaned_data["label"]).label
    if not recorded:
        messages.info(request, "Already recorded: nothing changed.")
    elif len(ids) == 1:
        messages.success(request, f"Transaction {ids[0]} marked {label}.")
    else:
        messages.success(request, f"{recorded} transaction(s) marked {label}.")


def _safe_next(request) -> str | None:
    """The page to return to, if it is one of ours (never an open redirect)."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return None
