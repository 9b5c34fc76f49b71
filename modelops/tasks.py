"""django-q2 tasks: thin shells that take plain values and call a service. Safe to run twice."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task

from . import retrain, scan
from .models import DataFile, TrainingRun
from .services import integrity, training_runs


def scan_incoming() -> str:
    """Scheduled: record new data files, queue one retrain if accepted data awaits, and check
    the active artifact in the bucket."""
    result = scan.scan_incoming()
    if _awaiting_training():
        enqueue_retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    checked = integrity.verify_active_artifact(actor=retrain.SCHEDULER)
    summary = f"{result.summary()}; {checked}"
    if result.storage_failed:
        # A failed task is what the cluster records and the admin lists (Failed tasks); the
        # schedule runs again at its next time, and files not read were not recorded.
        raise scan.StorageUnavailable(summary)
    return summary


def retrain_models(trigger: str = TrainingRun.Trigger.SCHEDULE, actor: str = retrain.SCHEDULER) -> str:
    # Queued twice (two scans, or a retry after a success) it trains once: the first run marks
    # the files used, so the second finds nothing new. Manual runs always train.
    if trigger == TrainingRun.Trigger.SCHEDULE and not _awaiting_training():
        return "skipped: no new data files"
    run = retrain.retrain(trigger=trigger, actor=actor)
    if run is None:  # the result django-q2 keeps, which the admin lists: say which of the two
        paused = training_runs.crash_loop() if trigger == TrainingRun.Trigger.SCHEDULE else None
        return f"skipped: {paused}" if paused else "skipped: another training run is running"
    return f"run {run.pk}: {run.status}" + (f", v{run.result_version.version} active" if run.result_version else "")


def _awaiting_training() -> bool:
    """Whether a new file arrived that no run has looked at yet (one that found too little data
    to train on marks its files so; they are read again with the next file)."""
    return DataFile.objects.filter(status=DataFile.Status.NEW, processed_at__isnull=True).exists()


def enqueue_retrain(*, trigger: str, actor: str = retrain.SCHEDULER) -> None:
    """Queue a retrain once the current transaction commits (never for a rolled-back change).
    ``actor``: who asked, named in the audit events of what the run activates or rejects."""
    transaction.on_commit(
        lambda: async_task("modelops.tasks.retrain_models", trigger, actor, task_name="retrain", group="retrain")
    )


def enqueue_scan() -> None:
    """Queue the scheduled scan's work now, as the admin's button asks."""
    transaction.on_commit(lambda: async_task("modelops.tasks.scan_incoming", task_name="scan", group="scan"))
