"""The analyst's and the model manager's pages in a real headless Chromium (Debian's package,
driven by Playwright), against the app served by pytest-django's live server.

A screenshot of each page is saved under TEST_ARTIFACTS_DIR (default ./artifacts/screenshots).
Without Chromium these tests are skipped, except in CI (CI=true), where they must run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from detection.models import Review, Transaction
from detection.parsing import Batch
from detection.roles import ANALYSTS, MODEL_MANAGERS
from detection.services import score_transactions
from modelops.ml.schema import FEATURES, LABEL
from modelops.models import ModelVersion
from modelops.services import deployments, versions

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", "artifacts")) / "screenshots"
PASSWORD = "correct horse battery staple"
# Chromium's own background traffic (updates, sync) has nowhere to go on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI: apt-get install chromium")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code between its steps.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def world(transactional_db, trained, training_frame, django_user_model):
    """Two versions (v2 active), 40 scored transactions, an analyst and a model manager."""
    from django.contrib.auth.models import Group

    v1 = versions.record_version(result=trained)
    deployments.activate_version(version_id=v1.pk, actor="test", reason="first")
    v2 = versions.record_version(result=trained, parent=v1)
    deployments.activate_version(version_id=v2.pk, actor="test", reason="second")
    frauds = training_frame[training_frame[LABEL] == 1].head(20)
    legit = training_frame[training_frame[LABEL] == 0].head(20)
    values = np.vstack([frauds[list(FEATURES)].to_numpy(), legit[list(FEATURES)].to_numpy()])
    score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    for name, group in (("ana", ANALYSTS), ("max", MODEL_MANAGERS)):
        user = django_user_model.objects.create_user(name, password=PASSWORD)
        user.groups.add(Group.objects.get(name=group))
    return {"v1": v1, "v2": v2}


def sign_in(page, base: str, username: str, path: str) -> None:
    page.goto(f"{base}{path}")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")


def test_an_analyst_confirms_a_flagged_transaction_and_sees_it_move(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "ana", "/review/")
    awaiting = int(page.inner_text("#count-awaiting strong"))
    assert awaiting > 0
    shot(page, "01-review-queue")

    first_row = page.locator("#queue tbody tr").first
    first_id = int(first_row.locator("input[name=ids]").get_attribute("value"))
    first_row.locator("td.num a").first.click()
    page.wait_for_url(re.compile(rf"/review/{first_id}/"))
    chart = page.locator("svg.chart")
    assert chart.locator("rect.bar").count() > 0
    assert chart.bounding_box()["width"] > 100
    shot(page, "02-transaction")

    page.fill("#id_note", "cardholder disputes it")
    page.keyboard.press("Escape")  # leave the note field, so the next key is a shortcut
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("f")
    page.wait_for_url(re.compile(r"/review/(\?.*)?$"))
    assert "marked confirmed fraud" in page.inner_text(".messages")
    assert int(page.inner_text("#count-awaiting strong")) == awaiting - 1
    assert int(page.inner_text("#count-fraud strong")) == 1
    ids = [int(v) for v in page.locator("#queue input[name=ids]").evaluate_all("boxes => boxes.map(b => b.value)")]
    assert first_id not in ids
    shot(page, "03-queue-after-decision")

    review = Review.objects.get()
    assert (review.transaction_id, review.label, review.note, review.reviewer_name) == (
        first_id,
        "fraud",
        "cardholder disputes it",
        "ana",
    )


def test_a_double_click_on_a_decision_records_it_once(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "ana", "/review/")
    target = int(page.locator("#queue input[name=ids]").first.get_attribute("value"))
    page.goto(f"{base}/review/{target}/")
    page.locator("button.legit").dblclick()
    page.wait_for_load_state("networkidle")
    assert Review.objects.filter(transaction_id=target).count() == 1
    assert Transaction.objects.get(pk=target).label == "legitimate"


def test_bulk_decisions_from_the_queue(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "ana", "/review/")
    boxes = page.locator("#queue input[name=ids]")
    chosen = [int(boxes.nth(i).get_attribute("value")) for i in range(3)]
    for i in range(3):
        boxes.nth(i).check()
    page.click("#bulk-legit")
    page.wait_for_url(re.compile(r"/review/(\?.*)?$"))
    assert "3 transaction(s) marked legitimate" in page.inner_text(".messages")
    assert set(Transaction.objects.filter(label="legitimate").values_list("pk", flat=True)) == set(chosen)


def test_a_row_is_decided_in_one_click_from_the_queue(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "ana", "/review/")
    row = page.locator("#queue tbody tr").nth(1)
    target = int(row.locator("input[name=ids]").get_attribute("value"))
    row.locator("button.legit").click()
    page.wait_for_url(re.compile(r"/review/(\?.*)?$"))
    assert f"Transaction {target} marked legitimate" in page.inner_text(".messages")
    assert Transaction.objects.get(pk=target).label == "legitimate"
    assert Review.objects.count() == 1


def test_a_model_version_page_renders_its_charts(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "ana", "/models/2/")
    charts = page.locator("#charts svg")
    assert charts.count() == 4
    for i in range(4):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 150 and box["height"] > 100
    assert page.locator("#charts polyline").count() == 1
    assert page.locator("#activate").count() == 0  # analysts cannot activate
    shot(page, "04-model-version")


def test_a_model_manager_rolls_back_and_sees_the_active_version_change(page, live_server, world):
    base = live_server.url
    sign_in(page, base, "max", "/models/1/")
    assert page.inner_text("#status") == "retired"
    page.click("#activate")
    page.wait_for_url(f"{base}/models/1/activate")
    shot(page, "05-confirm-rollback")
    page.fill("#reason", "v2 flags too many legitimate payments")
    page.click("#confirm")
    page.wait_for_url(f"{base}/models/1/")
    assert page.inner_text("#status") == "primary"
    assert "v2 flags too many legitimate payments" in page.inner_text("#events")
    shot(page, "06-after-rollback")
    assert ModelVersion.objects.primary().get().version == 1
