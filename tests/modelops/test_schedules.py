from __future__ import annotations

from io import StringIO

from django.conf import settings as project_settings
from django.core.management import call_command
from django_q.models import Schedule


def sync() -> str:
    out = StringIO()
    call_command("sync_schedules", stdout=out)
    return out.getvalue().strip()


def test_sync_creates_the_schedules_once(db):
    assert sync() == (
        "created scan-incoming; created scan-labels; created monitor-windows; created score-shadows; "
        "created sweep-batches"
    )
    assert sync() == "schedules are up to date"
    found = Schedule.objects.order_by("name").values_list("func", "schedule_type", "minutes", "repeats")
    assert list(found) == [
        ("detection.tasks.monitor_windows", Schedule.MINUTES, 5, -1),
        ("modelops.tasks.scan_incoming", Schedule.MINUTES, 60, -1),
        ("detection.tasks.scan_labels", Schedule.MINUTES, 60, -1),
        ("detection.tasks.score_shadows", Schedule.MINUTES, 1, -1),
        ("detection.tasks.sweep_batches", Schedule.MINUTES, 1, -1),
    ]


def test_sync_follows_a_changed_interval(db, settings):
    sync()
    settings.SCAN_INTERVAL_MINUTES = 5
    assert sync() == "updated scan-incoming: minutes; updated scan-labels: minutes"
    assert Schedule.objects.get(name="scan-incoming").minutes == 5


def test_the_cluster_never_hands_a_running_task_to_a_second_worker():
    cluster = project_settings.Q_CLUSTER
    # retry > timeout, finite attempts, and no burst of missed runs after downtime.
    assert cluster["retry"] > cluster["timeout"]
    assert 0 < cluster["max_attempts"] < 10
    assert cluster["catch_up"] is False
    assert ("redis" in cluster) == bool(project_settings.REDIS_URL)
    assert ("orm" in cluster) != bool(project_settings.REDIS_URL)
