from __future__ import annotations

import json

import pytest

from detection import parsing
from detection.models import Prediction, Transaction
from modelops.ml.schema import FEATURES


def post(client, body, *, raw: bool = False, query: str = ""):
    data = body if raw else json.dumps(body)
    return client.post(f"/detect-fraud{query}", data=data, content_type="application/json")


def row(**overrides) -> dict:
    base = {name: 0.0 for name in FEATURES}
    base.update(Time=100, Amount=12.5)
    base.update(overrides)
    return base


def test_the_original_clients_rows_get_the_original_answers(client, active_version, original_rows):
    # The original test client posted json.dumps(row) as the JSON body: a JSON string.
    legit = post(client, json.dumps(original_rows["legit"]))
    fraud = post(client, json.dumps(original_rows["fraud"]))
    assert legit.status_code == fraud.status_code == 200
    assert legit.json()["is_fraud"] is False
    assert fraud.json()["is_fraud"] is True


def test_the_answer_names_probability_threshold_version_and_transaction(client, active_version, original_rows):
    body = post(client, original_rows["fraud"]).json()
    stored = Transaction.objects.get()
    prediction = Prediction.objects.get()
    assert body == {
        "is_fraud": True,
        "fraud_probability": prediction.score,
        "threshold": active_version.threshold,
        "model_version": active_version.version,
        "transaction_id": stored.pk,
    }
    assert prediction.model_version == active_version
    assert stored.source == Transaction.Source.API
    assert stored.amount == 1.0
    assert stored.v[13] == pytest.approx(-9.17716637009146)


def test_contributions_are_stored_always_and_returned_when_asked(client, active_version, original_rows):
    plain = post(client, original_rows["fraud"]).json()
    explained = post(client, original_rows["fraud"], query="?explain=true").json()
    assert "contributions" not in plain
    assert explained["contributions"][0]["feature"] in FEATURES
    assert all(len(p.contributions) == 5 for p in Prediction.objects.all())


def test_a_list_is_scored_in_order(client, active_version, original_rows):
    response = post(client, [original_rows["legit"], original_rows["fraud"], original_rows["legit"]])
    assert response.status_code == 200
    assert [r["is_fraud"] for r in response.json()] == [False, True, False]
    assert Transaction.objects.count() == 3
    assert Prediction.objects.count() == 3


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("V3", None, "is required"),
        ("V3", "abc", "must be a number"),
        ("V3", "NaN", "must not be NaN"),
        ("V3", "inf", "must be finite"),
        ("V3", True, "must be a number"),
        ("Amount", -5, "must be between 0 and 1e+09"),
        ("V3", 1e6, "must be between -10000 and 10000"),
    ],
)
def test_a_bad_field_gets_400_naming_it_and_nothing_is_stored(client, active_version, field, value, reason):
    body = row(**{field: value})
    if value is None:
        del body[field]
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {field: reason}
    assert Transaction.objects.count() == 0


def test_nan_and_infinity_literals_are_named_too(client, active_version):
    text = json.dumps(row()).replace('"V5": 0.0', '"V5": NaN').replace('"V6": 0.0', '"V6": -Infinity')
    response = post(client, text, raw=True)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"V5": "must not be NaN", "V6": "must be finite"}


def test_a_batch_with_one_bad_item_is_refused_whole_with_its_index(client, active_version):
    response = post(client, [row(), row(), row(V7="x")])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["items"] == [{"index": 2, "fields": {"V7": "must be a number"}}]
    assert "index 2" in error["message"]
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "the body is not valid JSON"),
        ("[]", "the list of transactions is empty"),
        ("42", "the body must be a transaction"),
        ('"not json inside"', "the body is a JSON string that does not hold JSON"),
    ],
)
def test_a_body_that_is_not_transactions_gets_400(client, active_version, body, message):
    response = post(client, body, raw=True)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


def test_a_batch_over_the_limit_is_refused(client, active_version, settings):
    settings.SCORING_MAX_BATCH = 3
    response = post(client, [row()] * 4)
    assert response.status_code == 400
    assert "at most 3" in response.json()["error"]["message"]


def test_a_repeated_external_id_returns_the_stored_result(client, active_version):
    first = post(client, row(external_id="card-1")).json()
    again = post(client, row(external_id="card-1")).json()
    assert again["transaction_id"] == first["transaction_id"]
    assert again["fraud_probability"] == first["fraud_probability"]
    assert (first["repeated"], again["repeated"]) == (False, True)
    assert Transaction.objects.count() == 1
    assert Prediction.objects.count() == 1


def test_a_repeated_external_id_within_one_batch_is_stored_once(client, active_version):
    body = post(client, [row(external_id="a"), row(external_id="b"), row(external_id="a")]).json()
    assert body[0]["transaction_id"] == body[2]["transaction_id"] != body[1]["transaction_id"]
    assert Transaction.objects.count() == 2


def test_a_repeated_external_id_with_other_features_is_a_conflict_and_stores_nothing(client, active_version):
    post(client, row(external_id="card-1"))
    response = post(client, row(external_id="card-1", Amount=999))
    assert response.status_code == 409
    reason = "'card-1' was scored before with other features; send a new id for a new transaction"
    assert response.json()["error"] == {
        "code": "external_id_conflict",
        "message": f"external_id {reason}",
        "fields": {"external_id": reason},
    }
    response = post(client, [row(external_id="new"), row(external_id="b"), row(external_id="b", V3=1.0)])
    assert response.status_code == 409
    assert response.json()["error"]["items"] == [{"index": 2, "fields": {"external_id": reason.replace("card-1", "b")}}]
    assert Transaction.objects.count() == 1


def test_external_ids_are_scoped_to_the_client_that_sent_them(client, active_version, settings):
    from detection.auth import create_key

    settings.SCORING_API_OPEN = False
    a_row, key_a = create_key(name="issuer A")
    b_row, key_b = create_key(name="issuer B")

    def as_client(key, body, query=""):
        return client.post(
            f"/detect-fraud{query}", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key
        )

    a = as_client(key_a, row(external_id="card-1", V14=-8.0), "?explain=true").json()
    # B sends A's id with its own transaction: B's is scored and stored, A's result stays A's.
    b = as_client(key_b, row(external_id="card-1"), "?explain=true").json()
    assert b["repeated"] is False
    assert b["transaction_id"] != a["transaction_id"]
    assert b["fraud_probability"] != a["fraud_probability"]
    assert b["contributions"] != a["contributions"]
    assert Transaction.objects.get(pk=b["transaction_id"]).v[13] == 0.0
    assert as_client(key_a, row(external_id="card-1", V14=-8.0)).json()["repeated"] is True
    assert sorted(Transaction.objects.values_list("client", flat=True)) == sorted(
        [f"key:{a_row.pk}", f"key:{b_row.pk}"]
    )


def test_without_an_active_model_it_answers_503(client, db):
    response = post(client, row())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_active_model"
    assert "train_model" in response.json()["error"]["message"]
    assert Transaction.objects.count() == 0


# Inside the test's own transaction, a savepoint and its release (BEGIN and COMMIT in production)
# around the INSERTs: two on SQLite, one statement for both rows on PostgreSQL. The active version
# is not read: the INSERT of the prediction checks it.
SCORING_STATEMENTS = {"sqlite": 4, "postgresql": 3}


def test_scoring_one_transaction_takes_four_statements_on_sqlite_three_on_postgresql(
    client, active_version, statements
):
    from django.db import connection

    post(client, row())  # loads the model into this process's cache
    with statements() as sent:
        assert post(client, row()).status_code == 200
    assert len(sent) == SCORING_STATEMENTS[connection.vendor], sent


def test_a_batch_does_not_query_per_row(client, active_version, statements):
    from django.db import connection

    post(client, row())
    # 3,000 rows. SQLite: each table's INSERT split where the bound parameters would pass the
    # database's limit (SQLITE_LIMIT_VARIABLE_NUMBER, 32,766 or more). PostgreSQL: the version
    # check and the ids' reservation, then the two COPYs, which Django's log does not list.
    with statements() as sent:
        assert post(client, [row() for _ in range(3_000)]).status_code == 200
    assert len(sent) <= SCORING_STATEMENTS[connection.vendor] + 2, sent


def test_only_post_is_allowed(client, active_version):
    response = client.get("/detect-fraud")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_each_result_names_the_stored_row_it_scored(client, active_version, settings):
    # Big enough to span several INSERT statements on SQLite.
    body = [row(Amount=float(i), Time=float(i)) for i in range(3_000)]
    results = post(client, body).json()
    stored = dict(Transaction.objects.values_list("id", "amount"))
    assert [stored[r["transaction_id"]] for r in results] == [float(i) for i in range(3_000)]
    scores = dict(Prediction.objects.values_list("transaction_id", "score"))
    assert all(scores[r["transaction_id"]] == r["fraud_probability"] for r in results)


def test_a_boolean_in_a_big_batch_is_still_refused(client, active_version):
    body = [row() for _ in range(50)]
    body[31]["V9"] = False
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["items"] == [{"index": 31, "fields": {"V9": "must be a number"}}]


def test_a_bad_external_id_in_a_batch_is_named(client, active_version):
    response = post(client, [row(external_id="ok"), row(external_id="x" * 101), row(external_id=[1])])
    assert response.status_code == 400
    assert response.json()["error"]["items"] == [
        {"index": 1, "fields": {"external_id": "must be 1 to 100 characters"}},
        {"index": 2, "fields": {"external_id": "must be a string"}},
    ]
    assert Transaction.objects.count() == 0


def test_numbers_as_strings_with_spaces_are_accepted(client, active_version):
    response = post(client, row(V1=" 1.5 ", Amount="20"))
    assert response.status_code == 200
    assert Transaction.objects.get().v[0] == 1.5


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", "\uff11"])
@pytest.mark.parametrize("batch", [False, True])
def test_strings_that_are_not_plain_decimal_numbers_get_400(client, active_version, text, batch):
    # Python's float() reads digit separators and other scripts' digits; the fast path for
    # batches converts with numpy, which calls it too.
    body = [row(), row(V2=text)] if batch else row(V2=text)
    response = post(client, body)
    assert response.status_code == 400
    error = response.json()["error"]
    if batch:
        assert error["items"] == [{"index": 1, "fields": {"V2": "must be a number"}}]
    else:
        assert error["fields"] == {"V2": "must be a number"}
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize("synchronous", [True, False])
def test_asynchronous_commit_is_asked_for_only_when_switched_off_and_only_on_postgresql(
    client, active_version, settings, statements, synchronous
):
    from django.db import connection

    settings.SCORING_SYNCHRONOUS_COMMIT = synchronous
    with statements() as sent:
        assert post(client, row()).status_code == 200
    asked = any("synchronous_commit" in sql for sql in sent)
    assert asked == (not synchronous and connection.vendor == "postgresql")
    assert Prediction.objects.count() == 1


@pytest.mark.parametrize("length", [1, 2, len(FEATURES)])
def test_values_that_are_lists_of_one_shape_get_400_naming_each_field(client, active_version, length):
    # numpy stacks lists of one shape into more dimensions instead of refusing them.
    response = post(client, {name: [1.0] * length for name in FEATURES})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == dict.fromkeys(FEATURES, "must be a number")
    assert Transaction.objects.count() == 0


def test_a_json_string_holding_deeply_nested_json_gets_400(client, active_version):
    response = post(client, json.dumps("[" * 5000 + "]" * 5000), raw=True)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the body is nested too deeply"


def test_a_chunked_body_without_a_length_gets_411_not_a_list_of_missing_fields(client, active_version):
    # As gunicorn passes a chunked request on: no Content-Length. Django would read no body.
    response = client.post(
        "/detect-fraud",
        data=json.dumps(row()),
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert Transaction.objects.count() == 0


def test_a_long_digit_run_gets_400_and_each_distinct_string_is_checked_once(client, active_version, monkeypatch):
    checked = []
    real = parsing.is_number_text
    monkeypatch.setattr(parsing, "is_number_text", lambda text: checked.append(text) or real(text))
    item = row(V1="1" * 16_000 + "x", V2="0.5", V3="0.5")
    response = post(client, [item, row(V2="0.5")])
    assert response.status_code == 400
    assert response.json()["error"]["items"] == [{"index": 0, "fields": {"V1": "must be a number"}}]
    assert sorted(checked, key=len) == ["0.5", "1" * 16_000 + "x"]
    assert not Transaction.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_demo_traffic_posts_ordinary_then_drifted_transactions(live_server, active_version):
    from django.core.management import call_command

    from detection.models import Transaction

    call_command("demo_traffic", url=f"{live_server.url}/detect-fraud", rate=40, drift_after=1.0, seconds=2.5)
    amounts = list(Transaction.objects.order_by("id").values_list("v", flat=True))
    assert len(amounts) > 30
    first, last = amounts[: len(amounts) // 3], amounts[-len(amounts) // 3 :]
    spread = [abs(sum(v[i] for v in last) / len(last) - sum(v[i] for v in first) / len(first)) for i in range(28)]
    assert max(spread) > 1.0  # features moved by standard deviations once it drifted
