"""An analyst watches the primary's traffic on the monitoring pages, in a real headless Chromium
against the live server, as its state goes from unlabelled (no alert decided) to green (late labels
arrive) to drifting (drifted traffic); the browser, the screenshots and the world (v1 retired, v2
primary, an analyst and a model manager) are those of tests/browser/test_review_pages.py.

The windows are closed hours in the past: the traffic is stored with created_at inside them and
detection.monitoring.monitor runs in the test process with the clock (now=...) just after them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from detection import monitoring
from detection.models import MonitorWindow, Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml import synthetic
from modelops.ml.schema import FEATURES
from modelops.models import ModelEvent, ModelVersion
from modelops.services import deployments
from tests.browser import test_review_pages as review_pages

pytestmark = pytest.mark.slow

chromium, page, world = review_pages.chromium, review_pages.page, review_pages.world
shot, sign_in = review_pages.shot, review_pages.sign_in

HOUR = timedelta(hours=1)
ROWS = 800  # per window: enough that the alert rate of undrifted traffic stays near the expected
# The badges' colours (templates/base.html), as the browser computes them.
COLOURS = {"green": "rgb(223, 245, 227)", "drifting": "rgb(253, 226, 225)", "unlabelled": "rgb(255, 243, 205)"}


@pytest.fixture(autouse=True)
def hourly(settings):
    settings.MONITOR_WINDOW_MINUTES = 60
    settings.MONITOR_ALERT_WINDOWS = 3
    settings.MONITOR_PSI_ALERT = 0.2
    settings.MONITOR_DRIFT_ACTION = "alert"


def store(frame, at: datetime) -> list[int]:
    """Score ``frame`` with the primary and store it as if it arrived in the hour from ``at``."""
    values = frame[list(FEATURES)].to_numpy()
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    ids = [r.transaction_id for r in results]
    Transaction.objects.filter(pk__in=ids).update(created_at=at + timedelta(minutes=30))
    return ids


def overview_state(page, version: int) -> tuple[str, str]:
    """The state badge in the overview's row of ``version``: its text and its background colour."""
    row = page.locator("#deployed tr", has=page.locator(f'a:text-is("v{version}")'))
    badge = row.locator(".badge.state")
    return badge.inner_text(), badge.evaluate("b => getComputedStyle(b).backgroundColor")


def test_an_analyst_watches_the_primary_go_unlabelled_green_then_drifting(page, live_server, world, training_frame):
    base = live_server.url
    v1, v2 = world["v1"], world["v2"]
    # Six closed hours: v2 primary since the first; three of ordinary traffic, then three drifted.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    v2.deployment.since = start
    v2.deployment.save(update_fields=["since"])
    # v1, trained before references were recorded, watched as a shadow: nothing to compare with.
    ModelVersion.objects.filter(pk=v1.pk).update(reference={})
    deployments.deploy_shadow(version_id=v1.pk, actor="test", reason="watch it too")

    ordinary = [store(training_frame.iloc[h * ROWS : (h + 1) * ROWS], start + h * HOUR) for h in range(3)]
    assert monitoring.monitor(now=start + 3 * HOUR + timedelta(minutes=1))["new"] == 3
    sign_in(page, base, "ana", "/monitoring/")
    assert overview_state(page, 2) == ("unlabelled", COLOURS["unlabelled"])
    shadow_row = page.inner_text("#deployed tr:has(a:text-is('v1'))")
    assert "shadow" in shadow_row and "no data" in shadow_row and "(no reference)" in shadow_row, shadow_row
    assert "None." in page.inner_text("#drift")
    shot(page, "11-monitoring-unlabelled")

    # Late labels (chargebacks) on some of those hours' alerts: their windows are recomputed.
    alerted = list(
        Prediction.objects.filter(
            transaction_id__in=[pk for ids in ordinary for pk in ids], role="primary", is_fraud=True
        ).values_list("transaction_id", flat=True)
    )
    assert len(alerted) >= 4, "the ordinary traffic has frauds the primary flags"
    Transaction.objects.filter(pk__in=alerted[:-1]).update(label="fraud", reviewed_at=timezone.now())
    Transaction.objects.filter(pk=alerted[-1]).update(label="legitimate", reviewed_at=timezone.now())
    assert monitoring.monitor(now=start + 3 * HOUR + timedelta(minutes=5))["recomputed"] >= 1
    page.reload()
    assert overview_state(page, 2) == ("green", COLOURS["green"])
    shot(page, "12-monitoring-green")

    for h in range(3, 6):
        drifted = synthetic.generate(rows=ROWS, fraud_rate=0.01, seed=60 + h, drift=4.0, start_time=h * 3600.0)
        store(drifted, start + h * HOUR)
    found = monitoring.monitor(now=start + 6 * HOUR + timedelta(minutes=1))
    assert found["new"] == 3 and len(found["drift"]) == 1, found
    page.reload()
    assert overview_state(page, 2) == ("drifting", COLOURS["drifting"])
    drift = page.inner_text("#drift")
    assert "primary v2: PSI past 0.2" in drift and "in the last 3 windows of 60 minutes" in drift, drift
    shot(page, "13-monitoring-drifting")

    # The version's own page: six charts at a real size, the windows newest first, the event.
    page.click("#deployed a:text-is('v2')")
    page.wait_for_url(f"{base}/monitoring/2/?role=primary")
    assert page.inner_text("h1") == "Monitoring v2 as primary drifting"
    assert page.locator("#state").evaluate("b => getComputedStyle(b).backgroundColor") == COLOURS["drifting"]
    assert page.locator("#no-reference").count() == 0
    charts = page.locator("#charts svg")
    assert charts.count() == 6
    for i in range(6):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 150 and box["height"] > 100, (i, box)
    # Lines: volume, alert rate and expected, three quantiles, score and worst feature PSI, precision.
    assert page.locator("#charts polyline").count() >= 9
    assert page.locator("#charts rect.bar").count() >= 5  # the most drifting features
    rows = page.locator("#windows tr")
    assert rows.count() == 1 + 6
    windows = list(MonitorWindow.objects.filter(version=v2, role="primary").order_by("-start"))
    for row, window in zip(range(1, 7), windows, strict=True):
        cells = rows.nth(row).locator("td").all_inner_texts()
        assert cells[0] == timezone.localtime(window.start).strftime("%Y-%m-%d %H:%M"), cells
        assert (int(cells[1]), int(cells[2])) == (ROWS, window.alerts), cells
    newest, oldest = rows.nth(1).locator("td").all_inner_texts(), rows.nth(6).locator("td").all_inner_texts()
    assert float(newest[4]) > 0.2 and float(oldest[4]) < 0.1, (newest, oldest)
    assert re.fullmatch(r"\d+ \(\d+\)", oldest[6]) and windows[-1].decided_alerts > 0, oldest
    event = ModelEvent.objects.get(kind=ModelEvent.Kind.DRIFT)
    assert event.reason in page.inner_text("#drift")
    shot(page, "14-monitoring-version")

    # The version page's Monitoring section sums up the last window and links to the windows.
    page.goto(f"{base}/models/2/")
    section = page.inner_text("#monitoring")
    assert f"{ROWS} transactions" in section and "backfill_reference" not in section, section
    page.click("#monitoring a")
    page.wait_for_url(f"{base}/monitoring/2/")
    assert page.locator("#charts svg").count() == 6

    # A version without a reference says so, and how to backfill it, on both pages.
    page.goto(f"{base}/models/1/")
    section = page.inner_text("#monitoring")
    assert "No window summarised." in section and "manage.py backfill_reference 1 --csv FILE" in section, section
    shot(page, "15-version-without-reference")
    page.click("#monitoring a")
    page.wait_for_url(f"{base}/monitoring/1/")
    notice = page.inner_text("#no-reference")
    assert "no PSI can be computed" in notice and "manage.py backfill_reference 1 --csv FILE" in notice, notice
    assert "No window closed yet." in page.inner_text("#charts")
    assert "None yet." in page.inner_text("#windows")
    shot(page, "16-monitoring-without-reference")
