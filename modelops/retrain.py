"""Retraining: candidates and the active model judged on the same newest rows; the best activated."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .ml import evaluation, schema, training
from .ml.artifact import ModelBundle
from .models import DataFile, ModelVersion, TrainingRun
from .scan import incoming_storage, printable, read_file
from .services import deployments, integrity, training_runs, versions

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


@dataclass
class Candidate:
    kind: str  # ModelVersion.Kind.WARM_START or FULL_RETRAIN
    result: training.TrainResult
    metrics: dict  # on the shared hold-out
    version: ModelVersion | None = None


class Trained(NamedTuple):
    """What a backend trained, for the judgement both share."""

    candidates: list[Candidate]
    baseline: float | None  # the active model's RETRAIN_METRIC on the shared hold-out
    method: str  # how the hold-out was chosen
    files: list[DataFile]  # the files read
    contents: set[str]  # their contents' sha256


# creditcard_YYYYmmdd_HHMMSS.csv, as the export names its files.
_STAMPED_NAME = re.compile(r"(\d{8}_\d{6})[^/]*$")


def data_time(data_file: DataFile) -> datetime:
    """When a file's data was exported: the time in its name (a late upload keeps its place), else first_seen."""
    stamp = _STAMPED_NAME.search(data_file.key)
    if stamp:
        try:
            return datetime.strptime(stamp.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            pass
    return data_file.first_seen


def _within_window(files: list[DataFile], note: Callable[[str], None]) -> list[DataFile]:
    """The files (in time order) within RETRAIN_WINDOW_DAYS of the newest one's time, so a run learns
    from the newest data only; a new file older than that is rejected, saying so. 0 keeps them all."""
    days = settings.RETRAIN_WINDOW_DAYS
    if days <= 0 or not files:
        return files
    start = data_time(files[-1]) - timedelta(days=days)
    kept = [f for f in files if data_time(f) >= start]
    why = f"its time is over {days} days before the newest file's (RETRAIN_WINDOW_DAYS)"
    for data_file in files[: len(files) - len(kept)]:
        data_file.reject_if_new(why)
        _skipped(data_file, why, note)
    return kept


def _load_data(
    files: list[DataFile], active: ModelVersion | None, note: Callable[[str], None]
) -> tuple[pd.DataFrame, pd.Series, list[DataFile], set[str]]:
    """(rows in time order, whether no model learned each row, the files read, their contents' sha256).
    Each content is read once; a file gone, changed or no longer valid is skipped, and rejected if new.
    Files are read newest first and reading stops at RETRAIN_MAX_ROWS, so older data is never loaded."""
    storage = incoming_storage()
    learned = {f.sha256 for f in files if f.status == DataFile.Status.USED}
    if active is not None:
        learned |= set(active.data_files.values_list("sha256", flat=True))
        learned |= set(active.data_files_sha256)  # for an adopted version, from its artifact
    labels, labels_new = [], []
    for source in map(import_string, settings.RETRAIN_FEEDBACK_SOURCES):
        # Only labels given after the active version was recorded may join the hold-out, or it is favoured.
        frame, fresh = source(active.created_at if active is not None else None)
        if len(frame):
            labels.append(frame)
            labels_new.append(pd.Series(fresh, index=range(len(frame))))
            note(
                f"analyst labels: {len(frame)} rows, {int(frame[schema.LABEL].sum())} frauds, "
                f"{int(fresh.sum())} first labelled since the active model was recorded"
            )
    names: dict[str, list[DataFile]] = {}  # each content's names, in time order; contents ordered by the first
    for data_file in files:
        names.setdefault(data_file.sha256, []).append(data_file)
    cap = settings.RETRAIN_MAX_ROWS
    held = sum(len(frame) for frame in labels)  # the labels come last, so within the newest rows
    frames, is_new, read = [], [], []
    ordered = list(names)
    for position in range(len(ordered) - 1, -1, -1):
        if held >= cap:
            note(f"keeping the newest {cap} rows (RETRAIN_MAX_ROWS): the older files are not read")
            _outside_cap(ordered[: position + 1], note)
            break
        copies = iter(names[ordered[position]])
        for data_file in copies:
            frame = _read_valid(storage, data_file, note)
            if frame is not None:
                break
        else:
            continue
        for copy in copies:
            note(f"{copy.key}: the same content as a file read above, read once")
        read.append(data_file)
        frames.append(frame.sort_values("Time", kind="stable"))
        is_new.append(pd.Series(data_file.sha256 not in learned, index=range(len(frame))))
        held += len(frame)
        note(f"{data_file.key}: {len(frame)} rows, {int(frame[schema.LABEL].sum())} frauds")
    frames, is_new, read = frames[::-1] + labels, is_new[::-1] + labels_new, read[::-1]
    contents = {f.sha256 for f in read}
    if not frames:
        return pd.DataFrame(columns=list(schema.COLUMNS)), pd.Series(dtype=bool), read, contents
    data = pd.concat(frames, ignore_index=True)
    new = pd.concat(is_new, ignore_index=True)
    if len(data) > cap:  # the oldest file read keeps only its newest rows
        note(f"keeping the newest {cap} of the {len(data)} rows read (RETRAIN_MAX_ROWS)")
        data, new = data.iloc[-cap:].reset_index(drop=True), new.iloc[-cap:].reset_index(drop=True)
    return data, new, read, contents


def _read_valid(storage, data_file: DataFile, note: Callable[[str], None]) -> pd.DataFrame | None:
    """The file's rows, or None if it is gone, changed since its scan or no longer valid (it is then
    skipped, and rejected or withdrawn if new)."""
    try:
        data = read_file(storage, data_file.key)
    except FileNotFoundError:
        data = None
    if data is None or hashlib.sha256(data).hexdigest() != data_file.sha256:
        # A changed file's new content is recorded by the scan as a new file.
        why = "it is no longer in the storage" if data is None else "its content changed since it was scanned"
        if data_file.status == DataFile.Status.NEW:
            data_file.withdraw(why)
        _skipped(data_file, why, note)
        return None
    try:
        return schema.read_training_csv(data, require_fraud=False)
    except schema.DataValidationError as exc:
        why = f"it no longer passes validation: {exc}"
        data_file.reject_if_new(why)
        _skipped(data_file, why, note)
        return None


def _outside_cap(contents: list[str], note: Callable[[str], None]) -> None:
    """Reject the new files holding these contents, under every name: a run marks all it read as used,
    and a file left new would call a retrain at every scan."""
    why = f"none of its rows are among the newest {settings.RETRAIN_MAX_ROWS} kept for retraining (RETRAIN_MAX_ROWS)"
    for same in DataFile.objects.filter(sha256__in=contents, status=DataFile.Status.NEW).order_by("pk"):
        same.reject_if_new(why)
        _skipped(same, why, note)


def _skipped(data_file: DataFile, why: str, note: Callable[[str], None]) -> None:
    if data_file.status == DataFile.Status.NEW:
        note(f"{data_file.key}: rejected, {why}")
    else:
        note(f"{data_file.key}: skipped, {why} (a training used it before)")


def _mark_used(contents: set[str]) -> None:
    """Mark what a successful run read as used, under every name, one a concurrent scan added included."""
    with transaction.atomic():
        DataFile.objects.filter(sha256__in=contents, status=DataFile.Status.NEW).update(
            status=DataFile.Status.USED, processed_at=timezone.now()
        )


def _too_little_data(contents: set[str], why: str, note: Callable[[str], None]) -> None:
    """End a run that cannot train: its files stay new, marked looked at so only a new file calls a run."""
    DataFile.objects.filter(sha256__in=contents, status=DataFile.Status.NEW).update(processed_at=timezone.now())
    note(f"not enough data to train: {why}; the files wait for more data")


def _enough_new_rows(fresh: pd.DataFrame) -> bool:
    """Whether rows no model learned from can make a hold-out (and leave rows to learn from)."""
    return training.has_both_classes(fresh, 2 * training.MIN_PER_CLASS)


def _counts(frame: pd.DataFrame) -> str:
    frauds = int(frame[schema.LABEL].sum())
    return f"{frauds} fraud and {len(frame) - frauds} legitimate rows"


def shared_holdout(
    data: pd.DataFrame, fresh: pd.DataFrame, config: training.TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(training pool, hold-out, how chosen): the newest of ``fresh`` (rows no model learned), so all are
    judged fairly; else the newest of all, which only a run without an active model may use."""
    if _enough_new_rows(fresh):
        _, holdout, method = training.holdout_split(fresh, config.holdout_fraction, seed=config.seed, ordered=True)
        # holdout_split numbers rows from 0: map them back to ``data``.
        holdout = fresh.iloc[holdout.index.to_numpy()]
        return data.drop(index=holdout.index), holdout, f"newest new rows, {method}"
    pool, holdout, method = training.holdout_split(data, config.holdout_fraction, seed=config.seed, ordered=True)
    return pool, holdout, f"newest rows of all data, {method}"


def _score(bundle: ModelBundle, holdout: pd.DataFrame) -> dict:
    scores = bundle.predict_proba(holdout[list(schema.FEATURES)].to_numpy())
    return evaluation.evaluate(holdout[schema.LABEL].to_numpy(), scores, bundle.threshold)


def retrain(
    *, trigger: str = TrainingRun.Trigger.SCHEDULE, actor: str = SCHEDULER, backend: str = ""
) -> TrainingRun | None:
    """Train candidates on all accepted data and activate the best unless it trails the active model
    by more than RETRAIN_TOLERANCE on RETRAIN_METRIC; the run, or None if another is running or
    scheduled training is paused. Files become used only when the run succeeds. ``backend``: "local"
    or "dask", else TRAINING_BACKEND."""
    try:
        run = training_runs.start_run(trigger=trigger)
    except training_runs.TrainingInProgress:
        log.info("retrain skipped: another training run is running")
        return None
    except training_runs.TrainingPaused as exc:
        log.error("retrain skipped: %s", exc)
        return None

    def echo(message: str) -> None:
        log.info("run %s: %s", run.pk, printable(message))  # a key may hold a newline

    with training_runs.run_session(run, actor=actor, echo=echo, note_failure=True) as session:
        session.version = _retrain(run, actor, session.step, backend or settings.TRAINING_BACKEND)
    run.refresh_from_db()
    return run


def _warm_start(
    active: ModelVersion,
    bundle: ModelBundle,
    new_pool: pd.DataFrame,
    holdout: pd.DataFrame,
    config: training.TrainConfig,
    note: Callable[[str], None],
) -> Candidate | None:
    """The active model continued on the new rows, or None past RETRAIN_WARM_START_MAX_TREES (scoring
    slows with trees) or when the new rows cannot support training."""
    inherited, grown, bound = (
        bundle.booster.num_boosted_rounds(),
        training.trees_grown(config),
        settings.RETRAIN_WARM_START_MAX_TREES,
    )
    if inherited + grown > bound:
        note(
            f"warm start skipped: active v{active.version}'s {inherited} trees and about {grown} more "
            f"would pass RETRAIN_WARM_START_MAX_TREES ({bound})"
        )
        return None
    try:
        result = training.train(new_pool, config, init=bundle, holdout=holdout, ordered=True, progress=note)
    except schema.DataValidationError as exc:
        note(f"warm start skipped: {exc}")
        return None
    return Candidate(ModelVersion.Kind.WARM_START, result, _score(result.bundle, holdout))


def _into_shadow(version: ModelVersion, *, actor: str, reason: str, note: Callable[[str], None]) -> ModelVersion:
    """RETRAIN_PROMOTION=shadow: the best candidate is scored beside the primary until a person (or
    SHADOW_AUTO_PROMOTE) promotes it. ActivationUnavailable fails the run, as it does for an activation."""
    deployments.deploy_shadow(version_id=version.pk, actor=actor, reason=f"{reason} (RETRAIN_PROMOTION=shadow)")
    note(f"v{version.version} put into shadow beside the primary (RETRAIN_PROMOTION=shadow)")
    return version


def _retrain(run: TrainingRun, actor: str, note: Callable[[str], None], backend: str) -> ModelVersion | None:
    files = sorted(
        DataFile.objects.filter(status__in=[DataFile.Status.NEW, DataFile.Status.USED]).order_by("first_seen", "id"),
        key=data_time,
    )
    files = _within_window(files, note)
    active = ModelVersion.objects.primary().first()
    if backend == "dask":
        from . import dask_backend  # only a run on a cluster imports dask

        trained = dask_backend.train_candidates(files, active, actor=actor, note=note)
    else:
        trained = _train_candidates(files, active, actor, note)
    return _judge(run, actor, active, trained, note) if trained is not None else None


def _train_candidates(
    files: list[DataFile], active: ModelVersion | None, actor: str, note: Callable[[str], None]
) -> Trained | None:
    data, new, files, contents = _load_data(files, active, note)
    if data.empty:
        note("no accepted data files and no labels: nothing to train on")
        return None
    needed = 3 * training.MIN_PER_CLASS
    if not training.has_both_classes(data, needed):
        _too_little_data(contents, f"{_counts(data)}, at least {needed} of each are needed", note)
        return None
    fresh = data[new.to_numpy()]
    if active is not None and not _enough_new_rows(fresh):
        why = (
            f"{_counts(fresh)} no model learned from, at least {2 * training.MIN_PER_CLASS} of each "
            "are needed to judge candidates against the active model"
        )
        _too_little_data(contents, why, note)
        return None
    config = training_runs.train_config()
    pool, holdout, method = shared_holdout(data, fresh, config)
    note(f"{len(data)} rows; shared hold-out: {len(holdout)} rows ({method}), {int(holdout.Class.sum())} frauds")
    new_pool = pool[new.loc[pool.index].to_numpy()]

    active_bundle = None
    if active is not None:
        # Unreadable or altered fails the run: activating a candidate unchecked would bypass RETRAIN_TOLERANCE.
        active_bundle = integrity.load_checked(
            version_id=active.pk, name=active.artifact, sha256=active.sha256, actor=actor, purpose="retraining"
        )
    candidates: list[Candidate] = []
    if active_bundle is not None:
        warm = _warm_start(active, active_bundle, new_pool, holdout, config, note)
        if warm is not None:
            candidates.append(warm)
    try:
        result = training.train(pool, config, holdout=holdout, ordered=True, progress=note)
        candidates.append(Candidate(ModelVersion.Kind.FULL_RETRAIN, result, _score(result.bundle, holdout)))
    except schema.DataValidationError as exc:  # the rows left beside the hold-out are too few
        if not candidates:
            _too_little_data(contents, str(exc), note)
            return None
        note(f"full retrain skipped: {exc}")

    metric = settings.RETRAIN_METRIC
    baseline = _score(active_bundle, holdout)[metric] if active_bundle is not None else None
    return Trained(candidates, baseline, method, files, contents)


def _judge(
    run: TrainingRun, actor: str, active: ModelVersion | None, trained: Trained, note: Callable[[str], None]
) -> ModelVersion | None:
    """Record every candidate, activate the best unless it trails the active model by more than
    RETRAIN_TOLERANCE, reject the others, and mark the files read as used."""
    candidates, baseline, method, files, contents = trained
    metric, tolerance = settings.RETRAIN_METRIC, settings.RETRAIN_TOLERANCE
    for candidate in candidates:
        # In the artifact too: a database that adopts it knows which files it learned.
        candidate.result.bundle.metadata["data_files_sha256"] = sorted(contents)
        candidate.result.metrics = {**candidate.metrics, "split": method, "compared_with_active": baseline}
        candidate.version = versions.record_version(
            result=candidate.result,
            data_files=files,
            parent=active if candidate.kind == ModelVersion.Kind.WARM_START else None,
            kind=candidate.kind,
            training_run=run,
            data_files_sha256=contents,
        )
        seconds = candidate.result.bundle.metadata["training_seconds"]
        note(
            f"v{candidate.version.version} ({candidate.kind}, {candidate.result.rows} rows, trained in {seconds} s): "
            f"{metric} {candidate.metrics[metric]:.4f} on the hold-out"
        )
    if baseline is not None:
        note(f"active v{active.version}: {metric} {baseline:.4f} on the same hold-out")

    best = max(candidates, key=lambda c: c.metrics[metric])
    good_enough = baseline is None or best.metrics[metric] >= baseline - tolerance
    chosen = None
    if good_enough:
        reason = f"retrain run {run.pk}: {metric} {best.metrics[metric]:.4f}" + (
            f" vs active v{active.version} {baseline:.4f}" if baseline is not None else ""
        )
    if good_enough and settings.RETRAIN_PROMOTION == "shadow" and active is not None:  # else none decides
        try:
            chosen = _into_shadow(best.version, actor=actor, reason=reason, note=note)
        except deployments.ShadowError as exc:
            note(str(exc))
    elif good_enough:
        note(f"activating v{best.version.version}")
        try:
            chosen = deployments.activate_version(
                version_id=best.version.pk, actor=actor, reason=reason, replacing=active
            )
            note(f"activated v{chosen.version}")
        except deployments.ActivationUnavailable:
            raise  # the bucket is down, not the candidate bad: the run fails, its data stays new
        except deployments.PrimaryChanged as exc:
            # Judged against a version no longer serving, and a rollback is an operator's decision.
            note(f"{exc}; the candidates are rejected, and the next run takes the data files up again")
            versions.reject_candidates_of(run_id=run.pk, actor=actor, reason=str(exc))
            return None
        except deployments.ActivationError as exc:
            note(str(exc))
    for candidate in candidates:
        if chosen is not None and candidate.version.pk == chosen.pk:
            continue
        score = candidate.metrics[metric]
        if good_enough:
            why = f"not chosen: {metric} {score:.4f}, v{best.version.version} scored {best.metrics[metric]:.4f}"
        else:
            why = f"{metric} {score:.4f} is below active v{active.version} ({baseline:.4f}) by more than {tolerance}"
        versions.reject_version(candidate.version, actor=actor, reason=why, active=active)
        note(f"rejected v{candidate.version.version}: {why}")

    _mark_used(contents)
    return chosen
