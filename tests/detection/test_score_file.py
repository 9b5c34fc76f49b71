"""Scoring a CSV file from the page: the same scoring as the API, a scored file back."""

from __future__ import annotations

import csv
import io
import time

from django.core.files.uploadedfile import SimpleUploadedFile

from detection.models import Prediction, Transaction
from modelops.ml import synthetic


def upload(client, content: bytes, name: str = "batch.csv"):
    return client.post("/score-file/", {"file": SimpleUploadedFile(name, content, content_type="text/csv")})


def test_a_file_comes_back_scored_and_is_stored(analyst_client, active_version, tmp_path):
    frame = synthetic.generate(rows=200, fraud_rate=0.05, seed=3)
    path = tmp_path / "batch.csv"
    synthetic.write_csv(frame, path)  # with its Class column, which scoring ignores
    response = upload(analyst_client, path.read_bytes())
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="batch-scored.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 200
    assert Transaction.objects.filter(source="upload").count() == 200
    first = Prediction.objects.get(transaction_id=int(rows[0]["transaction_id"]))
    assert float(rows[0]["fraud_probability"]) == round(first.score, 6)
    assert rows[0]["model_version"] == str(active_version.version)
    assert float(rows[0]["Amount"]) == frame["Amount"].iloc[0]
    flagged = sum(int(r["is_fraud"]) for r in rows)
    assert flagged == Prediction.objects.filter(is_fraud=True).count() > 0


def test_a_file_name_outside_latin_1_still_comes_back_as_an_attachment(analyst_client, active_version, tmp_path):
    path = tmp_path / "batch.csv"
    synthetic.write_csv(synthetic.generate(rows=20, fraud_rate=0.1, seed=3), path)
    response = upload(analyst_client, path.read_bytes(), name="relevé_€.csv")
    assert response.status_code == 200
    # Written by hand, the header became one RFC 2047 word, no longer a Content-Disposition.
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''relev%C3%A9_%E2%82%AC-scored.csv"


def test_a_bad_file_is_refused_with_its_line_and_nothing_is_stored(analyst_client, active_version, tmp_path):
    frame = synthetic.generate(rows=20, fraud_rate=0.1, seed=3)
    path = tmp_path / "batch.csv"
    synthetic.write_csv(frame, path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[4].split(",")
    cells[header.index("V3")] = "oops"
    lines[4] = ",".join(cells)
    response = upload(analyst_client, "\n".join(lines).encode())
    assert response.status_code == 400
    assert "line 5: column V3 is not a number" in response.content.decode()
    assert Transaction.objects.count() == 0


def test_a_first_row_wider_than_the_header_is_refused_quickly_with_its_line(analyst_client, active_version, tmp_path):
    path = tmp_path / "batch.csv"
    synthetic.write_csv(synthetic.generate(rows=5, fraud_rate=0.2, seed=3), path)
    header, *rows = path.read_text().splitlines()
    # One 4 MB first row: pandas took its extra cells as an index, for long enough to time out.
    wide = ",".join(["1.25"] * 800_000)
    started = time.monotonic()
    response = upload(analyst_client, "\n".join([header, wide, *rows]).encode())
    assert response.status_code == 400
    assert "line 2: over 13083 cells, expected 31" in response.content.decode()
    assert time.monotonic() - started < 5
    assert Transaction.objects.count() == 0


def test_a_file_over_the_row_limit_is_refused(analyst_client, active_version, tmp_path, settings):
    settings.SCORING_UPLOAD_MAX_ROWS = 10
    path = tmp_path / "batch.csv"
    synthetic.write_csv(synthetic.generate(rows=11, fraud_rate=0.1, seed=3), path)
    response = upload(analyst_client, path.read_bytes())
    assert response.status_code == 400
    assert "at most 10 rows can be scored" in response.content.decode()
    assert Transaction.objects.count() == 0


def test_scoring_a_file_without_a_model_says_so(analyst_client, tmp_path):
    path = tmp_path / "batch.csv"
    synthetic.write_csv(synthetic.generate(rows=5, fraud_rate=0.2, seed=3), path)
    response = upload(analyst_client, path.read_bytes())
    assert response.status_code == 400
    assert "no model is active" in response.content.decode()


def test_the_upload_is_csrf_protected(analyst, active_version, tmp_path):
    from django.test import Client

    path = tmp_path / "batch.csv"
    synthetic.write_csv(synthetic.generate(rows=5, fraud_rate=0.2, seed=3), path)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    assert upload(strict, path.read_bytes()).status_code == 403
    assert Transaction.objects.count() == 0


def test_a_file_without_the_class_column_is_scored(analyst_client, active_version, tmp_path):
    frame = synthetic.generate(rows=30, fraud_rate=0.1, seed=4).drop(columns=["Class"])
    response = upload(analyst_client, frame.to_csv(index=False).encode())
    assert response.status_code == 200
    assert len(response.content.decode().splitlines()) == 31
    assert Transaction.objects.count() == 30
