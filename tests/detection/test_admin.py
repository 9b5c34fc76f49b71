"""The admin's side of reviewing: decisions through the review service, a read-only trail."""

from __future__ import annotations

import pytest

from detection.models import Review, Transaction
from detection.services import score_transactions


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="not-used"))
    return client


@pytest.fixture
def stored(active_version, original_rows) -> Transaction:
    from detection.parsing import parse

    batch, _ = parse(original_rows["fraud"])
    result = score_transactions(batch=batch, source="api", client="")[0]
    return Transaction.objects.get(pk=result.transaction_id)


def test_the_admin_action_records_a_decision(superuser_client, stored):
    response = superuser_client.post(
        "/admin/detection/transaction/", {"action": "confirm_fraud", "_selected_action": [stored.pk]}
    )
    assert response.status_code == 302
    review = Review.objects.get()
    assert (review.transaction, review.label, review.reviewer_name) == (stored, "fraud", "root")
    stored.refresh_from_db()
    assert stored.label == "fraud"


def test_decisions_and_predictions_are_read_only_in_the_admin(superuser_client, stored, analyst):
    from detection import reviews

    reviews.decide(transaction_ids=[stored.pk], label="legitimate", user=analyst)
    review = Review.objects.get()
    page = superuser_client.get(f"/admin/detection/review/{review.pk}/change/")
    assert page.status_code == 200
    assert b'name="label"' not in page.content
    assert superuser_client.post(f"/admin/detection/review/{review.pk}/delete/").status_code == 403
    assert Review.objects.count() == 1
    prediction = stored.predictions.get()
    assert superuser_client.post(f"/admin/detection/prediction/{prediction.pk}/delete/").status_code == 403


# The ORM broker's queue page exists only with that broker (not with REDIS_URL set).
@pytest.mark.parametrize("url", ["/admin/django_q/schedule/", "/admin/django_q/success/", "/admin/django_q/failure/"])
def test_the_task_cluster_is_in_the_admin(superuser_client, url):
    assert superuser_client.get(url).status_code == 200


def test_every_model_is_in_the_admin(superuser_client):
    page = superuser_client.get("/admin/").content.decode()
    for name in ("transaction", "prediction", "review", "apikey"):
        assert f"/admin/detection/{name}/" in page
    for name in ("modelversion", "modelevent", "datafile", "trainingrun"):
        assert f"/admin/modelops/{name}/" in page


def test_the_prediction_list_is_ordered_by_an_index(superuser_client, stored, statements):
    # The model's order, by time, has no index on the predictions: each page sorted the table.
    with statements() as sent:
        assert superuser_client.get("/admin/detection/prediction/").status_code == 200
    listed = [sql for sql in sent if "ORDER BY" in sql and '"detection_prediction"' in sql.split("FROM", 1)[1][:40]]
    assert listed and all('ORDER BY "detection_prediction"."id" DESC' in sql for sql in listed), listed
