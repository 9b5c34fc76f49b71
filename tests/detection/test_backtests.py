"""Backtests: a version scored on a window of stored transactions, never touching the stored
decisions, resumable, equal to scoring the rows directly."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from detection import backtests
from detection.models import Backtest, BacktestScore, Prediction, Transaction
from detection.parsing import Batch
from detection.services import score_transactions
from modelops import model_cache
from modelops.ml.schema import FEATURES, LABEL
from modelops.services import versions


@pytest.fixture
def stored(active_version, training_frame):
    """600 transactions over three days (200 each, today and the two days before), 20 labelled."""
    frame = training_frame.head(600)
    values = frame[list(FEATURES)].to_numpy()
    results = score_transactions(batch=Batch(values=values, external_ids=[None] * 600), source="api", client="")
    ids = [r.transaction_id for r in results]
    now = timezone.now()
    for day in range(3):
        Transaction.objects.filter(pk__in=ids[day * 200 : (day + 1) * 200]).update(
            created_at=now - timedelta(days=2 - day)
        )
    labels = ["fraud" if c else "legitimate" for c in frame[LABEL].head(20)]
    for pk, label in zip(ids[:20], labels, strict=True):
        Transaction.objects.filter(pk=pk).update(label=label)
    return ids, values


def test_a_backtest_equals_scoring_the_window_directly_and_leaves_decisions_alone(stored, active_version, settings):
    ids, values = stored
    settings.BACKTEST_CHUNK_ROWS = 70
    decisions = list(Prediction.objects.order_by("id").values_list("id", "score", "is_fraud"))
    today = timezone.now().date()
    since, until = backtests.window(today - timedelta(days=1), today)
    backtest = backtests.run(backtests.create(version=active_version, since=since, until=until, requested_by="t").pk)

    assert (backtest.status, backtest.rows_total, backtest.rows_done) == ("done", 400, 400)
    bundle = model_cache.loaded(
        version_id=active_version.pk, sha256=active_version.sha256, name=active_version.artifact
    )
    scores = dict(BacktestScore.objects.filter(backtest=backtest).values_list("transaction_id", "score"))
    assert sorted(scores) == ids[200:]
    np.testing.assert_allclose([scores[pk] for pk in ids[200:]], bundle.predict_proba(values[200:]))
    assert list(Prediction.objects.order_by("id").values_list("id", "score", "is_fraud")) == decisions
    figures = backtest.figures
    # The same version as the one that decided: it agrees with every stored decision.
    assert figures["transactions"] == 400 and figures["agreement"] == 1.0
    assert figures["alerts"] == figures["stored_alerts"]
    assert figures["correlation"] == pytest.approx(1.0, abs=1e-6)
    assert figures["labelled"] == 0  # the labelled rows are on the first day, outside the window
    assert figures["days"] == 2


def test_a_backtest_killed_between_chunks_resumes_and_scores_each_row_once(stored, active_version, settings):
    settings.BACKTEST_CHUNK_ROWS = 100
    since, until = timezone.now() - timedelta(days=5), timezone.now() + timedelta(days=1)
    backtest = backtests.create(version=active_version, since=since, until=until, requested_by="t")

    def crash(done):
        if done.rows_done >= 300:
            raise KeyboardInterrupt  # as a kill would stop it, after a committed chunk

    with pytest.raises(KeyboardInterrupt):
        backtests.run(backtest.pk, progress=crash)
    halfway = Backtest.objects.get(pk=backtest.pk)
    assert halfway.rows_done == 300 and BacktestScore.objects.count() == 300
    finished = backtests.run(backtest.pk)
    assert (finished.status, finished.rows_done) == ("done", 600)
    assert BacktestScore.objects.count() == 600
    uninterrupted = backtests.run(
        backtests.create(version=active_version, since=since, until=until, requested_by="t").pk
    )
    assert finished.figures == uninterrupted.figures
    assert finished.figures["labelled"] == 20


def test_the_csv_has_every_row_with_its_stored_decision_and_label(stored, active_version):
    ids, _ = stored
    since, until = timezone.now() - timedelta(days=5), timezone.now() + timedelta(days=1)
    backtest = backtests.run(backtests.create(version=active_version, since=since, until=until, requested_by="t").pk)
    rows = list(csv.DictReader(io.StringIO("".join(backtests.csv_lines(backtest, chunk=128)))))
    assert [int(r["transaction_id"]) for r in rows] == ids
    first = rows[0]
    stored_prediction = Prediction.objects.get(transaction_id=ids[0])
    assert first["stored_model_version"] == str(active_version.version)
    assert first["stored_is_fraud"] == str(int(stored_prediction.is_fraud))
    assert float(first["backtest_probability"]) == pytest.approx(stored_prediction.score, abs=1e-6)
    assert first["label"] in ("fraud", "legitimate") and rows[-1]["label"] == ""


def test_the_command_prints_progress_and_figures(stored, active_version, trained, settings):
    settings.BACKTEST_CHUNK_ROWS = 250
    other = versions.record_version(result=trained)
    today = timezone.now().date()
    out = StringIO()
    call_command(
        "backtest", str(other.version), "--from", str(today - timedelta(days=2)), "--to", str(today), stdout=out
    )
    text = out.getvalue()
    assert "250 of 600 transactions (42%)" in text and "600 of 600 transactions (100%)" in text
    assert "600 transactions; agreement with the stored decisions 100.00%" in text
    assert "labelled: 20" in text
    with pytest.raises(CommandError, match="not a date"):
        call_command("backtest", "1", "--from", "yesterday", "--to", str(today))
    with pytest.raises(CommandError, match="no model version 99"):
        call_command("backtest", "99", "--from", str(today), "--to", str(today))


def test_a_manager_starts_a_backtest_from_the_version_page_and_compares_two(manager_client, stored, active_version):
    today = timezone.now().date()
    window = {"from": str(today - timedelta(days=2)), "to": str(today)}
    response = manager_client.post(f"/models/{active_version.version}/backtests/new", window)
    assert response.status_code == 302
    first = Backtest.objects.get()
    assert response.url == f"/backtests/{first.pk}/"
    assert first.status == "queued"  # the task cluster runs it; here it is run by hand
    backtests.run(first.pk)
    second = backtests.run(
        backtests.create(version=active_version, since=first.since, until=first.until, requested_by="t").pk
    )
    page = manager_client.get(f"/backtests/{first.pk}/").content.decode()
    assert "600 of 600 transactions scored" in page and 'id="csv"' in page and page.count("<svg") == 2
    compared = manager_client.get(f"/backtests/compare/?a={first.pk}&b={second.pk}").content.decode()
    assert compared.count("Stored decisions") == 2
    assert manager_client.get(f"/backtests/{first.pk}.csv").status_code == 200
    refused = manager_client.post(f"/models/{active_version.version}/backtests/new", {"from": "x", "to": ""})
    assert refused.status_code == 302 and Backtest.objects.count() == 2
