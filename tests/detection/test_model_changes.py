"""A worker scores with the version it last found active, without reading it on each request: the
statement that stores a prediction checks that this version is still the active one, and when it
is not, the request is scored again with the version active now (or answers 503 if none is)."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from detection import storage
from detection.models import Prediction, Transaction
from modelops import services
from modelops.models import ModelVersion

from .test_api import post, row


def test_a_newly_activated_version_scores_the_next_request(client, active_version, trained):
    assert post(client, row()).json()["model_version"] == active_version.version  # now served here
    newer = services.record_version(result=trained)
    services.activate_version(version_id=newer.pk, actor="alice")

    answer = post(client, row()).json()
    assert answer["model_version"] == newer.version
    assert Prediction.objects.get(transaction_id=answer["transaction_id"]).model_version == newer
    assert Prediction.objects.filter(model_version=active_version).count() == 1
    assert Transaction.objects.count() == 2


def test_when_no_version_is_active_any_more_nothing_is_stored(client, active_version):
    assert post(client, row()).status_code == 200
    ModelVersion.objects.filter(pk=active_version.pk).update(status=ModelVersion.Status.RETIRED)

    response = post(client, [row(), row()])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_active_model"
    assert Transaction.objects.count() == Prediction.objects.count() == 1


@pytest.mark.parametrize("rows", [1, 3], ids=["one row", "a batch"])
@pytest.mark.parametrize("change", ["retired", "another artifact"])
def test_scores_of_a_version_that_is_not_the_active_one_are_refused_whole(active_version, rows, change):
    version_id, sha256 = active_version.pk, active_version.sha256
    if change == "retired":
        ModelVersion.objects.filter(pk=version_id).update(status=ModelVersion.Status.RETIRED)
    else:
        sha256 = "0" * 64
    with pytest.raises(storage.VersionNotActive):
        storage.store_scored(
            values=np.zeros((rows, 30)),
            external_ids=[None] * rows,
            source=Transaction.Source.API,
            version_id=version_id,
            sha256=sha256,
            threshold=0.5,
            scores=np.full(rows, 0.1),
            contributions=[[]] * rows,
            now=timezone.now(),
        )
    assert Transaction.objects.count() == Prediction.objects.count() == 0
