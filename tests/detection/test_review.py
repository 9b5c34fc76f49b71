"""The review queue, the transaction page and analysts' decisions."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test import Client

from detection import reviews
from detection.models import Prediction, Review, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops.ml.schema import FEATURES, LABEL


@pytest.fixture
def scored(active_version, training_frame) -> list[int]:
    """30 frauds and 30 legitimate rows of the generated data, scored and stored; their ids."""
    frauds = training_frame[training_frame[LABEL] == 1].head(30)
    legit = training_frame[training_frame[LABEL] == 0].head(30)
    values = np.vstack([frauds[list(FEATURES)].to_numpy(), legit[list(FEATURES)].to_numpy()])
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * len(values)), source="api", client="")
    return [r.transaction_id for r in results]


def flagged_ids() -> list[int]:
    return list(Prediction.objects.filter(is_fraud=True).queue_order().values_list("transaction_id", flat=True))


# --- permissions


@pytest.mark.parametrize(
    "url", ["/review/", "/review/1/", "/models/", "/models/1/", "/score-file/", "/models/data-files/"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"/accounts/login/?next={url}"


def test_a_user_outside_the_roles_is_refused(client, scored, django_user_model):
    client.force_login(django_user_model.objects.create_user("outsider"))
    assert client.get("/review/").status_code == 403
    assert client.post(f"/review/{scored[0]}/decide", {"label": "fraud"}).status_code == 403
    assert Review.objects.count() == 0


def test_signing_in_leads_to_the_queue(client, analyst):
    analyst.set_password("a long passphrase")
    analyst.save()
    response = client.post("/accounts/login/", {"username": "ana", "password": "a long passphrase"})
    assert response.url == "/review/"
    assert client.get("/review/").status_code == 200


def test_every_decision_form_is_csrf_protected(analyst, scored):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    assert strict.post(f"/review/{scored[0]}/decide", {"label": "fraud"}).status_code == 403
    assert strict.post("/review/decide", {"ids": [scored[0]], "label": "fraud"}).status_code == 403
    assert Review.objects.count() == 0


# --- the queue


def test_the_queue_lists_flagged_unreviewed_transactions_highest_score_first(analyst_client, scored):
    page = analyst_client.get("/review/").context["page"]
    assert page, "the generated frauds should be flagged"
    assert all(p.is_fraud and p.transaction.label is None for p in page)
    scores = [p.score for p in page]
    assert scores == sorted(scores, reverse=True)


def test_the_queue_counts_each_state(analyst_client, analyst, scored):
    flagged = flagged_ids()
    reviews.decide(transaction_ids=flagged[:3], label="fraud", user=analyst)
    reviews.decide(transaction_ids=flagged[3:4], label="legitimate", user=analyst)
    counts = analyst_client.get("/review/").context["counts"]
    assert counts == {"awaiting": len(flagged) - 4, "fraud": 3, "legitimate": 1}


def test_the_queue_filters_by_state_amount_and_version(analyst_client, analyst, scored, active_version):
    flagged = flagged_ids()
    reviews.decide(transaction_ids=flagged[:2], label="fraud", user=analyst)
    confirmed = analyst_client.get("/review/?state=fraud").context["page"]
    assert sorted(p.transaction_id for p in confirmed) == sorted(flagged[:2])

    everything = analyst_client.get("/review/?state=all&flagged=all&per_page=200").context["page"]
    assert len(everything) == len(scored)
    cheap = analyst_client.get("/review/?state=all&flagged=all&amount_max=10&per_page=200").context["page"]
    assert cheap and all(p.transaction.amount <= 10 for p in cheap)
    assert len(cheap) < len(everything)

    assert len(analyst_client.get(f"/review/?state=all&flagged=all&version={active_version.version}").context["page"])
    assert analyst_client.get(f"/review/?version={active_version.version + 1}").context["page"] == []


def test_the_queue_refuses_a_bad_filter_with_the_field(analyst_client, scored):
    response = analyst_client.get("/review/?amount_min=lots")
    assert response.status_code == 400
    assert "amount_min" in response.content.decode()


def test_pages_follow_each_other_without_gaps_or_repeats(analyst_client, scored):
    seen, query = [], "state=all&flagged=all&per_page=25"
    while query:
        response = analyst_client.get(f"/review/?{query}")
        seen += [p.transaction_id for p in response.context["page"]]
        query = response.context["next_query"]
    assert sorted(seen) == sorted(scored)
    assert len(seen) == len(set(seen))
    # Flagged first, then by score.
    order = list(Prediction.objects.queue_order().values_list("transaction_id", flat=True))
    assert seen == order


def test_the_queue_query_count_does_not_grow_with_the_page_size(analyst_client, scored):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        analyst_client.get("/review/?state=all&flagged=all&per_page=25")
    with CaptureQueriesContext(connection) as large:
        analyst_client.get("/review/?state=all&flagged=all&per_page=200")
    assert len(large) == len(small)
    assert len(small) <= 8


# --- decisions


def test_confirming_a_transaction_moves_it_out_of_the_queue(analyst_client, analyst, scored):
    first = flagged_ids()[0]
    response = analyst_client.post(
        f"/review/{first}/decide", {"label": "fraud", "note": "card reported stolen", "next": "/review/"}
    )
    assert response.url == "/review/"
    item = Transaction.objects.get(pk=first)
    assert (item.label, item.reviewed_by, item.reviewed_at is not None) == ("fraud", analyst, True)
    assert first not in [p.transaction_id for p in analyst_client.get("/review/").context["page"]]
    assert first in [p.transaction_id for p in analyst_client.get("/review/?state=fraud").context["page"]]


def test_changing_a_decision_keeps_the_earlier_one(analyst_client, manager, scored):
    pk = flagged_ids()[0]
    analyst_client.post(f"/review/{pk}/decide", {"label": "fraud", "note": "looks stolen"})
    reviews.decide(transaction_ids=[pk], label="legitimate", note="customer confirmed", user=manager)
    history = list(
        Review.objects.filter(transaction_id=pk)
        .order_by("created_at", "id")
        .values_list("label", "reviewer_name", "note")
    )
    assert history == [("fraud", "ana", "looks stolen"), ("legitimate", "max", "customer confirmed")]
    assert Transaction.objects.get(pk=pk).label == "legitimate"
    page = analyst_client.get(f"/review/{pk}/").content.decode()
    assert "looks stolen" in page and "customer confirmed" in page


def test_a_double_click_records_one_decision(analyst_client, scored):
    pk = flagged_ids()[0]
    for _ in range(2):
        analyst_client.post(f"/review/{pk}/decide", {"label": "fraud", "note": ""})
    assert Review.objects.filter(transaction_id=pk).count() == 1


def test_bulk_decisions_label_every_selected_transaction_at_once(analyst_client, scored):
    chosen = flagged_ids()[:5]
    response = analyst_client.post("/review/decide", {"ids": chosen, "label": "fraud", "next": "/review/?state=all"})
    assert response.url == "/review/?state=all"
    assert set(Transaction.objects.filter(label="fraud").values_list("pk", flat=True)) == set(chosen)
    assert Review.objects.count() == 5


def test_a_bulk_decision_with_an_unknown_id_records_nothing(analyst, scored):
    with pytest.raises(reviews.ReviewError, match="no transaction with id 999999"):
        reviews.decide(transaction_ids=[scored[0], 999999], label="fraud", user=analyst)
    assert Review.objects.count() == 0
    assert Transaction.objects.filter(label__isnull=False).count() == 0


def test_a_decision_needs_a_known_label(analyst_client, scored):
    analyst_client.post(f"/review/{scored[0]}/decide", {"label": "maybe"})
    assert Review.objects.count() == 0


def test_next_never_leaves_the_site(analyst_client, scored):
    response = analyst_client.post(f"/review/{scored[0]}/decide", {"label": "fraud", "next": "https://evil.example/"})
    assert response.url == f"/review/{scored[0]}/"


def test_a_label_is_part_of_the_next_retrains_training_data(analyst_client, scored):
    from detection.feedback import labelled_rows

    pk = flagged_ids()[0]
    analyst_client.post(f"/review/{pk}/decide", {"label": "legitimate"})
    rows, fresh = labelled_rows(None)
    assert len(rows) == 1 and fresh.tolist() == [True]
    stored = Transaction.objects.get(pk=pk)
    assert rows.iloc[0]["Amount"] == stored.amount and rows.iloc[0][LABEL] == 0


def test_the_transaction_page_explains_the_score(analyst_client, scored, active_version):
    pk = flagged_ids()[0]
    page = analyst_client.get(f"/review/{pk}/").content.decode()
    prediction = Prediction.objects.get(transaction_id=pk)
    assert f"v{active_version.version}" in page
    assert page.count('class="bar"') == len(prediction.contributions) > 0
    assert prediction.contributions[0]["feature"] in page
    assert f"{prediction.score:.4f}" in page


# Over all rows a range is read and sorted (SORT_AT_LEAST above the rows stored), or the queue's
# order walked (0); flagged rows are always walked.
@pytest.mark.parametrize("sort_at_least", [1_000, 0])
def test_the_date_and_amount_filters_agree_on_flagged_and_all_rows(analyst_client, scored, monkeypatch, sort_at_least):
    from datetime import timedelta

    from django.utils import timezone

    from detection import selectors

    monkeypatch.setattr(selectors, "SORT_AT_LEAST", sort_at_least)
    monkeypatch.setattr(selectors, "SORT_AT_MOST_SHARE", 0.0)
    today = timezone.now().date()
    tomorrow = today + timedelta(days=1)
    for flagged in ("yes", "all"):
        base = f"/review/?state=all&flagged={flagged}&per_page=200"
        everything = analyst_client.get(base).context["page"]
        assert analyst_client.get(f"{base}&since={today}&until={today}").context["page"] == everything
        assert analyst_client.get(f"{base}&since={tomorrow}").context["page"] == []
        assert analyst_client.get(f"{base}&until={today - timedelta(days=1)}").context["page"] == []
        middle = sorted(p.transaction.amount for p in everything)[len(everything) // 2]
        above = analyst_client.get(f"{base}&amount_min={middle}").context["page"]
        assert above and [p.pk for p in above] == [p.pk for p in everything if p.transaction.amount >= middle]
        below = analyst_client.get(f"{base}&amount_max={middle}&since={today}").context["page"]
        assert below and [p.pk for p in below] == [p.pk for p in everything if p.transaction.amount <= middle]


def test_a_range_is_sorted_only_when_it_holds_few_transactions(scored, monkeypatch):
    from detection import selectors

    monkeypatch.setattr(selectors, "SORT_AT_LEAST", 30)  # of the 60 transactions
    monkeypatch.setattr(selectors, "SORT_AT_MOST_SHARE", 0.0)
    amounts = sorted(Transaction.objects.values_list("amount", flat=True))
    limit = selectors._sort_limit()
    assert selectors._narrow({"amount__lte": amounts[10]}, limit)
    assert not selectors._narrow({"amount__gte": amounts[10]}, limit)


def test_with_two_ranges_only_a_narrow_one_goes_through_its_index(analyst_client, scored, monkeypatch):
    # Counted together, SQLite would count through one index and check the other range row by
    # row: a narrow day with a wide amount range read the whole table to count.
    from datetime import timedelta

    from django.utils import timezone

    from detection import selectors
    from detection.forms import QueueFilter

    monkeypatch.setattr(selectors, "SORT_AT_LEAST", 30)  # of the 60 transactions
    monkeypatch.setattr(selectors, "SORT_AT_MOST_SHARE", 0.0)
    yesterday = timezone.now() - timedelta(days=1)
    moved = scored[:10]
    Transaction.objects.filter(pk__in=moved).update(created_at=yesterday)
    Prediction.objects.filter(transaction_id__in=moved).update(created_at=yesterday)
    day = timezone.localdate(yesterday)
    form = QueueFilter({"state": "all", "flagged": "all", "since": day, "until": day, "amount_min": 0})
    assert form.is_valid()
    filters = form.cleaned_data
    sql = str(selectors.queue_rows(filters=filters).query)
    assert '"detection_transaction"."created_at" >=' in sql
    # PostgreSQL is offered both ranges through their indexes: its planner chooses.
    amount_indexed = '"detection_transaction"."amount" >=' in sql
    assert amount_indexed == (connection.vendor != "sqlite")
    page, _ = selectors.queue_page(filters=filters, after=filters.get("after"), size=filters["per_page"])
    assert sorted(p.transaction_id for p in page) == sorted(moved)


@pytest.mark.parametrize("cursor", ["1:e:5", "1:1e400:5", "0:-.:3", "2:0.5:1"])
def test_a_malformed_cursor_is_a_bad_request(analyst_client, scored, cursor):
    assert analyst_client.get(f"/review/?after={cursor}").status_code == 400


def test_a_decision_that_waited_for_another_is_dated_after_it(analyst, manager, scored, monkeypatch):
    # Two analysts decide on one transaction at once: the second waits for the row lock. Its
    # review must be dated after the first one's, or the history's latest decision would not be
    # the label the row keeps (written by whoever commits last).
    pk = scored[0]
    lock = Transaction.objects.select_for_update

    def other_decides_first():
        monkeypatch.setattr(Transaction.objects, "select_for_update", lock)
        # Where the analyst's request waits for the lock, the manager's decision gets it first.
        reviews.decide(transaction_ids=[pk], label=Transaction.Label.LEGITIMATE, user=manager)
        return lock()

    monkeypatch.setattr(Transaction.objects, "select_for_update", other_decides_first)
    reviews.decide(transaction_ids=[pk], label=Transaction.Label.FRAUD, user=analyst)
    latest = Review.objects.filter(transaction_id=pk).order_by("-created_at", "-id").first()
    assert (latest.label, Transaction.objects.get(pk=pk).label) == ("fraud", "fraud")


@pytest.mark.parametrize("huge", [2**63, 10**20])
def test_an_id_beyond_the_databases_integers_is_an_unknown_transaction(analyst_client, scored, huge):
    from django.contrib.messages import get_messages

    response = analyst_client.post(f"/review/{huge}/decide", {"label": "fraud"})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"no transaction with id {huge}"]
    response = analyst_client.post("/review/decide", {"ids": [scored[0], huge], "label": "fraud"}, follow=True)
    assert f"no transaction with id {huge}" in response.content.decode()
    assert Review.objects.count() == 0


@pytest.mark.parametrize("query", ["until=9999-12-31", "flagged=all&until=9999-12-31", "since=0001-01-01"])
def test_the_first_and_last_days_a_date_can_hold_are_filters_like_any_other(analyst_client, scored, query):
    response = analyst_client.get(f"/review/?state=all&{query}")
    assert response.status_code == 200
    assert response.context["page"]
