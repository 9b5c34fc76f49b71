"""Analysts' labels as training rows for the next retrain."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from modelops.ml.schema import COLUMNS, LABEL

from .models import Transaction


def labelled_rows(newer_than: datetime | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every labelled transaction (fraud = 1, legitimate = 0), oldest first, and for each whether
    its latest decision came after ``newer_than`` (all of them when it is None)."""
    rows = (
        Transaction.objects.filter(label__isnull=False)
        .order_by("created_at", "id")
        .values_list("time", "v", "amount", "label", "reviewed_at")
    )
    values, fresh = [], []
    for time, v, amount, label, reviewed_at in rows:
        values.append((time, *v, amount, 1 if label == Transaction.Label.FRAUD else 0))
        # A decision without a time (none is recorded so) counts as seen: it can never leak a
        # row a model learned from into a hold-out.
        fresh.append(newer_than is None or (reviewed_at is not None and reviewed_at > newer_than))
    frame = pd.DataFrame(np.array(values, dtype=np.float64).reshape(-1, len(COLUMNS)), columns=list(COLUMNS))
    frame[LABEL] = frame[LABEL].astype(np.int8)
    return frame, np.array(fresh, dtype=bool)
