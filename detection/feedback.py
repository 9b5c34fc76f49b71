"""Analysts' labels as training rows for the next retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelops.ml.schema import COLUMNS, LABEL

from .models import Transaction


def labelled_rows() -> pd.DataFrame:
    """Every labelled transaction (fraud = 1, legitimate = 0), oldest first."""
    rows = (
        Transaction.objects.filter(label__isnull=False)
        .order_by("created_at", "id")
        .values_list("time", "v", "amount", "label")
    )
    values = [(time, *v, amount, 1 if label == Transaction.Label.FRAUD else 0) for time, v, amount, label in rows]
    frame = pd.DataFrame(np.array(values, dtype=np.float64).reshape(-1, len(COLUMNS)), columns=list(COLUMNS))
    frame[LABEL] = frame[LABEL].astype(np.int8)
    return frame
