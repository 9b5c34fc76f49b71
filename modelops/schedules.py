"""Schedules declared in code; `manage.py sync_schedules` (run by `make run`) writes them."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule


def declared() -> dict[str, dict]:
    return {
        "scan-incoming": {
            "func": "modelops.tasks.scan_incoming",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.SCAN_INTERVAL_MINUTES,
            "repeats": -1,
        },
        "scan-labels": {
            "func": "detection.tasks.scan_labels",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.SCAN_INTERVAL_MINUTES,
            "repeats": -1,
        },
        "monitor-windows": {
            "func": "detection.tasks.monitor_windows",
            "schedule_type": Schedule.MINUTES,
            # Often enough that a window is summarised soon after it closes, and late labels soon after.
            "minutes": max(1, min(settings.MONITOR_WINDOW_MINUTES, 5)),
            "repeats": -1,
        },
        "score-shadows": {
            "func": "detection.tasks.score_shadows",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
        # Batch jobs whose run died (a killed worker, a lost queue message) are queued again.
        "sweep-batches": {
            "func": "detection.tasks.sweep_batches",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    }


def sync() -> list[str]:
    """Create or update the declared schedules (idempotent); return what changed."""
    changed = []
    for name, fields in declared().items():
        schedule, created = Schedule.objects.get_or_create(name=name, defaults={**fields, "next_run": timezone.now()})
        if created:
            changed.append(f"created {name}")
            continue
        stale = {key: value for key, value in fields.items() if getattr(schedule, key) != value}
        if stale:
            for key, value in stale.items():
                setattr(schedule, key, value)
            schedule.save(update_fields=list(stale))
            changed.append(f"updated {name}: {', '.join(stale)}")
    return changed
