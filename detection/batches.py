"""Batch jobs: a large batch validated whole and stored as chunks of rows in the request, then
scored off the request path by a task, chunk by chunk, with the primary model on the one scoring
path (services.score_transactions). Each chunk's transactions and predictions, its answers and
the job's watermark ``chunks_done`` are committed together, the watermark moved by
compare-and-set: a run killed half-way resumes at the first chunk not committed, two runs of one
job never store a chunk twice, and every row is stored once."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from common import sqlite
from modelops.ml.artifact import ArtifactError
from modelops.ml.schema import FEATURES
from modelops.model_cache import NoPrimaryModel, serving_model

from .models import BatchChunk, BatchJob, Transaction
from .parsing import Batch
from .services import ExternalIdConflict, ScoreResult, check_external_ids, score_ahead, score_transactions
from .storage import VersionNotPrimary

log = logging.getLogger(__name__)

UNFINISHED = (BatchJob.Status.QUEUED, BatchJob.Status.RUNNING)
CSV_COLUMNS = (
    "row",
    "transaction_id",
    "external_id",
    "is_fraud",
    "fraud_probability",
    "threshold",
    "model_version",
    "repeated",
)
# Chunks a page or the CSV reads per query.
CHUNKS_PER_READ = 20


class _Overtaken(Exception):
    """Another run of the job committed this chunk first, or the job is no longer running."""


def submit(*, batch: Batch, client: str, input_format: str) -> BatchJob:
    """Store a validated batch as a queued job of ``client``; the caller queues its task once this
    commits (tasks.enqueue_batch). Raises ExternalIdConflict, or one of the errors of a missing or
    broken active model, before storing anything."""
    check_external_ids(batch=batch, client=client)
    serving_model()  # refused now, rather than a job that cannot be scored
    rows, size = len(batch), settings.BATCH_CHUNK_ROWS
    values = np.ascontiguousarray(batch.values, dtype="<f8")
    has_ids = any(external_id is not None for external_id in batch.external_ids)
    chunks = [
        BatchChunk(
            number=number,
            first_row=start,
            rows=min(size, rows - start),
            values=values[start : start + size].tobytes(),
            external_ids=batch.external_ids[start : start + size] if has_ids else None,
        )
        for number, start in enumerate(range(0, rows, size))
    ]
    with sqlite.write_queue(), transaction.atomic():
        job = BatchJob.objects.create(
            client=client, input_format=input_format, rows_total=rows, chunk_rows=size, chunks_total=len(chunks)
        )
        for chunk in chunks:
            chunk.job = job
        BatchChunk.objects.bulk_create(chunks, batch_size=50)
    return job


def run(job_id: uuid.UUID | str) -> BatchJob:
    """Score the job from its watermark to its end. A run starts only on a queued job, or on a
    running one without progress for BATCH_STALL_SECONDS (its worker presumably died); else it
    leaves the job to the run that has it. A conflict found now fails the job; any other error is
    recorded and raised, and the sweep queues the job again later."""
    job = _claim(job_id)
    if job is None:
        return BatchJob.objects.get(pk=job_id)
    try:
        while job.chunks_done < job.chunks_total:
            score_chunk(job)
    except _Overtaken:
        log.info("batch %s: another run goes on from chunk %s", job.pk, job.chunks_done)
    except ExternalIdConflict as exc:
        _fail(job, _conflict_reason(job, exc))
    except Exception as exc:
        log.exception("batch %s stopped at chunk %s", job.pk, job.chunks_done)
        BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.RUNNING).update(error=_reason(exc))
        raise
    else:
        BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.RUNNING, chunks_done=F("chunks_total")).update(
            status=BatchJob.Status.DONE, error="", finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


def _claim(job_id) -> BatchJob | None:
    """Mark the job running for this run, or None if it is finished or another run has it."""
    now = timezone.now()
    stalled = now - timedelta(seconds=settings.BATCH_STALL_SECONDS)
    claimed = (
        BatchJob.objects.filter(pk=job_id)
        .filter(Q(status=BatchJob.Status.QUEUED) | Q(status=BatchJob.Status.RUNNING, progress_at__lt=stalled))
        .update(
            status=BatchJob.Status.RUNNING,
            attempts=F("attempts") + 1,
            progress_at=now,
            started_at=Coalesce("started_at", now),
        )
    )
    if not claimed:
        return None
    job = BatchJob.objects.get(pk=job_id)
    if job.attempts > settings.BATCH_MAX_ATTEMPTS:
        last = job.error or "their worker stopped before it could record why"
        _fail(job, f"{job.attempts - 1} runs in a row stopped without scoring a chunk; the last: {last}")
        return None
    return job


def score_chunk(job: BatchJob) -> int:
    """Score the chunk at the job's watermark and commit it with the watermark's move; its rows."""
    number = job.chunks_done
    chunk = BatchChunk.objects.get(job_id=job.pk, number=number)
    if chunk.results is not None:
        raise _Overtaken  # committed by another run since this one read the watermark
    values = np.frombuffer(bytes(chunk.values), dtype="<f8").reshape(chunk.rows, len(FEATURES))
    batch = Batch(values=values, external_ids=chunk.external_ids or [None] * chunk.rows)
    # Scored before the write lock is taken: the cluster runs at a lower priority than the web
    # workers, and holding the lock while it computes would make their requests wait behind it.
    scored = score_ahead(batch)
    with sqlite.write_queue(), transaction.atomic():
        # First: a second run of this job waits here, then finds the watermark moved.
        moved = BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.RUNNING, chunks_done=number).update(
            chunks_done=number + 1,
            rows_scored=F("rows_scored") + chunk.rows,
            attempts=0,
            error="",
            progress_at=timezone.now(),
        )
        if not moved:
            raise _Overtaken
        results = score_transactions(
            batch=batch, source=Transaction.Source.BATCH, client=job.client, is_list=True, scored=scored
        )
        answers = [
            [r.transaction_id, r.is_fraud, r.fraud_probability, r.threshold, r.model_version, r.repeated]
            for r in results
        ]
        # The features are in the stored transactions now: only the answers are kept.
        BatchChunk.objects.filter(pk=chunk.pk).update(values=b"", results=answers)
    job.chunks_done, job.rows_scored = number + 1, job.rows_scored + chunk.rows
    return chunk.rows


def _fail(job: BatchJob, reason: str) -> None:
    BatchJob.objects.filter(pk=job.pk, status__in=UNFINISHED).update(
        status=BatchJob.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
    )


def _conflict_reason(job: BatchJob, exc: ExternalIdConflict) -> str:
    first_row = job.chunks_done * job.chunk_rows
    rows = ", ".join(str(first_row + item["index"]) for item in exc.detail.get("items", [])[:5])
    return f"row {rows}: {exc.detail['message']} (stored since the job was accepted)"


def _reason(exc: Exception) -> str:
    """What a client may read of why a run stopped: the detail stays in the task's log."""
    if isinstance(exc, NoPrimaryModel):
        return "no model is active"
    if isinstance(exc, ArtifactError):
        return "the active model cannot be loaded; the task log has the error"
    if isinstance(exc, VersionNotPrimary):
        return "the active model kept changing while a chunk was scored"
    if isinstance(exc, DatabaseError):
        return "the database was unavailable"
    return "an unexpected error; the task log has it"


def stalled(*, limit: int = 100) -> list[uuid.UUID]:
    """Unfinished jobs without progress for BATCH_STALL_SECONDS, not queued again for as long:
    marked queued again now, so that each is queued at most once per that time."""
    now = timezone.now()
    since = now - timedelta(seconds=settings.BATCH_STALL_SECONDS)
    waiting = Q(status__in=UNFINISHED, progress_at__lt=since) & (Q(requeued_at__isnull=True) | Q(requeued_at__lt=since))
    found = list(BatchJob.objects.filter(waiting).order_by("progress_at").values_list("pk", flat=True)[:limit])
    return [pk for pk in found if BatchJob.objects.filter(waiting, pk=pk).update(requeued_at=now)]


def scored_rows(job: BatchJob) -> int:
    """How many leading rows of the job have answers: those of its committed chunks."""
    return min(job.chunks_done * job.chunk_rows, job.rows_total)


def _answers(job: BatchJob, start: int, end: int) -> Iterator[tuple[int, ScoreResult]]:
    """(row, answer) for the rows start..end-1 (all scored), in order, read a few chunks a time."""
    if start >= end:
        return
    first, last = start // job.chunk_rows, (end - 1) // job.chunk_rows
    for number in range(first, last + 1, CHUNKS_PER_READ):
        chunks = (
            BatchChunk.objects.filter(
                job_id=job.pk, number__gte=number, number__lte=min(last, number + CHUNKS_PER_READ - 1)
            )
            .order_by("number")
            .values_list("first_row", "external_ids", "results")
        )
        for first_row, external_ids, results in chunks:
            for offset in range(max(start - first_row, 0), min(end - first_row, len(results))):
                pk, is_fraud, probability, threshold, version, repeated = results[offset]
                yield (
                    first_row + offset,
                    ScoreResult(
                        transaction_id=pk,
                        external_id=external_ids[offset] if external_ids else None,
                        is_fraud=is_fraud,
                        fraud_probability=probability,
                        threshold=threshold,
                        model_version=version,
                        contributions=[],
                        repeated=repeated,
                    ),
                )


def results_page(job: BatchJob, *, cursor: int, size: int) -> tuple[list[dict], int | None]:
    """Up to ``size`` answers from row ``cursor`` on, as /detect-fraud answers each with its row,
    and the cursor of the next page: None once no more rows will be scored."""
    scored = scored_rows(job)
    end = max(cursor, min(cursor + size, scored))
    page = [{"row": row, **answer.as_json(explain=False)} for row, answer in _answers(job, cursor, end)]
    # A failed job scores no more rows; an unfinished one will score the rest.
    last = scored if job.status == BatchJob.Status.FAILED else job.rows_total
    return page, (end if end < last else None)


def csv_lines(job: BatchJob, *, cursor: int = 0) -> Iterator[str]:
    """The answers from row ``cursor`` to the last one scored, as CSV, a few chunks at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, (row, answer) in enumerate(_answers(job, cursor, scored_rows(job)), start=1):
        has_id = answer.external_id is not None
        writer.writerow(
            [
                row,
                answer.transaction_id,
                answer.external_id if has_id else "",
                int(answer.is_fraud),
                repr(answer.fraud_probability),
                repr(answer.threshold),
                answer.model_version,
                int(answer.repeated) if has_id else "",
            ]
        )
        if count % 1_000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
