"""Use cases of model operations: record a trained model, activate or roll back a version,
train from a data file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Max, Q
from django.utils import timezone

from . import artifacts
from .ml import artifact as artifact_format
from .ml import schema, training
from .ml.artifact import ArtifactError, ModelBundle
from .models import DataFile, ModelEvent, ModelVersion, TrainingRun

log = logging.getLogger(__name__)


# One integrity event per version in this window: every worker finds a bad artifact on every
# request, and the audit trail needs the fact, not thousands of copies of it.
INTEGRITY_EVENT_EVERY = timedelta(minutes=10)


class ActivationError(Exception):
    """A version that must not become active; the active one is left as it was."""


class ActivationUnavailable(ActivationError):
    """The artifact store could not be read: nothing is known against the version, try later."""


class ActiveVersionChanged(ActivationError):
    """Another version became active (a rollback, say) since the caller compared with the one
    it expected: the version was not activated."""


ANY = object()  # activate_version(replacing=ANY): whatever version is active
# pg_advisory_xact_lock's key for activations; any constant no other lock of this database uses.
ACTIVATION_LOCK = 7_240_101


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
            reject_candidates_of(run_id=dead.pk, actor="scheduler", reason=f"training run {dead.pk} was abandoned")
    if trigger == TrainingRun.Trigger.SCHEDULE and (reason := crash_loop()):
        raise TrainingPaused(reason)
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(trigger=trigger, heartbeat_at=now)
    except IntegrityError:
        raise TrainingInProgress("a training run is already running") from None


def reject_version(version: ModelVersion, *, actor: str, reason: str, active: ModelVersion | None) -> bool:
    """Reject a candidate, with its reject event, in one transaction. False (and no event) if it
    is no longer a candidate: another worker decided it first."""
    with transaction.atomic():
        if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.CANDIDATE).update(
            status=ModelVersion.Status.REJECTED
        ):
            return False
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.REJECT, from_version=active, to_version=version, actor=actor, reason=reason
        )
    return True


def reject_candidates_of(*, run_id: int, actor: str, reason: str) -> list[ModelVersion]:
    """Reject the versions a run recorded and left undecided (it failed or died before
    activating or rejecting them), each with a reject event. Returns them."""
    active = ModelVersion.objects.active().first()
    candidates = ModelVersion.objects.filter(status=ModelVersion.Status.CANDIDATE, params__training_run=run_id)
    return [v for v in candidates if reject_version(v, actor=actor, reason=reason, active=active)]


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
            for version in reject_candidates_of(
                run_id=run.pk, actor=actor, reason=f"training run {run.pk} failed: {error}"
            ):
                explain(f"rejected v{version.version}: the run failed")
            finish_run(run, log=session.lines, error=error)
            raise
    finish_run(run, log=session.lines, version=session.version)


def train_config(**overrides) -> training.TrainConfig:
    return training.TrainConfig(**{**settings.FRAUD_TRAINING, **overrides})


def record_version(
    *,
    result: training.TrainResult,
    data_files: list[DataFile] | tuple = (),
    parent: ModelVersion | None = None,
    status: str = ModelVersion.Status.CANDIDATE,
) -> ModelVersion:
    """Store a trained model as a new version with the next version number.

    The artifact is uploaded before the row is written, so no row ever names a missing file.
    """
    name, sha256 = artifacts.store(result.bundle)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                number = (ModelVersion.objects.aggregate(top=Max("version"))["top"] or 0) + 1
                version = ModelVersion.objects.create(
                    version=number,
                    artifact=name,
                    sha256=sha256,
                    signing_key=artifacts.signing_key().id,
                    status=status,
                    threshold=result.bundle.threshold,
                    params=result.params,
                    metrics=result.metrics,
                    training_rows=result.rows,
                    training_frauds=result.frauds,
                    parent=parent,
                    library_versions=result.bundle.metadata.get("library_versions", {}),
                )
                version.data_files.set(data_files)
            return version
        except IntegrityError:
            # Another process took this version number first; take the next one.
            continue
    raise RuntimeError("could not allocate a model version number")


def activate_version(
    *, version_id: int, actor: str, user=None, reason: str = "", replacing: ModelVersion | object | None = ANY
) -> ModelVersion:
    """Make a version the active one (a rollback when it is older than the active one).

    The artifact is loaded and its checksum verified first: a version that fails is never
    activated, a `reject` event records why, and ActivationError is raised. When the store
    cannot be read at all, ActivationUnavailable is raised and nothing is recorded against the
    version. The switch and its audit event are one transaction; activations take turns.
    ``replacing``: the version (or None) the caller expects to be active, for a choice made by
    comparing with it; ActiveVersionChanged, and nothing changed, if another is active by then.
    """
    target = ModelVersion.objects.get(pk=version_id)
    try:
        artifacts.load(target.artifact, target.sha256)
    except artifacts.ArtifactUnavailable as exc:
        raise ActivationUnavailable(f"v{target.version} cannot be activated now: {exc}") from exc
    except ArtifactError as exc:
        ModelEvent.objects.create(
            kind=ModelEvent.Kind.REJECT,
            from_version=ModelVersion.objects.active().first(),
            to_version=target,
            actor=actor,
            user=user,
            reason=f"activation refused: {exc}",
        )
        raise ActivationError(f"v{target.version} cannot be activated: {exc}") from exc

    with transaction.atomic():
        _one_activation_at_a_time()
        current = ModelVersion.objects.select_for_update().active().first()
        target = ModelVersion.objects.select_for_update().get(pk=version_id)
        if replacing is not ANY and getattr(current, "pk", None) != getattr(replacing, "pk", None):
            now_active = f"v{current.version}" if current is not None else "no version"
            raise ActiveVersionChanged(f"v{target.version} not activated: {now_active} is active since it was compared")
        if current is not None and current.pk == target.pk:
            return target
        kind = ModelEvent.Kind.ROLLBACK if current and target.version < current.version else ModelEvent.Kind.ACTIVATE
        if current is not None:
            current.status = ModelVersion.Status.RETIRED
            current.save(update_fields=["status"])
        target.status = ModelVersion.Status.ACTIVE
        target.activated_at = timezone.now()
        target.save(update_fields=["status", "activated_at"])
        ModelEvent.objects.create(
            kind=kind, from_version=current, to_version=target, actor=actor, user=user, reason=reason
        )
    log.info("model v%s %s by %s", target.version, kind, actor)
    transaction.on_commit(_point_at_active)
    return target


def _point_at_active() -> None:
    """Name the version active now in the bucket's pointer. Read at the time of writing rather
    than taken from the activation: of two activations that commit close together, the one
    whose callback runs last may have committed first."""
    current = ModelVersion.objects.active().first()
    if current is not None:
        artifacts.point_at(current.artifact)


def _one_activation_at_a_time() -> None:
    """Make concurrent activations wait for each other until commit. On PostgreSQL locking the
    active row is not enough: a second activation waiting for it finds it retired at commit, sees
    no active version, and breaks the one-active constraint. SQLite's transactions take the write
    lock when they begin (BEGIN IMMEDIATE), which does the same."""
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVATION_LOCK])


def record_integrity_failure(*, version_id: int, reason: str, actor: str) -> ModelEvent | None:
    """Record that a version's artifact failed verification, unless the same was recorded for
    it within INTEGRITY_EVENT_EVERY. The version keeps its status: an active version stays
    active (nothing better is known to serve) until an operator restores its artifact or rolls
    back. Returns the new event, or None when one was recorded recently."""
    log.error("model version id %s: %s", version_id, reason)
    recent = ModelEvent.objects.filter(
        kind=ModelEvent.Kind.INTEGRITY,
        to_version_id=version_id,
        created_at__gte=timezone.now() - INTEGRITY_EVENT_EVERY,
    )
    if recent.exists():
        return None
    return ModelEvent.objects.create(
        kind=ModelEvent.Kind.INTEGRITY,
        from_version_id=version_id,
        to_version_id=version_id,
        actor=actor,
        reason=reason,
    )


def load_checked(
    *, version_id: int, name: str, sha256: str, actor: str, when: str = "", walk: bool = False
) -> ModelBundle:
    """Load an active version's artifact. One that fails verification is recorded as an
    integrity event (``when`` ends its reason, e.g. " when retraining") and ArtifactError is
    raised; a storage outage raises ArtifactUnavailable and records nothing, as nothing says
    the file is bad. ``walk``: also lay the trees out for the numpy walk, as serving needs."""
    try:
        bundle = artifacts.load(name, sha256)
        if walk:
            bundle.walker  # noqa: B018
        return bundle
    except artifacts.ArtifactUnavailable:
        raise
    except ArtifactError as exc:
        record_integrity_failure(
            version_id=version_id, reason=f"the active artifact failed verification{when}: {exc}", actor=actor
        )
        raise


def verify_active_artifact(*, actor: str) -> str:
    """Download the active version's artifact and check it, as a new worker would, so an
    altered file is found (and recorded) even while every running worker serves its copy from
    memory. Returns what was found."""
    active = ModelVersion.objects.active().first()
    if active is None:
        return "no active version"
    try:
        load_checked(version_id=active.pk, name=active.artifact, sha256=active.sha256, actor=actor)
    except artifacts.ArtifactUnavailable as exc:
        return f"active v{active.version} not checked: {exc}"
    except ArtifactError as exc:
        return f"active v{active.version} FAILED verification: {exc}"
    return f"active v{active.version} verified"


def train_from_csv(
    *,
    path: str | Path,
    activate: bool,
    actor: str,
    trigger: str = TrainingRun.Trigger.MANUAL,
    config: training.TrainConfig | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ModelVersion:
    """Validate a labelled data file, train on it and record the model as a new version
    (activated if asked). Every call is a TrainingRun with its log.

    Raises schema.DataValidationError for a file that cannot be used; nothing but the failed
    TrainingRun is written then.
    """
    run = start_run(trigger=trigger)
    with run_session(run, actor=actor, echo=progress, note_failure=False) as session:
        session.step(f"reading {Path(path).name}")
        frame = schema.read_training_csv(path)
        session.step(f"{len(frame)} rows, {int(frame[schema.LABEL].sum())} frauds")
        result = training.train(frame, config or train_config(), progress=session.step)
        result.params["training_run"] = run.pk
        session.heartbeat.check()
        version = record_version(result=result)
        session.step(f"recorded v{version.version}")
        if activate:
            session.heartbeat.check()
            version = activate_version(version_id=version.pk, actor=actor, reason=f"trained on {Path(path).name}")
            session.step(f"activated v{version.version}")
        session.version = version
    return version


def adopt_from_storage(*, actor: str, allow_unsigned: bool = False) -> tuple[ModelVersion | None, list[str]]:
    """Bootstrap a deployment whose database has no active model from the models storage (as the
    original app fetched its model from the bucket): record the artifact that was active last
    (artifacts.pointed_at), or else the newest one, that verifies, and activate it. Artifact
    names are their sha256, so a file whose content does not hash to its name was altered and is
    skipped; so is one not signed by this service's key, recorded as an integrity event.
    ``allow_unsigned``: an artifact stored before signing is adopted too, and signed anew.
    Returns (activated version or None, what was skipped).
    """
    storage = artifacts.models_storage()
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:  # a local folder not created yet: nothing stored
        names = []
    names = sorted((n for n in names if n.endswith(".json")), key=storage.get_modified_time, reverse=True)
    active = artifacts.pointed_at()
    names.sort(key=lambda name: name != active)  # stable: the rest stay newest first
    skipped = []
    for name in names:
        data = artifacts.read(name)
        sha256 = artifact_format.sha256_hex(data)
        if name != f"{sha256}.json":
            skipped.append(f"{name}: content does not match its checksum name")
            continue
        try:
            bundle = artifact_format.loads(
                data, sha256=sha256, keys=artifacts.verifying_keys(), allow_unsigned=allow_unsigned
            )
        except ArtifactError as exc:
            skipped.append(f"{name}: {exc}")
            ModelEvent.objects.create(
                kind=ModelEvent.Kind.INTEGRITY, actor=actor, reason=f"not adopted: {name!r}: {exc}"
            )
            continue
        version = ModelVersion.objects.filter(sha256=sha256).first()
        reason = f"adopted from the models storage ({name})"
        if version is None:
            meta = bundle.metadata
            result = training.TrainResult(
                bundle=bundle,
                metrics=meta.get("metrics", {}),
                params={**meta.get("params", {}), "adopted_from": name},
                rows=meta.get("training_rows", 0),
                frauds=meta.get("training_frauds", 0),
            )
            version = record_version(result=result)  # stored signed, under a new name if it was not
            if not bundle.signed_by:
                reason += f", unsigned, signed anew as {version.artifact} (--allow-unsigned)"
        return activate_version(version_id=version.pk, actor=actor, reason=reason), skipped
    return None, skipped


def sign_unsigned_versions(*, actor: str) -> list[str]:
    """Sign the artifacts of recorded versions stored before artifacts were signed, each one
    checked against its recorded sha256 first; each version then names its signed copy, and a
    `sign` event says so. An operator's explicit step (adopt_model --allow-unsigned)."""
    done = []
    for version in ModelVersion.objects.filter(signing_key="").order_by("version"):
        try:
            bundle = artifact_format.loads(
                artifacts.read(version.artifact),
                sha256=version.sha256,
                keys=artifacts.verifying_keys(),
                allow_unsigned=True,
            )
        except ArtifactError as exc:
            done.append(f"v{version.version} not signed: {exc}")
            continue
        old = version.artifact
        if not bundle.signed_by:
            version.artifact, version.sha256 = artifacts.store(bundle)
        version.signing_key = bundle.signed_by or artifacts.signing_key().id
        with transaction.atomic():
            version.save(update_fields=["artifact", "sha256", "signing_key"])
            if old != version.artifact:
                ModelEvent.objects.create(
                    kind=ModelEvent.Kind.SIGN,
                    from_version=version,
                    to_version=version,
                    actor=actor,
                    reason=f"unsigned artifact {old} signed as {version.artifact} (--allow-unsigned)",
                )
                done.append(f"v{version.version}: {old} signed as {version.artifact}")
    if done and ModelVersion.objects.active().exists():
        transaction.on_commit(_point_at_active)
    return done
