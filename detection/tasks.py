"""django-q2 tasks of detection: thin shells that call a service. Safe to run twice."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from modelops.models import Deployment
from modelops.services import deployments

from . import backtests, batches, label_feed, monitoring, shadow_promotion, shadow_scoring

log = logging.getLogger(__name__)


def score_shadows() -> str:
    """Scheduled every minute: catch every shadow up, then (if asked) promote a winning one."""
    done = shadow_scoring.score_shadows()
    lines = [f"v{number}: {count} scored" for number, count in done.items()] or ["no shadows"]
    if settings.SHADOW_AUTO_PROMOTE:
        for deployment in Deployment.objects.shadows().select_related("version"):
            try:
                decided = shadow_promotion.consider(deployment)
            except deployments.ActivationError as exc:
                decided = False, f"v{deployment.version.version} not promoted: {exc}"
            if decided:
                promoted, why = decided
                lines.append(why)
                if promoted:
                    break  # one a run: the others are judged against the new primary's decisions next time
    return "; ".join(lines)


def run_backtest(backtest_id: int) -> str:
    backtest = backtests.run(backtest_id)
    return f"backtest {backtest.pk}: {backtest.status}, {backtest.rows_done} of {backtest.rows_total} transactions"


def enqueue_backtest(backtest_id: int) -> None:
    """Queue a backtest once the current transaction commits."""
    transaction.on_commit(
        lambda: async_task(
            "detection.tasks.run_backtest", backtest_id, task_name=f"backtest-{backtest_id}", group="backtest"
        )
    )


def monitor_windows() -> str:
    """Scheduled: summarise closed windows of every deployed version, recompute relabelled ones, drift."""
    done = monitoring.monitor()
    drift = f"; drift: {' | '.join(done['drift'])}" if done["drift"] else ""
    return f"{done['new']} windows summarised, {done['recomputed']} recomputed{drift}"


def scan_labels() -> str:
    """Scheduled with the bucket scan: apply new label files of the labels/ prefix."""
    result = label_feed.scan_labels()
    if result.error:
        raise RuntimeError(result.error)  # failed, so the admin lists it; the next scan retries
    return result.summary()


def run_batch(job_id: str) -> str:
    job = batches.run(job_id)
    return f"batch {job.pk}: {job.status}, {job.rows_scored} of {job.rows_total} rows"


def enqueue_batch(job_id) -> None:
    """Queue a batch job's run once the current transaction commits."""
    transaction.on_commit(lambda: _queue_batch(job_id))


def _queue_batch(job_id) -> None:
    try:
        async_task("detection.tasks.run_batch", str(job_id), task_name=f"batch-{job_id}", group="batch")
    except Exception:  # any broker's failure: the job is stored, and an error would make the client post it again
        log.warning("batch job %s is stored but could not be queued; the sweep queues it", job_id, exc_info=True)


def sweep_batches() -> str:
    """Scheduled every minute: queue again the unfinished batch jobs without progress for a while,
    whose run died with its worker (or was never queued)."""
    found = batches.stalled()
    for job_id in found:
        enqueue_batch(job_id)
    return f"{len(found)} stalled batch job(s) queued again" if found else "no stalled batch jobs"
