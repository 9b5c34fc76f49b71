"""POST /api/labels: labels from other systems, all or none, once per source, under a key made for it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from detection import reviews
from detection.auth import create_key
from detection.feedback import labelled_rows
from detection.models import Review, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml.schema import FEATURES


@pytest.fixture
def stored(active_version, training_frame) -> list[int]:
    values = training_frame.head(5)[list(FEATURES)].to_numpy()
    ids = [f"ord-{i}" for i in range(5)]
    results = score_transactions(batch=Batch(values=values, external_ids=ids), source="api", client="key:9")
    return [r.transaction_id for r in results]


@pytest.fixture
def label_key(db) -> str:
    return create_key(name="chargebacks", can_label=True)[1]


def send(client, body, key: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post("/api/labels", json.dumps(body), content_type="application/json", **headers)


def test_labels_by_id_and_external_id_are_recorded_once_and_become_the_label(client, stored, label_key):
    body = [
        {"transaction_id": stored[0], "label": "fraud", "source": "chargeback", "reported_at": "2026-12-01T10:30:00Z"},
        {"external_id": "ord-1", "label": "legitimate", "source": "issuer-review"},
    ]
    response = send(client, body, label_key)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 2, "recorded": 2, "repeated": 0}
    assert Transaction.objects.get(pk=stored[0]).label == "fraud"
    assert Transaction.objects.get(pk=stored[1]).label == "legitimate"
    review = Review.objects.get(transaction_id=stored[0])
    assert (review.source, review.reviewer, review.reported_at.isoformat()) == (
        "chargeback",
        None,
        "2026-12-01T10:30:00+00:00",
    )
    assert send(client, body, label_key).json() == {"received": 2, "recorded": 0, "repeated": 2}
    assert Review.objects.count() == 2
    frame, _ = labelled_rows(None)
    assert len(frame) == 2  # they feed retraining


def test_an_analysts_later_decision_wins_and_a_later_report_overrides_an_earlier_one(
    client, stored, label_key, analyst
):
    reviews.decide(transaction_ids=[stored[0]], label="legitimate", user=analyst)
    earlier = (timezone.now() - timedelta(days=1)).isoformat()
    send(
        client,
        {"transaction_id": stored[0], "label": "fraud", "source": "chargeback", "reported_at": earlier},
        label_key,
    )
    assert Transaction.objects.get(pk=stored[0]).label == "legitimate"  # the analyst decided after that report
    later = (timezone.now() + timedelta(seconds=1)).isoformat()
    send(client, {"transaction_id": stored[0], "label": "fraud", "source": "bank", "reported_at": later}, label_key)
    assert Transaction.objects.get(pk=stored[0]).label == "fraud"
    reviews.decide(transaction_ids=[stored[0]], label="legitimate", user=analyst)
    assert Transaction.objects.get(pk=stored[0]).label == "legitimate"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"label": "fraud", "source": "chargeback"}, "transaction_id"),
        ({"transaction_id": True, "label": "fraud", "source": "chargeback"}, "transaction_id"),
        ({"transaction_id": 1, "external_id": "x", "label": "fraud", "source": "chargeback"}, "transaction_id"),
        ({"transaction_id": 1, "label": "maybe", "source": "chargeback"}, "label"),
        ({"transaction_id": 1, "label": "fraud", "source": "Chargeback!"}, "source"),
        ({"transaction_id": 1, "label": "fraud", "source": "analyst"}, "source"),
        ({"transaction_id": 1, "label": "fraud"}, "source"),
        ({"transaction_id": 1, "label": "fraud", "source": "cb", "reported_at": "yesterday"}, "reported_at"),
        ({"transaction_id": 1, "label": "fraud", "source": "cb", "reported_at": "2999-01-01T00:00:00Z"}, "reported_at"),
        ({"transaction_id": 1, "label": "fraud", "source": "cb", "colour": "red"}, "colour"),
        ({"external_id": "ord-404", "label": "fraud", "source": "cb"}, "external_id"),
        ({"transaction_id": 999_999, "label": "fraud", "source": "cb"}, "transaction_id"),
    ],
)
def test_a_bad_item_refuses_the_whole_body_naming_the_item_and_field(client, stored, label_key, item, field):
    good = {"transaction_id": stored[0], "label": "fraud", "source": "chargeback"}
    response = send(client, [good, item], label_key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["items"][0]["index"] == 1 and field in error["items"][0]["fields"]
    assert not Review.objects.exists() and Transaction.objects.filter(label__isnull=False).count() == 0


def test_only_a_key_made_for_labels_or_an_analyst_may_send_them(stored, analyst_client, settings):
    settings.SCORING_API_OPEN = True  # the scoring API's openness never extends to labels
    body = {"transaction_id": stored[0], "label": "fraud", "source": "chargeback"}
    client = Client()  # analyst_client signs the suite's client in
    assert send(client, body, None).status_code == 401
    scoring_key = create_key(name="shop")[1]
    response = send(client, body, scoring_key)
    assert response.status_code == 403 and "--label" in response.json()["error"]["message"]
    assert analyst_client.post("/api/labels", json.dumps(body), content_type="application/json").status_code == 200
    assert not Transaction.objects.filter(label__isnull=True, pk=stored[0]).exists()


def test_an_external_id_sent_by_two_clients_needs_the_transaction_id(client, stored, label_key, training_frame):
    values = training_frame.iloc[10:11][list(FEATURES)].to_numpy()
    score_transactions(batch=Batch(values=values, external_ids=["ord-0"]), source="api", client="key:10")
    response = send(client, {"external_id": "ord-0", "label": "fraud", "source": "cb"}, label_key)
    assert response.status_code == 400
    assert "give transaction_id" in response.json()["error"]["fields"]["external_id"]
