"""A training run's lifecycle: start (one at a time, pausing a crash loop), heartbeat, finish."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from ..ml import training
from ..models import ModelVersion, TrainingRun
from . import versions

log = logging.getLogger(__name__)


class TrainingInProgress(Exception):
    """Another training run is running; this one was not started."""


# Beats missed before a run counts as dead; the heartbeat is its own thread, so a live run misses none.
STALE_AFTER_BEATS = 4


class RunAbandoned(Exception):
    """This run was declared dead and taken over by another; it must not record or activate."""


class TrainingPaused(Exception):
    """Scheduled training is paused: its last runs all died with their worker."""


ABANDONED = "abandoned: its worker stopped (no heartbeat) before the run finished"


def crash_loop() -> str | None:
    """Why scheduled training is paused (the last TRAINING_MAX_ABANDONED runs died with their worker),
    or None. Without it a run that kills its worker restarts for ever; a run by hand still starts."""
    limit = settings.TRAINING_MAX_ABANDONED
    if limit <= 0:
        return None
    errors = list(
        TrainingRun.objects.exclude(status=TrainingRun.Status.RUNNING).values_list("error", flat=True)[:limit]
    )
    if len(errors) < limit or any(error != ABANDONED for error in errors):
        return None
    return (
        f"scheduled training is paused: the last {limit} runs were abandoned by their worker; "
        "find the cause (memory, data), then start a run by hand (manage.py retrain or the admin)"
    )


def start_run(*, trigger: str) -> TrainingRun:
    """Open a TrainingRun; TrainingInProgress if one runs anywhere, TrainingPaused while crash_loop()
    says so. First closes runs whose heartbeat went stale, rejecting their candidates."""
    now = timezone.now()
    beats = timedelta(seconds=settings.TRAINING_HEARTBEAT_SECONDS * STALE_AFTER_BEATS)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=now - beats)
        | Q(heartbeat_at__isnull=True, started_at__lt=now - timedelta(seconds=settings.Q_CLUSTER["timeout"]))
    )
    for dead in stale:
        # The conditional update claims it: of two workers finding it, one closes it.
        closed = TrainingRun.objects.filter(pk=dead.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED,
            finished_at=now,
            error=ABANDONED,
        )
        if closed:
            log.warning("training run %s abandoned by its worker: closed as failed", dead.pk)
            versions.reject_candidates_of(
                run_id=dead.pk, actor="scheduler", reason=f"training run {dead.pk} was abandoned"
            )
    if trigger == TrainingRun.Trigger.SCHEDULE and (reason := crash_loop()):
        raise TrainingPaused(reason)
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(trigger=trigger, heartbeat_at=now)
    except IntegrityError:
        raise TrainingInProgress("a training run is already running") from None


class Heartbeat:
    """While open, a thread stamps heartbeat_at; once another worker has taken the run over,
    ``check()`` raises RunAbandoned, so it records or activates nothing more."""

    def __init__(self, run: TrainingRun):
        self.run_id = run.pk
        self.interval = settings.TRAINING_HEARTBEAT_SECONDS
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run.pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        if self.lost:
            raise RunAbandoned(f"training run {self.run_id} was taken over by another worker")

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    beat = TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                    if not beat:
                        self.lost = True
                        return
                except DatabaseError as exc:
                    log.warning("training run %s: heartbeat not written: %s", self.run_id, exc)
        finally:
            db_connection.close()


def finish_run(run: TrainingRun, *, log: list[str], error: str = "", version: ModelVersion | None = None) -> None:
    # Only a run still running: one already closed as abandoned stays closed.
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        status=TrainingRun.Status.FAILED if error else TrainingRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        log="\n".join(log),
        error=error,
        result_version=version,
    )


@dataclass
class RunSession:
    heartbeat: Heartbeat
    echo: Callable[[str], None]
    lines: list[str] = field(default_factory=list)
    version: ModelVersion | None = None  # set by the block

    def note(self, message: str) -> None:
        self.lines.append(message)
        self.echo(message)

    def step(self, message: str) -> None:
        # A run taken over by another worker stops here.
        self.heartbeat.check()
        self.note(message)


@contextmanager
def run_session(
    run: TrainingRun, *, actor: str, echo: Callable[[str], None], note_failure: bool
) -> Iterator[RunSession]:
    """Heartbeat while the block runs, then finish the run with ``session.version``, or, if it raises,
    as failed after rejecting its candidates. ``note_failure``: also write that to the run's log."""
    with Heartbeat(run) as heartbeat:
        session = RunSession(heartbeat, echo)
        try:
            yield session
        except (Exception, KeyboardInterrupt) as exc:
            # Ctrl-C too, or the run blocks training until stale. Not SystemExit: the cluster's
            # timeout raises it, and a timed-out run must count as abandoned.
            error = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
            explain = session.note if note_failure else lambda message: None
            explain(f"failed: {error}")
            for version in versions.reject_candidates_of(
                run_id=run.pk, actor=actor, reason=f"training run {run.pk} failed: {error}"
            ):
                explain(f"rejected v{version.version}: the run failed")
            finish_run(run, log=session.lines, error=error)
            raise
    finish_run(run, log=session.lines, version=session.version)


def train_config(**overrides) -> training.TrainConfig:
    return training.TrainConfig(**{**settings.FRAUD_TRAINING, **overrides})
