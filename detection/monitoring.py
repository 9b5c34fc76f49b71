"""Watching deployed versions between retrains: each closed window of their traffic summarised
(volume, alerts, score quantiles, PSI against the training reference, labelled outcomes), read
once by id range in chunks; windows recomputed when late labels arrive; drift recorded."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from modelops.ml import reference
from modelops.ml.schema import FEATURES
from modelops.models import DataFile, Deployment, ModelEvent, ModelVersion, TrainingRun
from modelops.tasks import enqueue_retrain

from . import comparison, stored_rows
from .models import MonitorWindow, Transaction

log = logging.getLogger(__name__)

CHUNK = 20_000
# Score quantiles from a histogram this fine: bounded memory whatever the window's size.
QUANTILE_BINS = 1_000
# A run computes at most this many new windows per version; the next run goes on.
WINDOWS_PER_RUN = 200


def window_minutes() -> int:
    return max(1, settings.MONITOR_WINDOW_MINUTES)


def floor_to_window(moment: datetime) -> datetime:
    minutes = window_minutes()
    epoch = moment.timestamp() // (minutes * 60) * (minutes * 60)
    return datetime.fromtimestamp(epoch, tz=moment.tzinfo or timezone.get_current_timezone())


class _Summary:
    def __init__(self, ref: dict, threshold: float):
        self.ref, self.threshold = ref, threshold
        self.transactions = self.alerts = 0
        self.scores = np.zeros(QUANTILE_BINS, dtype=np.int64)
        features = ref.get("features", {})
        self.bins = {
            name: np.zeros(len(features[name]["shares"]), dtype=np.int64)
            for name in reference.MONITORED
            if name in features
        }
        score_ref = ref.get("score")
        self.score_bins = np.zeros(len(score_ref["shares"]), dtype=np.int64) if score_ref else None
        self.decided = self.confirmed = self.missed = 0
        self.confirmed_amount = self.missed_amount = 0.0

    def add(self, chunk: stored_rows.Chunk) -> None:
        scored = ~np.isnan(chunk.stored_score)
        if not scored.any():
            return
        score, alert = chunk.stored_score[scored], chunk.stored_alert[scored]
        values, label, amount = chunk.values[scored], chunk.label[scored], chunk.amount[scored]
        self.transactions += len(score)
        self.alerts += int(alert.sum())
        self.scores += np.bincount(
            np.minimum((score * QUANTILE_BINS).astype(int), QUANTILE_BINS - 1), minlength=QUANTILE_BINS
        )
        for column, name in enumerate(FEATURES):
            if name in self.bins:
                self.bins[name] += reference.counts_in(values[:, column], self.ref["features"][name]["edges"])
        if self.score_bins is not None:
            self.score_bins += reference.counts_in(score, self.ref["score"]["edges"])
        fraud, known = label == comparison.FRAUD, label != comparison.UNLABELLED
        self.decided += int((alert & known).sum())
        self.confirmed += int((alert & fraud).sum())
        self.confirmed_amount += float(amount[alert & fraud].sum())
        self.missed += int((~alert & fraud).sum())
        self.missed_amount += float(amount[~alert & fraud].sum())

    def quantiles(self) -> dict:
        total = self.scores.sum()
        if not total:
            return {}
        cumulative = np.cumsum(self.scores) / total
        return {
            name: float((np.searchsorted(cumulative, q) + 1) / QUANTILE_BINS)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        }

    def fields(self) -> dict:
        feature_psi = {
            name: reference.psi(self.ref["features"][name]["shares"], counts) for name, counts in self.bins.items()
        }
        feature_psi = {name: round(value, 5) for name, value in feature_psi.items() if value is not None}
        top = max(feature_psi, key=feature_psi.get) if feature_psi else ""
        score_psi = reference.psi(self.ref["score"]["shares"], self.score_bins) if self.score_bins is not None else None
        return {
            "transactions": self.transactions,
            "alerts": self.alerts,
            "score_quantiles": self.quantiles(),
            "score_psi": score_psi,
            "feature_psi": feature_psi,
            "top_feature": top,
            "top_feature_psi": feature_psi.get(top),
            "decided_alerts": self.decided,
            "confirmed_alerts": self.confirmed,
            "confirmed_amount": self.confirmed_amount,
            "missed_frauds": self.missed,
            "missed_amount": self.missed_amount,
        }


def summarise(version: ModelVersion, role: str, start: datetime, end: datetime) -> MonitorWindow:
    """Compute (or recompute) one window of ``version`` in ``role``."""
    bounds = stored_rows.window_ids(start, end)
    summary = _Summary(version.reference or {}, version.threshold)
    if bounds["first"] is not None:
        after = bounds["first"] - 1
        while after < bounds["last"]:
            chunk = stored_rows.read_after(
                after, size=CHUNK, through=bounds["last"], since=start, until=end, scored_by=(version.pk, role)
            )
            if not len(chunk):
                break
            summary.add(chunk)
            after = int(chunk.ids[-1])
    window, _ = MonitorWindow.objects.update_or_create(
        version=version,
        role=role,
        start=start,
        defaults={"end": end, "computed_at": timezone.now(), **summary.fields()},
    )
    return window


def monitor(*, now: datetime | None = None) -> dict:
    """Scheduled: summarise every deployed version's closed windows not yet summarised, recompute
    windows whose transactions got labels since, and apply the drift policy."""
    now = now or timezone.now()
    closed_until = floor_to_window(now)
    width = timedelta(minutes=window_minutes())
    done = {"new": 0, "recomputed": 0, "drift": []}
    for deployment in Deployment.objects.select_related("version"):
        version, role = deployment.version, deployment.role
        latest = MonitorWindow.objects.filter(version=version, role=role).order_by("-start").first()
        start = latest.end if latest else floor_to_window(deployment.since)
        until = closed_until if role == Deployment.Role.PRIMARY else _scored_until(deployment, closed_until)
        for _ in range(WINDOWS_PER_RUN):
            if start + width > until:
                break
            summarise(version, role, start, start + width)
            done["new"] += 1
            start += width
        done["recomputed"] += _recompute_relabelled(version, role)
        found = apply_drift_policy(version, role)
        if found:
            done["drift"].append(found)
    return done


def _scored_until(deployment: Deployment, closed_until: datetime) -> datetime:
    """A shadow scores a little behind the traffic: only windows it has wholly scored are closed for it."""
    scored = Transaction.objects.filter(pk=deployment.scored_through or 0).values_list("created_at", flat=True).first()
    return min(closed_until, floor_to_window(scored)) if scored else deployment.since


def _recompute_relabelled(version: ModelVersion, role: str) -> int:
    """Windows with a transaction labelled after the window was computed, within MONITOR_RELABEL_DAYS."""
    recent = MonitorWindow.objects.filter(
        version=version, role=role, start__gte=timezone.now() - timedelta(days=settings.MONITOR_RELABEL_DAYS)
    )
    oldest = recent.aggregate(computed=Min("computed_at"), start=Min("start"))
    if oldest["computed"] is None:
        return 0
    labelled = Transaction.objects.filter(
        label__isnull=False, reviewed_at__gt=oldest["computed"], created_at__gte=oldest["start"]
    ).values_list("created_at", "reviewed_at")
    stale = set()
    windows = {w.start: w for w in recent}
    for created, reviewed in labelled:
        window = windows.get(floor_to_window(created))
        if window is not None and reviewed > window.computed_at:
            stale.add(window.start)
    for start in stale:
        window = windows[start]
        summarise(version, role, window.start, window.end)
    return len(stale)


def apply_drift_policy(version: ModelVersion, role: str) -> str | None:
    """A drift event when the last MONITOR_ALERT_WINDOWS windows all drifted (PSI past
    MONITOR_PSI_ALERT, or the alert rate MONITOR_ALERT_RATE_FACTOR times off the expected), once per
    streak; with MONITOR_DRIFT_ACTION=retrain, a retrain is queued if accepted data waits."""
    count = settings.MONITOR_ALERT_WINDOWS
    last = list(MonitorWindow.objects.filter(version=version, role=role).order_by("-start")[:count])
    if len(last) < count:
        return None
    why = _drifted(last, version)
    if why is None:
        return None
    streak_start = last[-1].start
    if ModelEvent.objects.filter(kind=ModelEvent.Kind.DRIFT, to_version=version, created_at__gte=streak_start).exists():
        return None
    minutes = window_minutes()
    reason = (
        f"{role} v{version.version}: {why} in the last {count} windows of {minutes} minute{'s' if minutes != 1 else ''}"
    )
    queued = settings.MONITOR_DRIFT_ACTION == "retrain" and DataFile.objects.filter(status=DataFile.Status.NEW).exists()
    if queued:
        enqueue_retrain(trigger=TrainingRun.Trigger.SCHEDULE, actor="monitoring")
        reason += "; a retrain is queued (MONITOR_DRIFT_ACTION=retrain)"
    ModelEvent.objects.create(
        kind=ModelEvent.Kind.DRIFT, from_version=version, to_version=version, actor="monitoring", reason=reason
    )
    log.warning("drift: %s", reason)
    return reason


def _drifted(windows: list[MonitorWindow], version: ModelVersion) -> str | None:
    limit = settings.MONITOR_PSI_ALERT
    enough = settings.MONITOR_MIN_TRANSACTIONS
    # PSI of a few rows is mostly noise: a window needs enough transactions to count.
    if all(w.drift is not None and w.drift > limit and w.transactions >= enough for w in windows):
        newest = windows[0]
        what = f"score PSI {newest.score_psi:.3f}" if newest.score_psi is not None else "score PSI n/a"
        if newest.top_feature:
            what += f", {newest.top_feature} PSI {newest.top_feature_psi:.3f}"
        return f"PSI past {limit} ({what} in the newest)"
    expected = (version.reference or {}).get("alert_rate")
    if expected and all(_alert_rate_off(w, expected, enough) for w in windows):
        return f"alert rate {windows[0].alert_rate:.4f} against {expected:.4f} expected"
    return None


def _alert_rate_off(window: MonitorWindow, expected: float, enough: int) -> bool:
    """Outside the factor's band, and by more than chance: alerts are rare, so a window of a few
    hundred transactions often holds none, or two where half of one was expected."""
    if window.transactions < enough or window.alert_rate is None:
        return False
    factor = settings.MONITOR_ALERT_RATE_FACTOR
    if expected / factor <= window.alert_rate <= expected * factor:
        return False
    wanted = expected * window.transactions
    return abs(window.alerts - wanted) > 3 * math.sqrt(wanted)  # three standard deviations of a Poisson count


def state(version: ModelVersion, role: str) -> str:
    """At a glance: drifting, green, unlabelled (no decided alert lately) or no data."""
    last = list(
        MonitorWindow.objects.filter(version=version, role=role).order_by("-start")[: settings.MONITOR_ALERT_WINDOWS]
    )
    if not last:
        return "no data"
    if _drifted(last, version):
        return "drifting"
    if not sum(w.decided_alerts for w in last):
        return "unlabelled"
    return "green"
