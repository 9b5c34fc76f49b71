"""A worker scores with the version it last found active, without reading it on each request: the
statement that stores a prediction checks that this version is still the active one, and when it
is not, the request is scored again with the version active now (or answers 503 if none is)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from detection import parsing, services, storage
from detection.models import Prediction, Transaction
from modelops.models import Deployment
from modelops.services import deployments, versions

from .test_api import post, row


def test_a_newly_activated_version_scores_the_next_request(client, active_version, trained):
    assert post(client, row()).json()["model_version"] == active_version.version  # now served here
    newer = versions.record_version(result=trained)
    deployments.activate_version(version_id=newer.pk, actor="alice")

    answer = post(client, row()).json()
    assert answer["model_version"] == newer.version
    assert Prediction.objects.get(transaction_id=answer["transaction_id"]).model_version == newer
    assert Prediction.objects.filter(model_version=active_version).count() == 1
    assert Transaction.objects.count() == 2


def test_when_no_version_is_active_any_more_nothing_is_stored(client, active_version):
    assert post(client, row()).status_code == 200
    Deployment.objects.filter(version=active_version).delete()

    response = post(client, [row(), row()])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_active_model"
    assert Transaction.objects.count() == Prediction.objects.count() == 1


def _store(version_id: int, sha256: str, threshold: float, rows: int, external_ids=None) -> list[int]:
    return storage.store_scored(
        values=np.zeros((rows, 30)),
        external_ids=external_ids or [None] * rows,
        client="",
        source=Transaction.Source.API,
        version_id=version_id,
        sha256=sha256,
        threshold=threshold,
        scores=np.full(rows, 0.1),
        contributions=[[]] * rows,
        now=timezone.now(),
    )


@pytest.mark.parametrize("rows", [1, 3], ids=["one row", "a batch"])
@pytest.mark.parametrize("change", ["retired", "another artifact", "another threshold"])
def test_scores_of_a_version_that_is_not_the_active_one_are_refused_whole(active_version, rows, change):
    version_id, sha256, threshold = active_version.pk, active_version.sha256, active_version.threshold
    assert len(_store(version_id, sha256, threshold, rows)) == rows  # as it is, they are stored
    if change == "retired":
        Deployment.objects.filter(version_id=version_id).delete()
    elif change == "another artifact":
        sha256 = "0" * 64
    else:
        threshold += 0.01
    with pytest.raises(storage.VersionNotPrimary):
        _store(version_id, sha256, threshold, rows)
    assert Transaction.objects.count() == Prediction.objects.count() == rows


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rows", [1, 3], ids=["one row", "a batch"])
def test_outside_a_transaction_a_refused_write_is_rolled_back_too(active_version, rows):
    # The scoring path's own BEGIN and ROLLBACK, or on PostgreSQL one row's single statement in
    # autocommit (the tests above run inside a savepoint).
    version = (active_version.pk, active_version.sha256, active_version.threshold)
    assert len(_store(*version, rows)) == rows
    Deployment.objects.filter(version=active_version).delete()
    with pytest.raises(storage.VersionNotPrimary):
        _store(*version, rows)
    assert Transaction.objects.count() == Prediction.objects.count() == rows


def test_a_model_that_keeps_changing_gets_503_after_a_few_tries(client, active_version, monkeypatch):
    tries = []

    def always_changed(**kwargs):
        tries.append(kwargs["version_id"])
        raise storage.VersionNotPrimary

    monkeypatch.setattr(services, "store_scored", always_changed)
    response = post(client, row())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_changing"
    assert response["Retry-After"] == "1"
    assert len(tries) == services.SCORING_ATTEMPTS


def test_a_batch_with_an_external_id_stored_meanwhile_raises_djangos_integrity_error(active_version):
    # What score_transactions retries on; on PostgreSQL a batch goes by COPY, outside Django's cursor.
    from django.db import IntegrityError

    version = (active_version.pk, active_version.sha256, active_version.threshold)
    _store(*version, 1, external_ids=["card-1"])
    with pytest.raises(IntegrityError), transaction.atomic():
        _store(*version, 2, external_ids=["card-2", "card-1"])
    assert list(Transaction.objects.values_list("external_id", flat=True)) == ["card-1"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite checks under its write lock")
@pytest.mark.parametrize("rows", [1, 3], ids=["one row", "a batch"])
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_check_waits_for_an_activation_in_progress_and_then_refuses(active_version, rows):
    # The other connection locks the primary deployment's row FOR UPDATE and deletes it, as
    # deployments.activate_version does, and holds its transaction open. Read at its statement's
    # start, the check would still see the version primary and store; it must wait for the
    # activation's COMMIT and then find the version no longer primary.
    locked, release = threading.Event(), threading.Event()

    def activation():
        try:
            with transaction.atomic():
                list(Deployment.objects.select_for_update().filter(version=active_version))
                Deployment.objects.filter(version=active_version).delete()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    outcome = []

    def scoring():
        try:
            _store(active_version.pk, active_version.sha256, active_version.threshold, rows)
            outcome.append("stored")
        except storage.VersionNotPrimary:
            outcome.append("refused")
        finally:
            connection.close()

    activator = threading.Thread(target=activation)
    activator.start()
    assert locked.wait(10)
    scorer = threading.Thread(target=scoring)
    scorer.start()
    scorer.join(1.0)
    assert scorer.is_alive() and not outcome  # waiting for the activation's lock
    release.set()
    activator.join(10)
    scorer.join(10)
    assert outcome == ["refused"]
    assert Transaction.objects.count() == Prediction.objects.count() == 0


def test_scores_computed_ahead_are_stored_only_while_their_version_is_active(db, active_version, trained):
    batch, _ = parsing.parse([row(), row(Amount=900.0)])
    ahead = services.score_ahead(batch)
    stored = services.score_transactions(batch=batch, source="api", client="", is_list=True, scored=ahead)
    assert [r.fraud_probability for r in stored] == ahead.scores.tolist()
    assert {r.model_version for r in stored} == {active_version.version}

    newer = versions.record_version(result=trained)
    deployments.activate_version(version_id=newer.pk, actor="alice")
    rescored = services.score_transactions(batch=batch, source="api", client="", is_list=True, scored=ahead)
    assert {r.model_version for r in rescored} == {newer.version}
    ids = [r.transaction_id for r in rescored]
    assert set(Prediction.objects.filter(transaction_id__in=ids).values_list("model_version", flat=True)) == {newer.pk}
