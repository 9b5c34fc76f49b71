"""Analysts' labels as training rows for the next retrain."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from django.db.models import Min

from modelops.ml.schema import COLUMNS, LABEL

from .models import Transaction


def labelled_rows(newer_than: datetime | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every labelled transaction (fraud = 1), oldest first, and whether its first decision came
    after ``newer_than`` (all when None): one decided before may be in a model's training data."""
    rows = (
        Transaction.objects.filter(label__isnull=False)
        .annotate(first_decision=Min("reviews__created_at"))
        .order_by("created_at", "id")
        .values_list("time", "v", "amount", "label", "first_decision")
    )
    values, fresh = [], []
    for time, v, amount, label, first_decision in rows:
        values.append((time, *v, amount, 1 if label == Transaction.Label.FRAUD else 0))
        # A label without a recorded decision counts as seen, so it cannot leak into a hold-out.
        fresh.append(newer_than is None or (first_decision is not None and first_decision > newer_than))
    frame = pd.DataFrame(np.array(values, dtype=np.float64).reshape(-1, len(COLUMNS)), columns=list(COLUMNS))
    frame[LABEL] = frame[LABEL].astype(np.int8)
    return frame, np.array(fresh, dtype=bool)
