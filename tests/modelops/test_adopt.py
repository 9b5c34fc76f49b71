from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modelops import artifact_store
from modelops.models import ModelEvent, ModelVersion


def adopt() -> str:
    out = StringIO()
    call_command("adopt_model", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_fresh_database_adopts_the_artifact_from_the_bucket(db, trained):
    name, sha256 = artifact_store.store(trained.bundle)
    assert adopt().startswith(f"adopted {name} as v1")
    version = ModelVersion.objects.primary().get()
    assert version.sha256 == sha256
    assert version.threshold == trained.bundle.threshold
    assert ModelEvent.objects.get().reason.startswith("adopted from the models storage")


def test_an_artifact_written_before_versions_had_columns_is_adopted_with_them(db, trained):
    # Such artifacts carried the run, the kind and the learned contents among their params.
    import dataclasses

    params = {**trained.bundle.metadata["params"], "kind": "warm_start", "training_run": 7}
    params["data_files_sha256"] = ["a" * 64, 3]
    artifact_store.store(dataclasses.replace(trained.bundle, metadata={**trained.bundle.metadata, "params": params}))
    adopt()
    version = ModelVersion.objects.primary().get()
    assert (version.kind, version.training_run, version.data_files_sha256) == ("adopted", None, ["a" * 64])
    assert version.params.keys() == trained.bundle.metadata["params"].keys()


def test_an_altered_artifact_is_not_adopted(db, trained, bucket):
    name, _ = artifact_store.store(trained.bundle)
    path = bucket / "models" / name
    path.write_bytes(path.read_bytes().replace(b'"threshold":', b'"threshold": ', 1))
    with pytest.raises(CommandError, match="no usable artifact"):
        adopt()
    assert not ModelVersion.objects.exists()


def test_nothing_is_adopted_while_a_model_is_active(active_version):
    assert adopt() == f"model v{active_version.version} is active; nothing to adopt\n"


def test_the_artifact_active_last_is_adopted_rather_than_a_newer_one(
    db, trained, bucket, django_capture_on_commit_callbacks
):
    # A retrain stores every candidate's artifact, and the rejected one's is often the newest.
    import dataclasses
    import os
    import time

    from modelops.services import deployments, versions

    version = versions.record_version(result=trained)
    with django_capture_on_commit_callbacks(execute=True):
        deployments.activate_version(version_id=version.pk, actor="test")
    assert artifact_store.pointed_at() == version.artifact
    rejected = dataclasses.replace(trained.bundle, threshold=0.123)
    newer, _ = artifact_store.store(rejected)
    later = time.time() + 60
    os.utime(bucket / "models" / newer, (later, later))

    ModelEvent.objects.all().delete()  # a new, empty database beside the same bucket
    ModelVersion.objects.all().delete()
    assert adopt().startswith(f"adopted {version.artifact} as v1")
    assert ModelVersion.objects.primary().get().sha256 == version.sha256

    # Without a usable pointer, the newest artifact that verifies is taken, as before.
    ModelEvent.objects.all().delete()
    ModelVersion.objects.all().delete()
    (bucket / "models" / artifact_store.ACTIVE_POINTER).write_text("gone.json")
    assert adopt().startswith(f"adopted {newer} as v1")


def test_the_pointer_names_the_version_active_when_it_is_written(
    db, trained, bucket, django_capture_on_commit_callbacks
):
    import dataclasses

    from modelops.services import deployments, versions

    first = versions.record_version(result=trained)
    second = versions.record_version(
        result=dataclasses.replace(trained, bundle=dataclasses.replace(trained.bundle, threshold=0.2))
    )
    with django_capture_on_commit_callbacks() as written:
        deployments.activate_version(version_id=first.pk, actor="test")
        deployments.activate_version(version_id=second.pk, actor="test")
    for write in reversed(written):  # the earlier activation's process writes last
        write()
    assert artifact_store.pointed_at() == second.artifact
