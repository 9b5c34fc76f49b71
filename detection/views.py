"""HTML pages of the detection app."""

from __future__ import annotations

import json

from django.shortcuts import render

from modelops.ml.artifact import ArtifactError
from modelops.model_cache import NoActiveModel

from . import parsing
from .errors import NO_MODEL_MESSAGE
from .models import Transaction
from .services import score_transactions

EXAMPLE = {
    "Time": 0,
    **{f"V{i}": 0.0 for i in range(1, 29)},
    "Amount": 10.0,
}


def score_form(request):
    """Paste a transaction (JSON, as the API takes it) and see the decision."""
    text = request.POST.get("transaction", "") if request.method == "POST" else json.dumps(EXAMPLE, indent=1)
    context: dict = {"text": text}
    if request.method == "POST":
        try:
            batch, is_list = parsing.parse(parsing.decode(text))
            if is_list:
                raise parsing.InvalidInput("paste one transaction; send lists to POST /detect-fraud")
            context["result"] = score_transactions(batch=batch, source=Transaction.Source.FORM)[0]
        except parsing.InvalidInput as exc:
            context["error"] = exc.detail
        except (NoActiveModel, ArtifactError) as exc:
            context["error"] = {"message": NO_MODEL_MESSAGE if isinstance(exc, NoActiveModel) else str(exc)}
    status = 400 if "error" in context else 200
    return render(request, "detection/score_form.html", context, status=status)
