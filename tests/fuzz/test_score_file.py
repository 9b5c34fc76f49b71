"""/score-file/ with any upload: the file back scored, a row stored for each of its rows, or a
400 that names the problem and stores nothing; never a 500, and in time linear in its size."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import strategies as st

from detection.models import Transaction
from fuzz import data_file
from fuzz.harness import Budget

from .strategies import mutated

pytestmark = pytest.mark.fuzz
BUDGET = Budget(constant=3.0, per_byte=50e-6)

files = st.one_of(
    mutated(data_file.seeds(), data_file.mutate, data_file.MAX_LEN),
    st.binary(max_size=512),
)
names = st.sampled_from(["batch.csv", "relevé €.csv", "../../x.csv", "a" * 300 + ".csv", ".csv", "x\r\n.csv"])


def test_any_upload_comes_back_scored_or_is_refused_and_stores_nothing(analyst_client, active_version, fuzz):
    def check(upload: tuple[bytes, str]) -> None:
        content, name = upload
        before = Transaction.objects.count()
        response = analyst_client.post("/score-file/", {"file": SimpleUploadedFile(name, content)})
        added = Transaction.objects.count() - before
        assert response.status_code in (200, 400), f"{response.status_code} for {content[:300]!r}"
        if response.status_code == 400:
            assert added == 0, f"a refused file stored {added} rows: {content[:300]!r}"
            error = response.context["error"]
            assert error or response.context["form"].errors
            return
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert len(rows) == added > 0
        assert {int(row["transaction_id"]) for row in rows} == set(
            Transaction.objects.order_by("-pk").values_list("pk", flat=True)[:added]
        )

    fuzz(check, st.tuples(files, names), BUDGET, size=lambda upload: len(upload[0]))
