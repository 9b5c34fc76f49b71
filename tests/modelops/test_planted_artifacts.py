"""Whoever can write the models storage cannot make the service adopt or serve a model: only
artifacts signed with its key (which never lives in the bucket) are used, and a signed one
that is malformed answers 503, never a crash or a 500."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modelops import artifact_store
from modelops.ml import artifact
from modelops.ml.schema import FEATURES
from modelops.models import Deployment, ModelEvent, ModelVersion
from modelops.services import integrity

from ..ml.signed import rewrite

ROW = {**{name: 0.0 for name in FEATURES}, "Time": 10, "Amount": 5}


def plant(bucket, data: bytes) -> str:
    """Write an artifact into the models folder under its checksum name, as a bucket writer can."""
    name = f"{artifact.sha256_hex(data)}.json"
    (bucket / "models").mkdir(parents=True, exist_ok=True)
    (bucket / "models" / name).write_bytes(data)
    return name


def adopt(*options: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("adopt_model", *options, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def signed(trained) -> bytes:
    return artifact.dumps(trained.bundle, key=artifact_store.signing_key())


def test_a_planted_unsigned_artifact_is_not_adopted_and_the_refusal_is_recorded(db, bucket, signed):
    # Threshold 0.999: nearly every alert off, in a file whose name is its own sha256.
    name = plant(bucket, rewrite(signed, lambda d: d.update(threshold=0.999), key=None))
    with pytest.raises(CommandError, match="no usable artifact"):
        adopt()
    assert not ModelVersion.objects.exists()
    event = ModelEvent.objects.get()
    assert event.kind == ModelEvent.Kind.INTEGRITY
    assert event.reason.startswith(f"not adopted: {name!r}: the artifact is unsigned")


def test_allow_unsigned_adopts_an_old_artifact_signed_anew_but_never_a_forged_signature(db, bucket, signed):
    from ..ml.signed import KEY  # a key the service does not hold

    forged = plant(bucket, rewrite(signed, lambda d: d.update(threshold=0.999), key=KEY))
    old = plant(bucket, rewrite(signed, lambda d: None, key=None))
    artifact_store.point_at(forged)  # tried first
    out, err = adopt("--allow-unsigned")
    version = ModelVersion.objects.primary().get()
    assert out == f"adopted {version.artifact} as v1 and activated it\n"
    assert f"skipped {forged}: the artifact is signed with key" in err
    assert version.artifact != old  # a signed copy
    assert version.signing_key == artifact_store.signing_key().id
    assert artifact_store.load(version.artifact, version.sha256).signed_by == version.signing_key
    activation = ModelEvent.objects.get(kind=ModelEvent.Kind.ACTIVATE)
    assert f"({old}), unsigned, signed anew as {version.artifact} (--allow-unsigned)" in activation.reason


def test_a_version_recorded_before_signing_is_refused_until_an_operator_signs_it(client, db, bucket, trained, signed):
    old = plant(bucket, rewrite(signed, lambda d: None, key=None))
    version = ModelVersion.objects.create(
        version=1, artifact=old, sha256=old.removesuffix(".json"), status="accepted", threshold=trained.bundle.threshold
    )
    Deployment.objects.create(version=version, role="primary")
    response = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
    assert response.status_code == 503
    assert "unsigned" in ModelEvent.objects.get(kind=ModelEvent.Kind.INTEGRITY).reason

    out, _ = adopt("--allow-unsigned")
    version.refresh_from_db()
    assert out.splitlines() == [f"v1: {old} signed as {version.artifact}", "model v1 is active; nothing to adopt"]
    event = ModelEvent.objects.get(kind=ModelEvent.Kind.SIGN)
    assert event.reason == f"unsigned artifact {old} signed as {version.artifact} (--allow-unsigned)"
    integrity.verify_active_artifact(actor="test")
    response = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
    assert response.status_code == 200
    assert adopt("--allow-unsigned")[0] == "model v1 is active; nothing to adopt\n"  # nothing left to sign


def _bad_split(document):
    document["booster"]["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 31


def test_a_signed_artifact_with_a_bad_split_index_answers_503_and_is_not_reloaded(client, db, bucket, signed):
    from modelops import model_cache

    bad = plant(bucket, rewrite(signed, _bad_split, key=artifact_store.signing_key()))
    version = ModelVersion.objects.create(
        version=1, artifact=bad, sha256=bad.removesuffix(".json"), status="accepted", threshold=0.5
    )
    Deployment.objects.create(version=version, role="primary")
    for _ in range(3):
        response = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_unavailable"
    assert client.get("/readyz").status_code == 503
    assert len(model_cache._failed) == 1  # remembered: not fetched and parsed on every request
    (event,) = ModelEvent.objects.filter(kind=ModelEvent.Kind.INTEGRITY)
    assert "tree 0: a split index is out of range" in event.reason
