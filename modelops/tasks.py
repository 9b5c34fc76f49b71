"""django-q2 tasks: thin shells that take plain values and call a service. Safe to run twice."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task

from . import retrain, scan
from .models import DataFile, TrainingRun
from .services import integrity, training_runs


def scan_incoming() -> str:
    """Scheduled: record new files, queue a retrain if data awaits, check the active artifact."""
    result = scan.scan_incoming()
    if _awaiting_training():
        enqueue_retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    checked = integrity.verify_active_artifact(actor=retrain.SCHEDULER)
    summary = f"{result.summary()}; {checked}"
    if result.storage_failed:
        # Failed, so the admin lists it; files not read were not recorded and are retried.
        raise scan.StorageUnavailable(summary)
    return summary


def retrain_models(trigger: str = TrainingRun.Trigger.SCHEDULE, actor: str = retrain.SCHEDULER) -> str:
    # Queued twice it trains once: the first run marks the files used. Manual runs always train.
    if trigger == TrainingRun.Trigger.SCHEDULE and not _awaiting_training():
        return "skipped: no new data files"
    run = retrain.retrain(trigger=trigger, actor=actor)
    if run is None:  # the admin lists this result: say which of the two
        paused = training_runs.crash_loop() if trigger == TrainingRun.Trigger.SCHEDULE else None
        return f"skipped: {paused}" if paused else "skipped: another training run is running"
    made = run.result_version
    return f"run {run.pk}: {run.status}" + (f", v{made.version} {made.state}" if made else "")


def _awaiting_training() -> bool:
    """Whether a new file arrived that no run has looked at yet."""
    return DataFile.objects.filter(status=DataFile.Status.NEW, processed_at__isnull=True).exists()


def enqueue_retrain(*, trigger: str, actor: str = retrain.SCHEDULER) -> None:
    """Queue a retrain once the current transaction commits; ``actor`` is named in its audit events."""
    transaction.on_commit(
        lambda: async_task("modelops.tasks.retrain_models", trigger, actor, task_name="retrain", group="retrain")
    )


def enqueue_scan() -> None:
    """Queue the scheduled scan's work now, as the admin's button asks."""
    transaction.on_commit(lambda: async_task("modelops.tasks.scan_incoming", task_name="scan", group="scan"))
