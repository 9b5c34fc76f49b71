"""A model manager puts a version into shadow, reads how it compares with the primary, and promotes
it, in a real headless Chromium against the live server; the browser, the screenshots and the world
(v1 retired, v2 primary, 40 transactions, an analyst and a model manager) are those of
tests/browser/test_review_pages.py."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from detection import shadow_scoring
from detection.models import Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml import training
from modelops.ml.schema import FEATURES, LABEL
from modelops.models import Deployment, ModelEvent, ModelVersion
from modelops.services import versions
from tests.browser import test_review_pages as review_pages
from tests.conftest import SMALL_CONFIG

pytestmark = pytest.mark.slow

chromium, page, world = review_pages.chromium, review_pages.page, review_pages.world
shot, sign_in = review_pages.shot, review_pages.sign_in

SCORED, WAITING = 200, 30


@pytest.fixture(scope="module")
def challenger_result(training_frame) -> training.TrainResult:
    """Another model of the same data: fewer trees, so its scores differ from the primary's."""
    return training.train(training_frame, replace(SMALL_CONFIG, n_estimators=8, strategies=("scale_pos_weight",)))


def store(frame) -> list[int]:
    values = frame[list(FEATURES)].to_numpy()
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    return [result.transaction_id for result in results]


def test_a_model_manager_shadows_a_version_reads_its_comparison_and_promotes_it(
    page, live_server, world, challenger_result, training_frame, settings
):
    settings.SHADOW_SETTLE_SECONDS = 0.0
    v3 = versions.record_version(result=challenger_result, parent=world["v2"])
    base = live_server.url

    sign_in(page, base, "max", "/models/3/")
    assert page.inner_text("#status") == "candidate"
    page.click("#shadow")
    page.wait_for_url(f"{base}/models/3/shadow/start")
    assert "never answers a client, never alerts an analyst" in page.inner_text("main")
    shot(page, "07-confirm-shadow")
    page.fill("#reason", "see how fewer trees do on live traffic")
    page.click("#confirm")
    page.wait_for_url(f"{base}/models/3/shadow/")
    assert "v3 is in shadow" in page.inner_text(".messages")
    assert page.inner_text("#status") == "shadow"
    assert "No transactions compared yet." in page.inner_text("#figures")
    assert Deployment.objects.get(version=v3).role == "shadow"

    # Traffic after it started, some of it labelled by analysts; the shadow scoring task's run
    # catches it up, then more arrives that it has not scored yet.
    frauds = training_frame[training_frame[LABEL] == 1].head(40)
    legit = training_frame[training_frame[LABEL] == 0].head(SCORED - len(frauds))
    scored = store(frauds) + store(legit)
    # On these rows both models find the frauds; alerting on everything while it is scored, the
    # shadow disagrees on the rest (its own threshold is back before it is promoted).
    ModelVersion.objects.filter(pk=v3.pk).update(threshold=0.0)
    Transaction.objects.filter(pk__in=scored[:20]).update(label=Transaction.Label.FRAUD)
    Transaction.objects.filter(pk__in=scored[-30:]).update(label=Transaction.Label.LEGITIMATE)
    assert shadow_scoring.score_shadows(max_seconds=60) == {3: SCORED}
    ModelVersion.objects.filter(pk=v3.pk).update(threshold=v3.threshold)
    store(training_frame.tail(WAITING))

    page.reload()
    figures = page.inner_text("#figures")
    assert re.search(rf"Transactions\s+{SCORED}\b", figures), figures
    assert "On 50 labelled transactions (20 frauds)" in figures
    for name in ("Precision", "Recall", "F1", "AUPRC", "Fraud amount caught", "Fraud amount missed"):
        assert name in figures
    # The agreement shown is the share of the same transactions both decided alike.
    pairs = {}
    for p in Prediction.objects.filter(transaction_id__in=scored):
        pairs.setdefault(p.transaction_id, {})[p.role] = p.is_fraud
    alike = sum(pair["primary"] == pair["shadow"] for pair in pairs.values())
    assert alike < SCORED
    assert page.inner_text("td.agreement") == f"{alike / SCORED:.4f}"
    primary_alerts = sum(pair["primary"] for pair in pairs.values())
    assert re.search(rf"Alerts\s+{primary_alerts}\s+{SCORED}\b", figures), figures
    charts = page.locator("#charts svg")
    assert charts.count() == 2
    for i in range(2):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 150 and box["height"] > 100
    lag = page.inner_text("#lag")
    assert f"Behind: {WAITING} transactions waiting" in lag, lag
    assert f"Scored through transaction {scored[-1]}." in lag, lag
    shot(page, "08-shadow-page")

    page.click("#promote")
    page.wait_for_url(f"{base}/models/3/activate")
    shot(page, "09-confirm-promotion")
    page.fill("#reason", "it misses no fraud v2 catches")
    page.click("#confirm")
    page.wait_for_url(f"{base}/models/3/")
    assert page.inner_text("#status") == "primary"
    assert page.inner_text("#shadow-page") == "Its shadow scores against the primary"
    events = page.inner_text("#events")
    assert re.search(r"shadow\s+v2\s+v3\s+max\s+see how fewer trees do on live traffic", events), events
    assert re.search(r"activate\s+v2\s+v3\s+max\s+promoted from shadow: it misses no fraud v2 catches", events), events
    shot(page, "10-after-promotion")
    page.goto(f"{base}/models/2/")
    assert page.inner_text("#status") == "retired"

    assert ModelVersion.objects.primary().get() == v3
    assert not Deployment.objects.shadows().exists()
    assert list(ModelEvent.objects.filter(to_version=v3).values_list("kind", flat=True).order_by("pk")) == [
        "shadow",
        "activate",
    ]
