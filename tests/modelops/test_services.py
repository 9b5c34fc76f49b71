from __future__ import annotations

import threading

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, connection, transaction

from modelops import model_cache
from modelops.ml import treewalk
from modelops.ml.artifact import ArtifactError
from modelops.models import Deployment, ModelEvent, ModelVersion
from modelops.services import deployments, training_runs, versions


def test_the_database_allows_one_primary_version_only(active_version, trained):
    other = versions.record_version(result=trained)
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.create(version=other, role=Deployment.Role.PRIMARY)


def test_version_numbers_increase(db, trained):
    first = versions.record_version(result=trained)
    second = versions.record_version(result=trained)
    assert (first.version, second.version) == (1, 2)
    # Same model bytes, same content address: stored once.
    assert first.artifact == second.artifact


def test_activating_an_older_version_is_a_rollback_with_its_audit_event(active_version, trained):
    newer = versions.record_version(result=trained)
    deployments.activate_version(version_id=newer.pk, actor="alice", reason="new model")
    deployments.activate_version(version_id=active_version.pk, actor="bob", reason="too many alerts")
    active_version.refresh_from_db()
    newer.refresh_from_db()
    assert (active_version.state, newer.state) == ("primary", "retired")
    last = ModelEvent.objects.first()
    assert (last.kind, last.from_version, last.to_version, last.actor, last.reason) == (
        ModelEvent.Kind.ROLLBACK,
        newer,
        active_version,
        "bob",
        "too many alerts",
    )


def test_a_tampered_artifact_is_never_activated(active_version, trained):
    candidate = versions.record_version(result=trained)
    candidate.sha256 = "0" * 64  # the stored file no longer matches the recorded checksum
    candidate.save()
    with pytest.raises(deployments.ActivationError, match="checksum"):
        deployments.activate_version(version_id=candidate.pk, actor="alice")
    assert ModelVersion.objects.primary().get() == active_version
    refusal = ModelEvent.objects.filter(kind=ModelEvent.Kind.REJECT).get()
    assert refusal.to_version == candidate
    assert "checksum" in refusal.reason


def test_the_cache_serves_a_newly_activated_version_on_the_next_call(active_version, trained):
    assert model_cache.primary_model().version == active_version.version
    newer = versions.record_version(result=trained)
    deployments.activate_version(version_id=newer.pk, actor="alice")
    assert model_cache.primary_model().version == newer.version


def test_the_served_model_is_laid_out_for_the_walk_when_it_is_loaded(active_version):
    bundle = model_cache.primary_model().bundle
    assert "walker" in bundle.__dict__  # built while loading, not by the first request
    assert isinstance(bundle.walker, treewalk.TreeTable)


def test_a_corrupted_active_artifact_is_refused_when_loaded(active_version):
    storage = storages["models"]
    storage.delete(active_version.artifact)
    storage.save(active_version.artifact, ContentFile(b'{"format": "fraud-model/1"}'))
    with pytest.raises(ArtifactError, match="checksum"):
        model_cache.primary_model()


def test_without_an_active_version_the_cache_says_so(db):
    with pytest.raises(model_cache.NoPrimaryModel):
        model_cache.primary_model()


def test_training_uses_the_configured_number_of_threads(settings):
    from modelops.ml import training

    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "nthread": 1}
    config = training_runs.train_config()
    assert config.nthread == 1
    assert training._classifier(config).get_params()["n_jobs"] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's transactions take the write lock as they begin")
@pytest.mark.django_db(transaction=True)
def test_two_activations_at_once_take_turns(active_version, trained, monkeypatch):
    # The second waited for the first's lock on the active row, found it retired at commit, saw
    # no active version and broke the one-active constraint (a 500 on the model pages).
    v2, v3 = (versions.record_version(result=trained) for _ in range(2))
    switched, release = threading.Event(), threading.Event()
    create = ModelEvent.objects.create

    def create_then_hold(**kwargs):
        event = create(**kwargs)
        if threading.current_thread().name == "first":
            switched.set()  # switched, not yet committed
            release.wait(10)
        return event

    monkeypatch.setattr(ModelEvent.objects, "create", create_then_hold)
    errors = []

    def activate(pk):
        try:
            deployments.activate_version(version_id=pk, actor=threading.current_thread().name)
        except Exception as exc:  # what the thread met is the test's result
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=activate, args=(v2.pk,), name="first")
    second = threading.Thread(target=activate, args=(v3.pk,), name="second")
    first.start()
    assert switched.wait(30)
    second.start()
    second.join(1.0)  # waiting for the first
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert ModelVersion.objects.primary().get() == v3
    assert ModelEvent.objects.get(to_version=v3).from_version == v2
