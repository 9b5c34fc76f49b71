"""Batch jobs: a large batch validated whole and stored in the request, scored by a task chunk by
chunk off the request path, each row stored once even when a run dies half-way, its results read
back in input order, a page at a time or as CSV, by the client that sent it only."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid

import pytest
import yaml
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from jsonschema import Draft202012Validator

from detection import batches, parsing, shadow_scoring, tasks
from detection.auth import create_key
from detection.models import BatchChunk, BatchJob, Prediction, Transaction
from modelops.ml import schema, synthetic
from modelops.ml.schema import FEATURES
from modelops.models import Deployment
from modelops.services import versions

JSON = "application/json"


@pytest.fixture(autouse=True)
def sync_cluster(monkeypatch):
    """The task cluster's sync mode: a queued task runs at once, in this process and transaction."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def rows() -> list[dict]:
    """600 generated transactions as clients post them (numbers; some V-values as strings)."""
    frame = synthetic.generate(rows=600, fraud_rate=0.05, seed=11)[list(FEATURES)]
    items = [{name: float(value) for name, value in row.items()} for row in frame.to_dict("records")]
    for item in items[::7]:
        item["V2"] = repr(item["V2"])  # as the original client sent them
    return items


def post(client, body, *, content_type: str = JSON, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/batches", data=data, content_type=content_type, headers=headers)


def submit(client, body, *, run: bool = True, content_type: str = JSON, **headers):
    """POST a batch and, when ``run``, let its queued task run (as the cluster would after commit)."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=run) as queued:
        response = post(client, body, content_type=content_type, **headers)
    return response, queued


def every_result(client, job_id: str, *, page_size: int = 1_000, **headers) -> list[dict]:
    found, url = [], f"/api/batches/{job_id}/results?page_size={page_size}"
    while url:
        body = client.get(url, headers=headers).json()
        found.extend(body["results"])
        url = body["next"]
    return found


def stale(job_id) -> None:
    """As if the job's last progress were long ago: its run died, by all the next run can tell."""
    BatchJob.objects.filter(pk=job_id).update(progress_at=timezone.now() - timezone.timedelta(hours=1))


# --- Accepting a job ------------------------------------------------------------------------


def test_a_batch_is_accepted_with_202_stored_in_chunks_and_queued_not_scored(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 250
    response, queued = submit(client, rows, run=False)

    assert response.status_code == 202, response.content
    body = response.json()
    job_id = uuid.UUID(body["id"])  # a uuid: unguessable
    assert response["Location"] == body["status_url"] == f"http://testserver/api/batches/{job_id}"
    assert body["results_url"] == f"http://testserver/api/batches/{job_id}/results"
    assert (body["status"], body["rows_total"], body["rows_scored"], body["error"]) == ("queued", 600, 0, None)
    assert body["started_at"] is None and body["finished_at"] is None
    # Stored durably, in chunks of BATCH_CHUNK_ROWS; one task queued; nothing scored in the request.
    chunks = BatchChunk.objects.filter(job_id=job_id).order_by("number")
    assert [(c.number, c.first_row, c.rows) for c in chunks] == [(0, 0, 250), (1, 250, 250), (2, 500, 100)]
    assert len(queued) == 1
    assert Transaction.objects.count() == 0


def test_the_task_scores_every_row_as_the_list_form_of_detect_fraud_does(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 250
    response, _ = submit(client, rows)
    job_id = response.json()["id"]

    status = client.get(f"/api/batches/{job_id}").json()
    assert (status["status"], status["rows_total"], status["rows_scored"], status["error"]) == ("done", 600, 600, None)
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]
    job = BatchJob.objects.get(pk=job_id)
    assert (job.chunks_done, job.chunks_total, job.attempts) == (3, 3, 0)
    # Ordinary transactions, each with the primary's prediction, its version and contributions.
    stored = Transaction.objects.filter(source=Transaction.Source.BATCH)
    assert stored.count() == 600 == Transaction.objects.count()
    predictions = Prediction.objects.primary().filter(transaction__in=stored)
    assert predictions.count() == 600
    assert {p.model_version_id for p in predictions} == {active_version.pk}
    assert all(len(p.contributions) == 5 for p in predictions)
    # Once scored, a chunk keeps its answers, not its features (the transactions hold them).
    assert set(BatchChunk.objects.filter(job_id=job_id).values_list("values", flat=True)) == {b""}


def test_results_are_in_input_order_and_equal_to_scoring_the_rows_through_detect_fraud(
    client, active_version, rows, settings
):
    settings.BATCH_CHUNK_ROWS = 70  # several chunks, each past the tree walk's 16 rows
    response, _ = submit(client, rows)
    results = every_result(client, response.json()["id"])

    assert [r["row"] for r in results] == list(range(600))
    direct = client.post("/detect-fraud", json.dumps(rows), content_type=JSON).json()
    assert len(direct) == 600
    ignored = {"row", "transaction_id"}
    assert [{k: v for k, v in r.items() if k not in ignored} for r in results] == [
        {k: v for k, v in d.items() if k != "transaction_id"} for d in direct
    ]
    # Each result names the stored row of its own input row.
    stored = Transaction.objects.in_bulk([r["transaction_id"] for r in results])
    assert len(stored) == 600
    for result, item in zip(results, rows, strict=True):
        assert stored[result["transaction_id"]].feature_row() == [float(item[name]) for name in FEATURES]


# --- Refusals -------------------------------------------------------------------------------


def nothing_stored() -> bool:
    return not (BatchJob.objects.exists() or BatchChunk.objects.exists() or Transaction.objects.exists())


def test_a_bad_row_gets_400_naming_it_field_and_reason_and_nothing_is_stored(client, active_version, rows):
    del rows[7]["V3"]
    rows[420]["Amount"] = -5
    rows[421]["external_id"] = "\x00"
    response, queued = submit(client, rows)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == "3 of 600 transactions are invalid (first: index 7)"
    assert error["items"] == [
        {"index": 7, "fields": {"V3": "is required"}},
        {"index": 420, "fields": {"Amount": "must be between 0 and 1e+09"}},
        {"index": 421, "fields": {"external_id": "must be printable text (no control characters or lone surrogates)"}},
    ]
    assert nothing_stored() and not queued


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is not valid JSON"),
        (b"[]", "the list of transactions is empty"),
        (json.dumps({"Time": 1}).encode(), "the body must be a JSON list of transactions, or a CSV file"),
        (b"[1, 2", "the body is not valid JSON"),
    ],
)
def test_a_body_that_is_no_list_of_transactions_gets_400(client, active_version, body, message):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)
    assert nothing_stored()


def csv_body(rows: int, *, seed: int = 5) -> bytes:
    out = io.StringIO()
    synthetic.generate(rows=rows, fraud_rate=0.05, seed=seed).to_csv(out, index=False)  # with Class, ignored
    return out.getvalue().encode()


def test_a_bad_csv_line_gets_400_naming_the_line_field_and_reason_as_the_score_file_page_does(client, active_version):
    lines = csv_body(30).decode().splitlines()
    header = lines[0].split(",")
    cells = lines[12].split(",")
    cells[header.index("V3")] = "oops"
    lines[12] = ",".join(cells)
    response = post(client, "\n".join(lines), content_type="text/csv")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "the file cannot be scored: line 13: column V3 is not a number: 'oops'"
    assert error["line"] == 13
    assert nothing_stored()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" + b"[]," * 200_000 + b"[]]", JSON),  # decoded, each empty list is tens of bytes
        (b"[" + b"1," * 200_000 + b"1]", JSON),
        (",".join(FEATURES).encode() + b"\n" + b"0\n" * 200_000, "text/csv"),
    ],
)
def test_a_body_of_too_many_small_values_is_refused_before_it_is_decoded(
    client, active_version, settings, monkeypatch, body, content_type
):
    settings.BATCH_MAX_ROWS = 100
    settings.BATCH_MAX_BYTES = 10_000_000

    def never(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(parsing, "decode", never)
    monkeypatch.setattr(schema, "read_training_csv", never)
    response = post(client, body, content_type=content_type)
    assert response.status_code == 413, response.content
    assert nothing_stored()


def test_a_job_the_broker_cannot_take_is_still_accepted_and_the_sweep_queues_it(
    client, active_version, rows, settings, monkeypatch, caplog
):
    # An error here would make a client post the job again and every row be stored twice.
    def broker_down(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(tasks, "async_task", broker_down)
    response, _ = submit(client, rows[:20])
    assert response.status_code == 202
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.QUEUED
    assert "could not be queued" in caplog.text
    settings.BATCH_STALL_SECONDS = 0
    assert batches.stalled() == [job.pk]


def test_limits_of_rows_and_bytes_get_413_and_store_nothing(client, active_version, rows, settings):
    settings.BATCH_MAX_ROWS = 100
    settings.SCORING_MAX_BATCH = 10  # the request's own limit does not apply to jobs
    response = post(client, rows[:101])
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": "a batch job holds at most 100 transactions (BATCH_MAX_ROWS), this body has 101 objects or lists",
    }
    response = post(client, csv_body(101), content_type="text/csv")
    assert response.status_code == 413
    assert (
        response.json()["error"]["message"]
        == "the file has 101 lines after its header; at most 100 rows can be scored at once"
    )
    settings.BATCH_MAX_BYTES = 1_000
    response = post(client, rows[:2])
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "the body is over 1000 bytes (BATCH_MAX_BYTES)"
    assert nothing_stored()
    settings.BATCH_MAX_BYTES = 1_000_000
    assert submit(client, rows[:100])[0].status_code == 202


def test_a_chunked_body_without_a_length_gets_411(client, active_version, rows):
    response = client.post(
        "/api/batches",
        data=json.dumps(rows[:3]),
        content_type=JSON,
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert nothing_stored()


def test_without_an_active_model_a_batch_gets_503_and_nothing_is_stored(client, db, rows):
    response = post(client, rows[:3])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_active_model"
    assert nothing_stored()


# --- External ids ---------------------------------------------------------------------------


def test_external_ids_follow_the_rules_of_detect_fraud(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 20
    for i, item in enumerate(rows[:50]):
        item["external_id"] = f"card-{i}"
    earlier = client.post("/detect-fraud", json.dumps(rows[3]), content_type=JSON).json()
    # The same id with other features, in the batch or stored before: 409, nothing stored.
    other = {**rows[3], "V4": 1.5}
    response, _ = submit(client, [*rows[:50], other])
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "external_id_conflict"
    assert error["items"] == [{"index": 50, "fields": {"external_id": error["items"][0]["fields"]["external_id"]}}]
    assert "'card-3' was scored before with other features" in error["items"][0]["fields"]["external_id"]
    response, _ = submit(client, [*rows[4:10], {**rows[3], "V4": 1.5}])
    assert response.status_code == 409
    assert [item["index"] for item in response.json()["error"]["items"]] == [6]
    assert not BatchJob.objects.exists() and Transaction.objects.count() == 1

    # The same id with the same features: the stored result, as /detect-fraud answers a repeat;
    # a repeat within the job (here in a later chunk) is stored once, too.
    response, _ = submit(client, [*rows[:50], rows[10]])
    results = every_result(client, response.json()["id"])
    assert results[3] == {"row": 3, **earlier, "repeated": True}
    assert results[50]["repeated"] is True and results[50]["transaction_id"] == results[10]["transaction_id"]
    assert results[10]["repeated"] is False
    assert Transaction.objects.count() == 50


def test_a_conflict_stored_after_the_job_was_accepted_fails_it_naming_the_row(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 20
    for i, item in enumerate(rows[:60]):
        item["external_id"] = f"card-{i}"
    response, _ = submit(client, rows[:60], run=False)
    job_id = response.json()["id"]
    # Another request stores one of the job's ids with other features before the task reaches it.
    client.post("/detect-fraud", json.dumps({**rows[45], "V4": 2.0}), content_type=JSON)
    batches.run(job_id)

    status = client.get(f"/api/batches/{job_id}").json()
    assert (status["status"], status["rows_scored"]) == ("failed", 40)
    assert status["error"].startswith("row 45: external_id 'card-45' was scored before with other features")
    assert status["finished_at"] is not None
    # What was scored before stays readable; nothing after it was stored.
    results = every_result(client, job_id)
    assert [r["row"] for r in results] == list(range(40))
    assert Transaction.objects.count() == 41


def test_external_ids_and_jobs_belong_to_the_client_that_sent_them(client, active_version, rows, settings):
    settings.SCORING_API_OPEN = False
    row_a, key_a = create_key(name="issuer A")
    row_b, key_b = create_key(name="issuer B")
    a, b = {"X-API-Key": key_a}, {"X-API-Key": key_b}
    assert post(client, rows[:5]).status_code == 401
    rows[0]["external_id"] = "card-1"
    response, _ = submit(client, rows[:5], **a)
    job_id = response.json()["id"]

    assert client.get(f"/api/batches/{job_id}", headers=a).status_code == 200
    for path in (
        f"/api/batches/{job_id}",
        f"/api/batches/{job_id}/results",
        f"/api/batches/{job_id}/results?format=csv",
    ):
        refused = client.get(path, headers=b)
        assert refused.status_code == 404, path
        assert refused.json()["error"] == {"code": "not_found", "message": "no batch job of this client has this id"}
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        assert client.get(f"/api/batches/{unknown}", headers=a).status_code == 404
    # B's card-1 with other features is B's own transaction, not a conflict with A's.
    response, _ = submit(client, [{**rows[0], "V4": 3.0}], **b)
    assert response.status_code == 202
    assert every_result(client, response.json()["id"], **b)[0]["repeated"] is False
    assert sorted(BatchJob.objects.values_list("client", flat=True)) == sorted([f"key:{row_a.pk}", f"key:{row_b.pk}"])


def test_batches_share_the_apis_permissions_and_rate_limit(client, active_version, rows, settings):
    from django.contrib.auth.models import User

    settings.SCORING_API_OPEN = False
    client.force_login(User.objects.create_user("nobody", password="x"))
    assert post(client, rows[:2]).status_code == 403
    client.logout()
    settings.SCORING_RATE_LIMIT = "2/min"
    cache.clear()
    _, key = create_key(name="acquirer")
    codes = [submit(client, rows[:2], Authorization=f"Bearer {key}")[0].status_code for _ in range(2)]
    job_id = BatchJob.objects.values_list("pk", flat=True).first()
    codes.append(client.get(f"/api/batches/{job_id}", headers={"Authorization": f"Bearer {key}"}).status_code)
    assert codes == [202, 202, 429]
    cache.clear()


# --- Results --------------------------------------------------------------------------------


def test_results_come_a_page_at_a_time_with_a_cursor_and_a_capped_size(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 40
    settings.BATCH_PAGE_MAX = 120
    response, _ = submit(client, rows[:250])
    url = f"/api/batches/{response.json()['id']}/results"

    first = client.get(f"{url}?page_size=100").json()
    assert [r["row"] for r in first["results"]] == list(range(100))
    assert first["next_cursor"] == 100
    assert first["next"] == f"http://testserver{url}?page_size=100&cursor=100"
    second = client.get(first["next"]).json()
    assert [r["row"] for r in second["results"]] == list(range(100, 200))
    third = client.get(second["next"]).json()
    assert [r["row"] for r in third["results"]] == list(range(200, 250))
    assert (third["next_cursor"], third["next"], third["status"], third["rows_scored"]) == (None, None, "done", 250)
    # The default page, and the cap.
    assert len(client.get(url).json()["results"]) == 100
    capped = client.get(f"{url}?page_size=500&cursor=7").json()
    assert [r["row"] for r in capped["results"]] == list(range(7, 127))
    assert client.get(f"{url}?cursor=250").json()["results"] == []
    assert client.get(f"{url}?cursor={'9' * 18}").json()["results"] == []
    for query in ("cursor=-1", "cursor=abc", f"cursor={'9' * 5000}", "page_size=0", "page_size=1.5", "format=xml"):
        refused = client.get(f"{url}?{query}")
        assert refused.status_code == 400, query
        assert refused.json()["error"]["code"] == "invalid_input"


def test_results_are_readable_for_what_is_scored_so_far(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 30
    response, _ = submit(client, rows[:100], run=False)
    job_id = response.json()["id"]
    job = batches._claim(job_id)
    batches.score_chunk(job)
    batches.score_chunk(job)

    status = client.get(f"/api/batches/{job_id}").json()
    assert (status["status"], status["rows_scored"], status["finished_at"]) == ("running", 60, None)
    page = client.get(f"/api/batches/{job_id}/results?page_size=50&cursor=40").json()
    assert [r["row"] for r in page["results"]] == list(range(40, 60))
    # The rest will be scored: the cursor goes on, and its page is empty until it is.
    assert page["next_cursor"] == 60
    assert client.get(page["next"]).json()["results"] == []
    lines = client.get(f"/api/batches/{job_id}/results?format=csv").getvalue().decode().splitlines()
    assert len(lines) == 61


def test_a_csv_is_scored_and_its_results_come_back_as_csv(client, active_version, settings):
    settings.BATCH_CHUNK_ROWS = 64
    data = csv_body(300)
    response, _ = submit(client, data, content_type="text/csv; charset=utf-8")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert BatchJob.objects.get(pk=job_id).input_format == "csv"

    got = client.get(f"/api/batches/{job_id}/results?format=csv")
    assert got.status_code == 200
    assert got["Content-Type"] == "text/csv; charset=utf-8"
    assert got["Content-Disposition"] == f'attachment; filename="batch-{job_id}.csv"'
    table = list(csv.DictReader(io.StringIO(got.getvalue().decode())))
    assert list(table[0]) == list(batches.CSV_COLUMNS)
    answers = every_result(client, job_id)
    assert len(table) == len(answers) == 300
    for line, answer in zip(table, answers, strict=True):
        assert int(line["row"]) == answer["row"]
        assert int(line["transaction_id"]) == answer["transaction_id"]
        assert float(line["fraud_probability"]) == answer["fraud_probability"]
        assert bool(int(line["is_fraud"])) == answer["is_fraud"]
        assert (line["external_id"], line["repeated"]) == ("", "")
    # In file order: each answer is the stored transaction of its line.
    frame = synthetic.generate(rows=300, fraud_rate=0.05, seed=5)
    amounts = Transaction.objects.in_bulk([a["transaction_id"] for a in answers])
    assert [amounts[a["transaction_id"]].amount for a in answers] == frame["Amount"].tolist()
    from_row = client.get(f"/api/batches/{job_id}/results?format=csv&cursor=290").getvalue().decode()
    assert [line.split(",")[0] for line in from_row.splitlines()[1:]] == [str(n) for n in range(290, 300)]


# --- Crashes and resumption -----------------------------------------------------------------


def test_a_run_killed_mid_job_resumes_where_it_stopped_and_stores_every_row_once(
    client, active_version, rows, settings
):
    settings.BATCH_CHUNK_ROWS = 50
    response, _ = submit(client, rows, run=False)
    job_id = response.json()["id"]
    # The first run scores three chunks and dies (nothing after the third chunk's commit runs).
    job = batches._claim(job_id)
    for _ in range(3):
        batches.score_chunk(job)
    first_ids = sorted(Transaction.objects.values_list("pk", flat=True))
    assert len(first_ids) == 150

    # Queued again while its progress is fresh, it is left to the run that has it.
    assert tasks.run_batch(job_id) == f"batch {job_id}: running, 150 of 600 rows"
    assert Transaction.objects.count() == 150
    stale(job_id)
    assert tasks.run_batch(job_id) == f"batch {job_id}: done, 600 of 600 rows"

    results = every_result(client, job_id)
    assert [r["row"] for r in results] == list(range(600))
    ids = [r["transaction_id"] for r in results]
    assert len(set(ids)) == 600 == Transaction.objects.count()
    assert sorted(ids)[:150] == first_ids  # the first run's rows kept, not scored again
    once = Prediction.objects.values("transaction").annotate(n=Count("id")).filter(n__gt=1)
    assert not once.exists()
    assert BatchJob.objects.get(pk=job_id).attempts == 0


def test_a_chunk_that_fails_half_stored_is_rolled_back_with_its_watermark(
    client, active_version, rows, settings, monkeypatch
):
    settings.BATCH_CHUNK_ROWS = 100
    response, _ = submit(client, rows, run=False)
    job_id = response.json()["id"]
    real = batches.score_transactions
    calls = []

    def dies_after_storing_the_third(**kwargs):
        results = real(**kwargs)  # the chunk's transactions are stored, in its transaction
        calls.append(len(results))
        if len(calls) == 3:
            raise RuntimeError("worker lost")
        return results

    monkeypatch.setattr(batches, "score_transactions", dies_after_storing_the_third)
    with pytest.raises(RuntimeError):
        tasks.run_batch(job_id)
    job = BatchJob.objects.get(pk=job_id)
    assert (job.status, job.chunks_done, job.rows_scored) == ("running", 2, 200)
    assert job.error == "an unexpected error; the task log has it"  # the detail goes to the log only
    assert Transaction.objects.count() == 200

    monkeypatch.setattr(batches, "score_transactions", real)
    stale(job_id)
    assert batches.run(job_id).status == "done"
    assert Transaction.objects.count() == 600
    assert len({r["transaction_id"] for r in every_result(client, job_id)}) == 600


def test_a_second_run_of_the_same_chunk_stores_nothing(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 100
    response, _ = submit(client, rows[:300], run=False)
    job_id = response.json()["id"]
    first = batches._claim(job_id)
    second = BatchJob.objects.get(pk=job_id)  # the same watermark, as a second worker read it
    batches.score_chunk(first)
    with pytest.raises(batches._Overtaken):
        batches.score_chunk(second)
    assert Transaction.objects.count() == 100
    assert BatchJob.objects.get(pk=job_id).chunks_done == 1


def test_a_run_overtaken_between_reading_a_chunk_and_committing_it_stores_nothing(
    client, active_version, rows, settings, monkeypatch
):
    from common import sqlite

    settings.BATCH_CHUNK_ROWS = 100
    response, _ = submit(client, rows[:300], run=False)
    job_id = response.json()["id"]
    first = batches._claim(job_id)
    second = BatchJob.objects.get(pk=job_id)
    real = sqlite.write_queue

    @contextlib.contextmanager
    def the_first_run_commits_meanwhile():
        monkeypatch.setattr(sqlite, "write_queue", real)
        batches.score_chunk(first)  # while the second run waits for its turn to write
        with real():
            yield

    monkeypatch.setattr(sqlite, "write_queue", the_first_run_commits_meanwhile)
    with pytest.raises(batches._Overtaken):
        batches.score_chunk(second)  # it read chunk 0 unscored; its compare-and-set finds it moved
    assert Transaction.objects.count() == 100
    assert BatchJob.objects.get(pk=job_id).chunks_done == 1


def test_the_sweep_queues_again_a_job_whose_run_died_once_per_stall(client, active_version, rows, settings):
    settings.BATCH_CHUNK_ROWS = 100
    response, _ = submit(client, rows[:300], run=False)  # its task was lost: never run
    job_id = response.json()["id"]
    assert tasks.sweep_batches() == "no stalled batch jobs"  # not stalled yet
    stale(job_id)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.sweep_batches() == "1 stalled batch job(s) queued again"
    assert client.get(f"/api/batches/{job_id}").json()["status"] == "done"
    assert Transaction.objects.count() == 300
    assert tasks.sweep_batches() == "no stalled batch jobs"


def test_a_job_whose_runs_keep_dying_fails_after_its_attempts(client, active_version, rows, settings):
    settings.BATCH_MAX_ATTEMPTS = 2
    response, _ = submit(client, rows[:10], run=False)
    job_id = response.json()["id"]
    for _ in range(2):
        assert batches._claim(job_id) is not None  # a run starts, and dies before its first chunk
        stale(job_id)
    assert batches._claim(job_id) is None
    status = client.get(f"/api/batches/{job_id}").json()
    assert status["status"] == "failed"
    assert status["error"] == (
        "2 runs in a row stopped without scoring a chunk; the last: their worker stopped before it could record why"
    )
    assert Transaction.objects.count() == 0


# --- Shadows, monitoring, the schema --------------------------------------------------------


def test_a_shadow_scores_batch_transactions_as_any_others_and_never_answers(
    client, active_version, rows, settings, trained
):
    from modelops.services import deployments

    settings.SHADOW_SETTLE_SECONDS = 0.0
    shadow = versions.record_version(result=trained)
    deployments.deploy_shadow(version_id=shadow.pk, actor="test", reason="try it")
    Deployment.objects.filter(version=shadow).update(since=timezone.now() - timezone.timedelta(minutes=1))
    response, _ = submit(client, rows[:200])
    results = every_result(client, response.json()["id"])

    assert {r["model_version"] for r in results} == {active_version.version}
    assert shadow_scoring.score_shadows(max_seconds=60) == {shadow.version: 200}
    assert Prediction.objects.filter(role="shadow", model_version=shadow).count() == 200
    assert Prediction.objects.primary().count() == 200
    assert every_result(client, response.json()["id"]) == results


def _nullable_as_json_schema(node):
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it, for the validator."""
    if isinstance(node, list):
        return [_nullable_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


def test_the_endpoints_are_in_the_schema_and_their_answers_match_it(client, active_version, rows):
    schema = _nullable_as_json_schema(yaml.safe_load(client.get("/api/schema/").content))
    paths = schema["paths"]
    create = paths["/api/batches"]["post"]
    assert set(create["requestBody"]["content"]) == {JSON, "text/csv"}
    assert {"202", "400", "401", "409", "413", "429", "503"} <= create["responses"].keys()
    assert "Location" in create["responses"]["202"]["headers"]
    status_op = paths["/api/batches/{job_id}"]["get"]
    results_op = paths["/api/batches/{job_id}/results"]["get"]
    assert {"200", "404"} <= status_op["responses"].keys()
    assert set(results_op["responses"]["200"]["content"]) == {JSON, "text/csv"}
    assert {p["name"] for p in results_op["parameters"]} == {"job_id", "cursor", "page_size", "format"}

    def check(operation: dict, status: int, body, content: str = JSON) -> None:
        sub = operation["responses"][str(status)]["content"][content]["schema"]
        errors = [
            e.message for e in Draft202012Validator({**sub, "components": schema["components"]}).iter_errors(body)
        ]
        assert not errors, (status, errors, body)

    request = create["requestBody"]["content"][JSON]["schema"]
    Draft202012Validator({**request, "components": schema["components"]}).validate(rows[:3])
    rows[1]["external_id"] = "card-1"
    response, _ = submit(client, rows[:3])
    check(create, 202, response.json())
    job_id = response.json()["id"]
    check(status_op, 200, client.get(f"/api/batches/{job_id}").json())
    check(results_op, 200, client.get(f"/api/batches/{job_id}/results?page_size=2").json())
    check(status_op, 404, client.get(f"/api/batches/{uuid.uuid4()}").json())
    check(create, 400, post(client, [{"Time": 1}]).json())
    check(create, 400, post(client, "Time\n1\n", content_type="text/csv").json())
    for example in create["responses"]["400"]["content"][JSON]["examples"].values():
        check(create, 400, example["value"])
