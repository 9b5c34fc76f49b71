"""The Dask training backend (TRAINING_BACKEND=dask): a retraining run's candidates, and a model from one
file, trained on a Dask cluster whose workers read the incoming storage themselves (s3:// through s3fs
with django-storages' credentials and endpoint, or the local folder's paths). This process sends paths
and receives counts, scores and models; the rows never pass through it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import distributed
import numpy as np
import pandas as pd
from django.conf import settings
from django.utils.module_loading import import_string

from .ml import dask_training, schema, training
from .ml.dask_training import Source
from .models import DataFile, ModelVersion, TrainingRun
from .retrain import Candidate, Trained, _skipped, _too_little_data
from .scan import incoming_storage, is_local
from .services import deployments, integrity, training_runs, versions


@contextmanager
def cluster(note: Callable[[str], None]) -> Iterator[distributed.Client]:
    """The configured cluster (DASK_SCHEDULER_ADDRESS), or a LocalCluster for this run only."""
    address = settings.DASK_SCHEDULER_ADDRESS
    with dask_training.open_cluster(
        address,
        workers=settings.DASK_LOCAL_WORKERS,
        threads=settings.DASK_LOCAL_THREADS,
        memory_limit=settings.DASK_WORKER_MEMORY,
    ) as client:
        size = dask_training.describe(client)
        where = f"the Dask scheduler at {address}" if address else "a local Dask cluster started for this run"
        note(f"training on {where}: {size['workers']} workers, {size['threads']} threads")
        yield client
        peaks = ", ".join(f"{mib:.0f}" for mib in dask_training.workers_peak_memory(client).values())
        note(f"the workers' peak memory since they started: {peaks} MiB")


def storage_options(storage) -> dict:
    """s3fs's options for django-storages' S3 settings (an unset key falls back to the workers' own
    credentials, as boto3 does here); none for a local folder."""
    if is_local(storage):
        return {}
    options: dict = {}
    if storage.access_key:
        options.update(key=storage.access_key, secret=storage.secret_key)
    if storage.endpoint_url:
        options["endpoint_url"] = storage.endpoint_url
    if storage.region_name:
        options["client_kwargs"] = {"region_name": storage.region_name}
    return options


def source_path(storage, key: str) -> str:
    if is_local(storage):
        return os.path.join(storage.location, key)
    return f"s3://{storage.bucket_name}/{storage._normalize_name(key)}"


def _source(storage, data_file: DataFile, *, new: bool) -> Source:
    # A local file is fingerprinted by its sha256, an S3 object by the ETag the scan recorded.
    expected = data_file.sha256 if is_local(storage) else data_file.etag
    return Source(source_path(storage, data_file.key), fingerprint=expected, new=new)


def train_candidates(
    files: list[DataFile], active: ModelVersion | None, *, actor: str, note: Callable[[str], None]
) -> Trained | None:
    """retrain's data and candidates, on the cluster: the same checks of each file, shared hold-out,
    warm start and full retrain, judged on the same rows. No RETRAIN_MAX_ROWS: the cluster holds the rows."""
    storage = incoming_storage()
    options = storage_options(storage)
    learned = {f.sha256 for f in files if f.status == DataFile.Status.USED}
    if active is not None:
        learned |= set(active.data_files.values_list("sha256", flat=True))
        learned |= set(active.data_files_sha256)
    distinct, seen = [], set()
    for data_file in files:
        if data_file.sha256 in seen:
            note(f"{data_file.key}: the same content as a file read above, read once")
            continue
        seen.add(data_file.sha256)
        distinct.append(data_file)
    config = training_runs.train_config()
    with cluster(note) as client:
        sources = [_source(storage, f, new=f.sha256 not in learned) for f in distinct]
        read, good = [], []
        for data_file, check in zip(distinct, dask_training.check_files(client, sources, options), strict=True):
            if check.missing or check.changed:
                why = "it is no longer in the storage" if check.missing else "its content changed since it was scanned"
                if data_file.status == DataFile.Status.NEW:
                    data_file.withdraw(why)
                _skipped(data_file, why, note)
            elif check.error:
                why = f"it no longer passes validation: {check.error}"
                data_file.reject_if_new(why)
                _skipped(data_file, why, note)
            else:
                read.append(data_file)
                good.append(check.source)
                note(f"{data_file.key}: {check.rows} rows, {check.frauds} frauds (checked on the workers)")
        labels, fresh_labels = _labels(active, note)
        contents = {f.sha256 for f in read}
        if not good and labels is None:
            note("no accepted data files and no labels: nothing to train on")
            return None
        data = dask_training.load(client, good, options, extra=labels, extra_new=fresh_labels)
        fresh = dask_training.new_rows(data)
        all_count, fresh_count = dask_training.counts(data, fresh)
        needed = 3 * training.MIN_PER_CLASS
        if not _enough(all_count, needed):
            _too_little_data(contents, f"{_described(all_count)}, at least {needed} of each are needed", note)
            return None
        if active is not None and not _enough(fresh_count, 2 * training.MIN_PER_CLASS):
            why = (
                f"{_described(fresh_count)} no model learned from, at least {2 * training.MIN_PER_CLASS} of each "
                "are needed to judge candidates against the active model"
            )
            _too_little_data(contents, why, note)
            return None
        if _enough(fresh_count, 2 * training.MIN_PER_CLASS):
            older, holdout, how = dask_training.newest_split(fresh, config.holdout_fraction)
            pool = dask_training.concat(dask_training.learned_rows(data), older)
            new_pool, method = older, f"newest new rows, {how}"
        else:
            pool, holdout, how = dask_training.newest_split(data, config.holdout_fraction)
            new_pool, method = dask_training.new_rows(pool), f"newest rows of all data, {how}"
        ((hold_rows, hold_frauds),) = dask_training.counts(holdout)
        note(f"{all_count[0]} rows; shared hold-out: {hold_rows} rows ({method}), {hold_frauds} frauds")

        active_bundle = None
        if active is not None:
            active_bundle = integrity.load_checked(
                version_id=active.pk, name=active.artifact, sha256=active.sha256, actor=actor, purpose="retraining"
            )
        candidates: list[Candidate] = []
        if active_bundle is not None:
            warm = _warm_start(client, active, active_bundle, new_pool, holdout, config, note)
            if warm is not None:
                candidates.append(warm)
        try:
            result = dask_training.train(client, pool, config, holdout=holdout, progress=note)
            candidates.append(Candidate(ModelVersion.Kind.FULL_RETRAIN, result, result.metrics))
        except schema.DataValidationError as exc:
            if not candidates:
                _too_little_data(contents, str(exc), note)
                return None
            note(f"full retrain skipped: {exc}")
        metric = settings.RETRAIN_METRIC
        baseline = None
        if active_bundle is not None:
            baseline = dask_training.evaluate_on(client, active_bundle, holdout)[metric]
    return Trained(candidates, baseline, method, read, contents)


def _labels(active: ModelVersion | None, note: Callable[[str], None]) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The analysts' labelled rows (from this database: few, and sent to the cluster as they are)."""
    frames, fresh = [], []
    for source in map(import_string, settings.RETRAIN_FEEDBACK_SOURCES):
        frame, new = source(active.created_at if active is not None else None)
        if len(frame):
            frames.append(frame)
            fresh.append(np.asarray(new, dtype=bool))
            note(
                f"analyst labels: {len(frame)} rows, {int(frame[schema.LABEL].sum())} frauds, "
                f"{int(np.sum(new))} first labelled since the active model was recorded"
            )
    if not frames:
        return None, None
    return pd.concat(frames, ignore_index=True), np.concatenate(fresh)


def _enough(count: tuple[int, int], needed: int) -> bool:
    rows, frauds = count
    return frauds >= needed and rows - frauds >= needed


def _described(count: tuple[int, int]) -> str:
    rows, frauds = count
    return f"{frauds} fraud and {rows - frauds} legitimate rows"


def _warm_start(client, active, bundle, new_pool, holdout, config, note) -> Candidate | None:
    """retrain._warm_start on the cluster: skipped past RETRAIN_WARM_START_MAX_TREES or on too few rows."""
    inherited, grown = bundle.booster.num_boosted_rounds(), training.trees_grown(config)
    bound = settings.RETRAIN_WARM_START_MAX_TREES
    if inherited + grown > bound:
        note(
            f"warm start skipped: active v{active.version}'s {inherited} trees and about {grown} more "
            f"would pass RETRAIN_WARM_START_MAX_TREES ({bound})"
        )
        return None
    try:
        result = dask_training.train(client, new_pool, config, init=bundle, holdout=holdout, progress=note)
    except schema.DataValidationError as exc:
        note(f"warm start skipped: {exc}")
        return None
    return Candidate(ModelVersion.Kind.WARM_START, result, result.metrics)


def train_from_path(
    *,
    path: str,
    activate: bool,
    actor: str,
    trigger: str = TrainingRun.Trigger.MANUAL,
    config: training.TrainConfig | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ModelVersion:
    """train_file.train_from_csv on the cluster: the workers read ``path``, so they must reach it (a
    LocalCluster's do, as do a cluster's on a shared folder). DataValidationError for a bad file, with
    its line, and only the failed run is written."""
    run = training_runs.start_run(trigger=trigger)
    with training_runs.run_session(run, actor=actor, echo=progress, note_failure=False) as session:
        source, options = Source(str(Path(path).resolve())), {}
        with cluster(session.step) as client:
            session.step(f"checking {Path(path).name} on the workers")
            (check,) = dask_training.check_files(client, [source], options, require_fraud=True)
            if check.missing:
                raise FileNotFoundError(path)
            if check.problem is not None:
                raise check.problem
            session.step(f"{check.rows} rows, {check.frauds} frauds")
            data = dask_training.load(client, [source], options)
            result = dask_training.train(client, data, config or training_runs.train_config(), progress=session.step)
        session.heartbeat.check()
        version = versions.record_version(result=result, training_run=run)
        session.step(f"recorded v{version.version}")
        if activate:
            session.heartbeat.check()
            version = deployments.activate_version(
                version_id=version.pk, actor=actor, reason=f"trained on {Path(path).name} on a Dask cluster"
            )
            session.step(f"activated v{version.version}")
        session.version = version
    return version
