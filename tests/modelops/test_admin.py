from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from modelops.ml import synthetic
from modelops.models import DataFile, ModelEvent, ModelVersion
from modelops.services import deployments, versions

CHANGELIST = "/admin/modelops/modelversion/"


@pytest.fixture
def staff(db):
    user = User.objects.create_user("ana", password="pw-ana-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_modelversion", "view_datafile"]))
    return user


@pytest.fixture
def manager(staff):
    staff.user_permissions.add(Permission.objects.get(codename="activate_modelversion"))
    return User.objects.get(pk=staff.pk)  # fresh permission cache


@pytest.fixture
def two_versions(active_version, trained):
    newer = versions.record_version(result=trained)
    deployments.activate_version(version_id=newer.pk, actor="test")
    return active_version, newer


def test_the_activation_asks_for_confirmation_first(client, manager, two_versions):
    older, newer = two_versions
    client.force_login(manager)
    page = client.post(CHANGELIST, {"action": "activate_version", "_selected_action": [older.pk]})
    assert page.status_code == 200
    assert b"rollback" in page.content
    assert ModelVersion.objects.primary().get() == newer


def test_a_confirmed_rollback_activates_the_older_version_with_its_reason(client, manager, two_versions):
    older, _newer = two_versions
    client.force_login(manager)
    client.post(
        CHANGELIST,
        {"action": "activate_version", "_selected_action": [older.pk], "confirmed": "yes", "reason": "false alarms"},
    )
    assert ModelVersion.objects.primary().get() == older
    event = ModelEvent.objects.first()
    assert (event.kind, event.actor, event.reason, event.user) == (
        ModelEvent.Kind.ROLLBACK,
        "ana",
        "false alarms",
        manager,
    )


def test_staff_without_the_permission_cannot_activate(client, staff, two_versions):
    older, newer = two_versions
    client.force_login(staff)
    client.post(CHANGELIST, {"action": "activate_version", "_selected_action": [older.pk], "confirmed": "yes"})
    assert ModelVersion.objects.primary().get() == newer


def test_the_scan_button_queues_a_scan_that_the_cluster_runs(
    client, manager, bucket, django_capture_on_commit_callbacks
):
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    from modelops import tasks

    folder = bucket / "incoming"
    folder.mkdir(parents=True)
    synthetic.write_csv(synthetic.generate(rows=500, fraud_rate=0.02, seed=1), folder / "a.csv")
    manager.user_permissions.add(Permission.objects.get(codename="scan_datafile"))
    client.force_login(User.objects.get(pk=manager.pk))
    queue = get_broker()
    queue.purge_queue()
    assert b"Scan the bucket now" in client.get("/admin/modelops/datafile/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/modelops/datafile/run/", follow=True)
    assert b"A scan is queued" in response.content
    assert not DataFile.objects.exists()  # nothing read inside the request
    ((_, payload),) = queue.dequeue()
    queue.purge_queue()
    task = SignedPackage.loads(payload)
    assert task["func"] == "modelops.tasks.scan_incoming"
    tasks.scan_incoming()  # what the cluster runs
    assert DataFile.objects.get().key == "a.csv"


def test_the_scan_button_needs_its_own_permission(client, manager):
    # Staff who may read the data files (and even activate models) cannot start a scan.
    client.force_login(manager)
    assert b"Scan the bucket now" not in client.get("/admin/modelops/datafile/").content
    assert client.post("/admin/modelops/datafile/run/").status_code == 403


def test_the_retrain_button_needs_the_model_manager_permission(client, staff):
    client.force_login(staff)
    assert client.post("/admin/modelops/trainingrun/run/").status_code == 403


def test_the_training_runs_list_shows_each_runs_heartbeat(client, staff):
    from modelops.models import TrainingRun

    staff.user_permissions.add(Permission.objects.get(codename="view_trainingrun"))
    TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    client.force_login(User.objects.get(pk=staff.pk))
    page = client.get("/admin/modelops/trainingrun/")
    assert page.status_code == 200
    assert b"column-heartbeat_at" in page.content


def test_a_retrain_asked_for_in_the_admin_is_audited_under_who_asked(
    client, manager, active_version, bucket, django_capture_on_commit_callbacks
):
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    from modelops import scan, tasks

    folder = bucket / "incoming"
    folder.mkdir(parents=True)
    synthetic.write_csv(synthetic.generate(rows=20_000, fraud_rate=0.02, seed=21), folder / "a.csv")
    scan.scan_incoming()
    queue = get_broker()
    queue.purge_queue()
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/modelops/trainingrun/run/")
    ((_, payload),) = queue.dequeue()
    task = SignedPackage.loads(payload)
    queue.purge_queue()
    assert task["func"] == "modelops.tasks.retrain_models"
    tasks.retrain_models(*task["args"])  # what the cluster runs
    decided = ModelEvent.objects.exclude(to_version=active_version)
    assert decided.exists() and set(decided.values_list("actor", flat=True)) == {"ana"}


def test_a_manager_puts_a_version_into_shadow_and_stops_it_in_the_admin(client, manager, active_version, trained):
    other = versions.record_version(result=trained)
    client.force_login(manager)
    page = client.post(CHANGELIST, {"action": "put_into_shadow", "_selected_action": [other.pk]})
    assert b"never answers or alerts" in page.content and other.role is None
    client.post(
        CHANGELIST,
        {"action": "put_into_shadow", "_selected_action": [other.pk], "confirmed": "yes", "reason": "try it"},
    )
    assert ModelVersion.objects.get(pk=other.pk).role == "shadow"
    manager.user_permissions.add(Permission.objects.get(codename="view_deployment"))
    assert b"shadow" in client.get("/admin/modelops/deployment/").content
    client.post(
        CHANGELIST,
        {"action": "stop_shadowing", "_selected_action": [other.pk], "confirmed": "yes", "reason": "enough"},
    )
    assert ModelVersion.objects.get(pk=other.pk).role is None
    kinds = list(ModelEvent.objects.filter(actor="ana").order_by("id").values_list("kind", "reason"))
    assert kinds == [("shadow", "try it"), ("unshadow", "enough")]
