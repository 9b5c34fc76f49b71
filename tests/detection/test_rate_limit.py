"""The per-client rate limit: a sliding window estimated from two fixed windows' counters."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from detection.rate_limit import ClientRateThrottle, parse_rate, seconds_until_room
from modelops.ml.schema import FEATURES

ROW = {**{name: 0.0 for name in FEATURES}, "Time": 10, "Amount": 5}
START = 6000.0  # the start of a minute window


@pytest.fixture
def clock(monkeypatch, settings):
    settings.SCORING_API_OPEN = True
    cache.clear()
    now = [START]
    monkeypatch.setattr(ClientRateThrottle, "timer", staticmethod(lambda: now[0]))
    yield now
    cache.clear()


def codes(client, count: int) -> list[int]:
    return [
        client.post("/detect-fraud", json.dumps(ROW), content_type="application/json").status_code for _ in range(count)
    ]


def test_the_previous_window_counts_for_the_part_the_sliding_window_still_covers(
    client, active_version, clock, settings
):
    settings.SCORING_RATE_LIMIT = "10/min"
    assert codes(client, 11) == [200] * 10 + [429]
    clock[0] = START + 60 + 30  # half of the previous window still inside: 10 * 0.5 = 5 counted
    assert codes(client, 6) == [200] * 5 + [429]
    clock[0] = START + 120 + 59  # the 5 of the window before weigh 5 / 60: room for 9, not 10
    assert codes(client, 10) == [200] * 9 + [429]


def test_a_refused_request_uses_none_of_the_allowance(client, active_version, clock, settings):
    settings.SCORING_RATE_LIMIT = "2/min"
    assert codes(client, 7) == [200, 200] + [429] * 5
    clock[0] = START + 60 + 30  # 2 * 0.5 = 1 counted, were the refused counted it would be 3.5
    assert codes(client, 2) == [200, 429]


@pytest.mark.parametrize("when", [10.0, 45.0, 59.0])
def test_retry_after_is_the_moment_the_client_gets_through(client, active_version, clock, settings, when):
    settings.SCORING_RATE_LIMIT = "4/min"
    codes(client, 4)
    clock[0] = START + 60 + when
    while codes(client, 1) == [200]:
        pass
    refused = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
    wait = seconds_until_room(
        previous=4,
        current=cache.get(f"rate:ip:127.0.0.1:{int(START // 60) + 1}"),
        elapsed=when / 60,
        limit=4,
        period=60,
    )
    assert int(refused["Retry-After"]) >= wait > 0
    clock[0] += wait - 0.5
    assert codes(client, 1) == [429]
    clock[0] += 0.5 + 1e-6
    assert codes(client, 1) == [200]


def test_each_client_and_window_is_one_number_in_the_cache(client, active_version, clock, settings):
    # What the limit costs must not grow with the rate it allows, as a list of request times would.
    settings.SCORING_RATE_LIMIT = "100000/min"
    codes(client, 300)
    assert cache.get(f"rate:ip:127.0.0.1:{int(START // 60)}") == 300


@pytest.mark.parametrize(
    ("rate", "parsed"), [("60000/min", (60000, 60)), ("10/s", (10, 1)), ("5/hour", (5, 3600)), ("", None)]
)
def test_rates_parse_as_requests_per_period(rate, parsed):
    assert parse_rate(rate) == parsed


def test_a_malformed_rate_stops_the_settings_from_loading(tmp_path):
    from tests.test_settings import setting_under

    with pytest.raises(Exception, match="SCORING_RATE_LIMIT must be requests/period"):
        setting_under(tmp_path, "settings.SCORING_RATE_LIMIT", SCORING_RATE_LIMIT="lots")
