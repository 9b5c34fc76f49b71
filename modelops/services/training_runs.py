"""A training run's lifecycle: start it (one at a time, pausing a crash loop), keep its
heartbeat while it runs, finish it."""

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


# A run whose heartbeat is older than this many beats is dead: a live run misses none (its
# heartbeat is a thread of its own, not a step of the training).
STALE_AFTER_BEATS = 4


class RunAbandoned(Exception):
    """This run was declared dead and taken over by another; it must not record or activate."""


class TrainingPaused(Exception):
    """Scheduled training is paused: its last runs all died with their worker."""


ABANDONED = "abandoned: its worker stopped (no heartbeat) before the run finished"


def crash_loop() -> str | None:
    """Why scheduled training is paused, or None.

    A training that kills its worker (out of memory on a huge data set, say) would otherwise be
    started again by every schedule and by the broker's redelivery, for ever. After
    TRAINING_MAX_ABANDONED runs in a row died that way, the schedule stops starting runs; a run
    started by hand (command or admin) still starts, and once one finishes, the schedule resumes.
    """
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
    """Open a TrainingRun, or raise TrainingInProgress if one is running anywhere, or
    TrainingPaused for a scheduled run while crash_loop() says so.

    A run left "running" by a worker that died (SIGKILL, out of memory, a lost machine) is
    closed as failed, and the candidates it recorded are rejected, once its heartbeat is older
    than STALE_AFTER_BEATS beats (or, for a run that never beat, once it is older than the task
    timeout), so it cannot block training for ever.
    """
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
    """While open, a thread stamps the run's heartbeat_at every TRAINING_HEARTBEAT_SECONDS.

    If it finds the run no longer running (another worker declared it dead, e.g. after this
    process was frozen for minutes), ``check()`` raises RunAbandoned from then on, so the run
    stops before it records or activates anything beside the one that took over.
    """

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
                    if not beat:  # no longer running: another worker took it over
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
    """A training run while open (see run_session): its heartbeat, its log, and its result."""

    heartbeat: Heartbeat
    echo: Callable[[str], None]  # where each log line goes besides the run's log
    lines: list[str] = field(default_factory=list)
    version: ModelVersion | None = None  # the run's result, set by the code in the block

    def note(self, message: str) -> None:
        self.lines.append(message)
        self.echo(message)

    def step(self, message: str) -> None:
        # Every step of a run taken over by another worker stops it here.
        self.heartbeat.check()
        self.note(message)


@contextmanager
def run_session(
    run: TrainingRun, *, actor: str, echo: Callable[[str], None], note_failure: bool
) -> Iterator[RunSession]:
    """Keep a started run's heartbeat while the block runs, then finish the run: succeeded with
    ``session.version``, or, when the block raises, failed with the error after rejecting the
    candidates it recorded (the exception propagates).

    ``note_failure`` also writes the failure and each rejection to the run's log (and echo): a
    background retrain is known by its log, while train_from_csv's caller reports the exception.
    """
    with Heartbeat(run) as heartbeat:
        session = RunSession(heartbeat, echo)
        try:
            yield session
        except (Exception, KeyboardInterrupt) as exc:
            # Ctrl-C too: left running, the run would refuse every training until its heartbeat
            # went stale, then count as abandoned towards crash_loop(). (Not SystemExit: the task
            # cluster's timeout raises one, and a run that times out must count as abandoned.)
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
