"""The per-client rate limit of the API (SCORING_RATE_LIMIT), counted in the cache.

A sliding window estimated from two fixed windows' counters: the previous window's count, weighted
by how much of it the sliding window still covers, plus the current one's. Each request costs one
counter increment, where DRF's SimpleRateThrottle reads and writes a list of every request's time,
whose cost grows with the rate it allows.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

from .auth import client_of

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """ "60000/min" -> (60000, 60); "" -> None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    if not count.isdigit() or period[:1] not in _PERIODS:
        raise ValueError(f"a rate is requests/period, such as 600/min or 10/s, not {rate!r}")
    return int(count), _PERIODS[period[0]]


def seconds_until_room(*, previous: int, current: int, elapsed: float, limit: int, period: int) -> float:
    """How long until the estimate leaves room for one more request, ``elapsed`` (0..1) into a
    window that has ``current`` requests after one of ``previous``."""
    if current < limit and previous:
        # The previous window's weight falls until previous * (1 - e) + current + 1 <= limit.
        return max(0.0, 1 - (limit - current - 1) / previous - elapsed) * period
    # Only in the next window, where this one's count weighs as the previous.
    return ((1 - elapsed) + max(0.0, 1 - (limit - 1) / max(current, 1))) * period


class ClientRateThrottle(throttling.BaseThrottle):
    """Requests per client (key, user, else address). The count is per process unless the cache is
    shared (Redis); a refused request is not counted."""

    timer = time.time

    def allow_request(self, request, view):
        rate = parse_rate(settings.SCORING_RATE_LIMIT)
        if rate is None:
            return True
        limit, period = rate
        now = self.timer()
        window, into = divmod(now, period)
        client = client_of(request) or f"ip:{self.get_ident(request)}"
        key = f"rate:{client}:{int(window)}"
        current = _increment(key, timeout=2 * period)  # kept through the next window, which reads it
        previous = cache.get(f"rate:{client}:{int(window) - 1}", 0)
        elapsed = into / period
        if previous * (1 - elapsed) + current <= limit:
            return True
        cache.decr(key)
        self._wait = seconds_until_room(
            previous=previous, current=current - 1, elapsed=elapsed, limit=limit, period=period
        )
        return False

    def wait(self):
        return self._wait


def _increment(key: str, *, timeout: int) -> int:
    """Add one to the counter ``key``, creating it if need be; atomic on Redis."""
    try:
        return cache.incr(key)
    except ValueError:  # the window's first request, or two firsts at once: one add wins
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)
