from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from detection.models import Transaction
from modelops import artifact_store, retrain, scan, tasks
from modelops.ml import synthetic, training
from modelops.models import DataFile, ModelEvent, ModelVersion, TrainingRun
from modelops.services import deployments, train_file, training_runs, versions


@pytest.fixture(autouse=True)
def small_models(settings):
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 40}


@pytest.fixture
def new_file(bucket, db):
    """A new labelled file in the bucket, scanned and accepted."""
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    frame = synthetic.generate(rows=20_000, fraud_rate=0.02, seed=21, drift=0.3)
    synthetic.write_csv(frame, folder / "creditcard_20260102_000000.csv")
    scan.scan_incoming()
    return DataFile.objects.get()


def test_it_trains_both_candidates_and_activates_the_better(active_version, new_file):
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    candidates = ModelVersion.objects.exclude(pk=active_version.pk)
    assert {v.kind for v in candidates} == {"warm_start", "full_retrain"}
    assert {v.training_run for v in candidates} == {run}
    warm = candidates.get(kind="warm_start")
    assert warm.parent == active_version
    assert all(list(v.data_files.all()) == [new_file] for v in candidates)
    # Both were compared with the active model on the same rows: the newest fifth of the new
    # file, which no model saw; the warm start learned from the rest of it.
    assert {v.metrics["rows"] for v in candidates} == {4_000}
    assert warm.training_rows == 16_000
    assert all(v.metrics["compared_with_active"] is not None for v in candidates)

    active = ModelVersion.objects.primary().get()
    assert active == run.result_version
    loser = candidates.exclude(pk=active.pk).get()
    assert loser.status == ModelVersion.Status.REJECTED
    assert ModelEvent.objects.get(kind=ModelEvent.Kind.REJECT).to_version == loser
    assert ModelEvent.objects.filter(kind=ModelEvent.Kind.ACTIVATE, to_version=active, actor="scheduler").exists()
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.USED
    assert "shared hold-out" in run.log


@pytest.mark.parametrize(("room", "kinds"), [(0, {"warm_start", "full_retrain"}), (-1, {"full_retrain"})])
def test_a_warm_start_is_tried_only_while_the_model_stays_within_the_tree_bound(
    active_version, new_file, settings, room, kinds
):
    trees = artifact_store.load(active_version.artifact, active_version.sha256).booster.num_boosted_rounds()
    grown = training.trees_grown(training_runs.train_config())
    settings.RETRAIN_WARM_START_MAX_TREES = trees + grown + room
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    candidates = ModelVersion.objects.exclude(pk=active_version.pk)
    assert {v.kind for v in candidates} == kinds
    skipped = f"warm start skipped: active v{active_version.version}'s {trees} trees and about {grown} more"
    assert (skipped in run.log) == (room < 0)
    for warm in candidates.filter(kind="warm_start"):
        assert artifact_store.load(warm.artifact, warm.sha256).booster.num_boosted_rounds() == trees + grown


def test_a_candidate_worse_than_the_active_model_is_recorded_and_not_activated(active_version, new_file, settings):
    # A tolerance below -1 asks candidates to beat the active model by more than any metric can.
    settings.RETRAIN_TOLERANCE = -1.5
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert run.result_version is None
    assert ModelVersion.objects.primary().get() == active_version
    rejected = ModelVersion.objects.filter(status=ModelVersion.Status.REJECTED)
    assert rejected.count() == 2
    reasons = list(ModelEvent.objects.filter(kind=ModelEvent.Kind.REJECT).values_list("reason", flat=True))
    assert all(f"below active v{active_version.version}" in reason for reason in reasons)


def test_without_an_active_model_the_full_retrain_is_activated(new_file, settings):
    # No active model, so no warm start to bound: the bound, even 0, must not be looked at first.
    settings.RETRAIN_WARM_START_MAX_TREES = 0
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.result_version.kind == "full_retrain"
    assert ModelVersion.objects.get().state == "primary"


def test_a_second_retrain_while_one_runs_trains_nothing(active_version, new_file):
    TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    assert retrain.retrain() is None
    assert ModelVersion.objects.count() == 1


def test_the_database_refuses_two_running_training_runs(db):
    TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(trigger=TrainingRun.Trigger.MANUAL)


def test_a_run_abandoned_by_a_dead_worker_does_not_block_training(active_version, new_file, settings):
    stuck = TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    TrainingRun.objects.filter(pk=stuck.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
    )
    run = retrain.retrain()
    assert run is not None and run.status == TrainingRun.Status.SUCCEEDED
    stuck.refresh_from_db()
    assert stuck.status == TrainingRun.Status.FAILED
    assert "abandoned" in stuck.error


def test_a_run_whose_heartbeat_stopped_is_taken_over_and_its_candidates_rejected(
    active_version, new_file, trained, settings
):
    stuck = TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    silent_for = timedelta(seconds=settings.TRAINING_HEARTBEAT_SECONDS * (training_runs.STALE_AFTER_BEATS + 1))
    TrainingRun.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - silent_for)
    # Recorded just before its worker died.
    orphan = versions.record_version(result=trained, training_run=stuck)

    run = retrain.retrain()
    assert run is not None and run.status == TrainingRun.Status.SUCCEEDED
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == (
        TrainingRun.Status.FAILED,
        "abandoned: its worker stopped (no heartbeat) before the run finished",
    )
    orphan.refresh_from_db()
    assert orphan.status == ModelVersion.Status.REJECTED
    assert ModelEvent.objects.get(to_version=orphan).reason == f"training run {stuck.pk} was abandoned"


def test_a_run_with_a_recent_heartbeat_still_blocks_a_second_one(active_version, new_file, settings):
    live = TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE, heartbeat_at=timezone.now())
    # Older than the task timeout, but beating: a long training, not a dead one.
    TrainingRun.objects.filter(pk=live.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
    )
    assert retrain.retrain() is None
    assert TrainingRun.objects.get().status == TrainingRun.Status.RUNNING


def _abandoned_runs(count: int) -> None:
    for _ in range(count):
        TrainingRun.objects.create(
            trigger=TrainingRun.Trigger.SCHEDULE,
            status=TrainingRun.Status.FAILED,
            finished_at=timezone.now(),
            error=training_runs.ABANDONED,
        )


def test_after_runs_abandoned_in_a_row_the_schedule_pauses_until_a_run_by_hand(active_version, new_file, settings):
    settings.TRAINING_MAX_ABANDONED = 3
    _abandoned_runs(2)
    assert training_runs.crash_loop() is None
    _abandoned_runs(1)
    assert "the last 3 runs were abandoned" in training_runs.crash_loop()

    assert retrain.retrain(trigger=TrainingRun.Trigger.SCHEDULE) is None
    assert TrainingRun.objects.count() == 3  # nothing started
    # The task's result, which the admin lists, says so (and not that another run is running).
    assert tasks.retrain_models().startswith("skipped: scheduled training is paused: the last 3 runs")
    assert DataFile.objects.get().status == DataFile.Status.NEW  # the data waits for the operator

    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL, actor="command")
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert training_runs.crash_loop() is None  # the schedule resumes


def test_the_run_closed_as_abandoned_by_this_start_counts_towards_the_pause(active_version, new_file, settings):
    settings.TRAINING_MAX_ABANDONED = 2
    _abandoned_runs(1)
    stuck = TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE)
    silent_for = timedelta(seconds=settings.TRAINING_HEARTBEAT_SECONDS * (training_runs.STALE_AFTER_BEATS + 1))
    TrainingRun.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - silent_for)

    assert retrain.retrain() is None
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == (TrainingRun.Status.FAILED, training_runs.ABANDONED)
    assert not TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).exists()


def test_a_failure_of_another_kind_breaks_the_series(db, settings):
    settings.TRAINING_MAX_ABANDONED = 2
    _abandoned_runs(1)
    TrainingRun.objects.create(
        trigger=TrainingRun.Trigger.MANUAL, status=TrainingRun.Status.FAILED, error="the data has no fraud rows"
    )
    _abandoned_runs(1)
    assert training_runs.crash_loop() is None
    settings.TRAINING_MAX_ABANDONED = 0
    _abandoned_runs(5)
    assert training_runs.crash_loop() is None


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_stamps_a_live_run_and_stops_one_taken_over(settings):
    # transaction=True: the heartbeat thread has a connection of its own and must see the run.
    settings.TRAINING_HEARTBEAT_SECONDS = 0.05
    run = training_runs.start_run(trigger=TrainingRun.Trigger.MANUAL)
    first = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    with training_runs.Heartbeat(run) as heartbeat:
        deadline = time.monotonic() + 10
        while TrainingRun.objects.get(pk=run.pk).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert TrainingRun.objects.get(pk=run.pk).heartbeat_at > first
        heartbeat.check()  # still its own run: goes on

        # Another worker declares it dead (this process was frozen for minutes, say).
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.FAILED, error="abandoned")
        while not heartbeat.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(training_runs.RunAbandoned):
            heartbeat.check()
    # Finishing afterwards does not turn the closed run back into a success.
    training_runs.finish_run(run, log=["done"])
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.FAILED


def test_analyst_labels_are_part_of_the_training_data(active_version, new_file):
    frame = synthetic.generate(rows=30, fraud_rate=0.5, seed=5)
    for row in frame.itertuples(index=False):
        values = list(row)
        Transaction.objects.create(
            time=values[0],
            v=values[1:29],
            amount=values[29],
            label=Transaction.Label.FRAUD if values[30] else Transaction.Label.LEGITIMATE,
        )
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert "analyst labels: 30 rows, 15 frauds" in run.log
    assert ModelVersion.objects.exclude(pk=active_version.pk).first().training_rows > 0


def test_a_failed_run_leaves_its_files_for_the_next_run(active_version, new_file, monkeypatch):
    def out_of_disk(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(training, "train", out_of_disk)
    with pytest.raises(OSError, match="no space left"):
        retrain.retrain()
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED and "no space left" in run.error
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.NEW
    assert ModelVersion.objects.primary().get() == active_version


def test_too_little_data_trains_nothing_and_waits_for_the_next_file(active_version, bucket, db):
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    synthetic.write_csv(synthetic.generate(rows=3_000, fraud_rate=0.0, seed=4), folder / "legit_only.csv")
    scan.scan_incoming()
    run = retrain.retrain()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.result_version is None
    assert "not enough data to train: 0 fraud and 3000 legitimate rows" in run.log
    # Still new (no model learned from it) but looked at: no retrain at every scan.
    waiting = DataFile.objects.get()
    assert waiting.status == DataFile.Status.NEW and waiting.processed_at is not None
    assert tasks.retrain_models() == "skipped: no new data files"
    assert ModelVersion.objects.get() == active_version

    # The next file calls for a run, which learns from both: the warm start too.
    synthetic.write_csv(synthetic.generate(rows=20_000, fraud_rate=0.02, seed=21), folder / "more.csv")
    scan.scan_incoming()
    assert tasks.retrain_models().startswith("run ")
    warm = ModelVersion.objects.get(kind="warm_start")
    assert warm.training_rows == 18_400  # the 23,000 new rows but the hold-out's fifth
    assert set(DataFile.objects.values_list("status", flat=True)) == {DataFile.Status.USED}


def test_too_few_rows_beside_the_holdout_train_nothing_instead_of_failing(active_version, bucket, db):
    frame = synthetic.generate(rows=2_000, fraud_rate=0.0, seed=6).sort_values("Time").reset_index(drop=True)
    frame.loc[list(range(100, 1_200, 100)), "Class"] = 1  # 11 frauds in the older rows
    frame.loc[list(range(1_700, 2_000, 45)), "Class"] = 1  # 7 in the newest fifth, the hold-out
    folder = bucket / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    synthetic.write_csv(frame, folder / "creditcard_20260102_000000.csv")
    scan.scan_incoming()
    run = retrain.retrain()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.result_version is None
    assert "not enough data to train: too few fraud rows" in run.log
    assert tasks.retrain_models() == "skipped: no new data files"


def test_a_run_failing_after_recording_rejects_its_candidates_and_only_a_retrain_logs_why(
    active_version, new_file, training_csv, settings, monkeypatch
):
    # Both share training_runs.run_session; a retrain's log is what an operator reads of it, while
    # train_from_csv's caller reports the exception itself.
    settings.RETRAIN_TOLERANCE = 1.0  # the best candidate is activated whatever it scores

    def unavailable(**kwargs):
        raise deployments.ActivationUnavailable("the bucket is down")

    monkeypatch.setattr(deployments, "activate_version", unavailable)

    with pytest.raises(deployments.ActivationUnavailable):
        retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    run = TrainingRun.objects.get()
    assert (run.status, run.error) == (TrainingRun.Status.FAILED, "the bucket is down")
    candidates = ModelVersion.objects.exclude(pk=active_version.pk)
    assert {v.status for v in candidates} == {ModelVersion.Status.REJECTED} and len(candidates) == 2
    assert "failed: the bucket is down" in run.log.splitlines()
    assert all(f"rejected v{v.version}: the run failed" in run.log.splitlines() for v in candidates)

    progress: list[str] = []
    with pytest.raises(deployments.ActivationUnavailable):
        train_file.train_from_csv(path=training_csv, activate=True, actor="command", progress=progress.append)
    run = TrainingRun.objects.latest("pk")
    assert (run.status, run.error) == (TrainingRun.Status.FAILED, "the bucket is down")
    version = ModelVersion.objects.latest("pk")
    assert version.status == ModelVersion.Status.REJECTED
    assert ModelEvent.objects.get(kind=ModelEvent.Kind.REJECT, to_version=version).reason == (
        f"training run {run.pk} failed: the bucket is down"
    )
    assert run.log.splitlines() == progress and progress[-1] == f"recorded v{version.version}"


def test_a_scheduled_retrain_queued_twice_trains_once(active_version, new_file):
    first = tasks.retrain_models()
    second = tasks.retrain_models()
    assert first.startswith("run ") and second == "skipped: no new data files"
    assert TrainingRun.objects.count() == 1


def test_a_file_overwritten_since_its_scan_is_rejected_not_trained_on(active_version, new_file, bucket):
    path = bucket / "incoming" / new_file.key
    synthetic.write_csv(synthetic.generate(rows=20_000, fraud_rate=0.02, seed=99), path)
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert f"{new_file.key}: rejected, its content changed since it was scanned" in run.log
    new_file.refresh_from_db()
    assert (new_file.status, new_file.error) == (
        DataFile.Status.REJECTED,
        "not trained on: its content changed since it was scanned",
    )
    # It no longer calls for a retrain at every scan; the scan records the new content.
    assert tasks.retrain_models() == "skipped: no new data files"
    scan.scan_incoming()
    assert DataFile.objects.filter(key=new_file.key, status=DataFile.Status.NEW).count() == 1


def test_a_file_gone_from_the_storage_is_skipped_and_the_rest_trained_on(active_version, new_file, bucket):
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).status == TrainingRun.Status.SUCCEEDED
    (bucket / "incoming" / new_file.key).unlink()
    later = bucket / "incoming" / "creditcard_20260103_000000.csv"
    synthetic.write_csv(synthetic.generate(rows=20_000, fraud_rate=0.02, seed=22), later)
    scan.scan_incoming()
    run = retrain.retrain()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert f"{new_file.key}: skipped, it is no longer in the storage (a training used it before)" in run.log
    assert DataFile.objects.get(key=later.name).status == DataFile.Status.USED
    # A new file gone before any training used it is rejected, so that it stops calling for one.
    gone = bucket / "incoming" / "creditcard_20260104_000000.csv"
    synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.02, seed=23), gone)
    scan.scan_incoming()
    gone.unlink()
    retrain.retrain()
    assert DataFile.objects.get(key=gone.name).error == "not trained on: it is no longer in the storage"


def test_labels_first_given_before_the_active_model_never_join_the_holdout(active_version, db):
    from detection.feedback import labelled_rows
    from detection.models import Review

    before, after = active_version.created_at - timedelta(hours=1), active_version.created_at + timedelta(hours=1)
    frame = synthetic.generate(rows=4, fraud_rate=0.5, seed=5)
    # Decided before; decided before and confirmed after (still a row the model may have seen);
    # decided after; decided after.
    decisions = [[before], [before, after], [after], [after]]
    for values, stamps in zip(frame.itertuples(index=False), decisions, strict=True):
        values = list(values)
        label = Transaction.Label.FRAUD if values[30] else Transaction.Label.LEGITIMATE
        row = Transaction.objects.create(
            time=values[0], v=values[1:29], amount=values[29], label=label, reviewed_at=stamps[-1]
        )
        for stamp in stamps:
            Review.objects.create(transaction=row, label=label, reviewer_name="analyst", created_at=stamp)
    data, new, _, _ = retrain._load_data([], active_version, lambda message: None)
    assert len(data) == 4 and new.tolist() == [False, False, True, True]
    assert labelled_rows(None)[1].tolist() == [True] * 4


def test_the_same_content_under_two_names_is_read_once(active_version, new_file, bucket):
    # Counted twice, its rows could also sit in the hold-out and in the candidates' training rows.
    folder = bucket / "incoming"
    (folder / "copy.csv").write_bytes((folder / new_file.key).read_bytes())
    scan.scan_incoming()
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert "copy.csv: the same content as a file read above, read once" in run.log
    assert ModelVersion.objects.get(kind="full_retrain").training_rows == 16_000
    assert set(DataFile.objects.values_list("status", flat=True)) == {DataFile.Status.USED}


def test_a_scan_during_a_run_finds_the_read_content_used_under_its_new_name(
    active_version, new_file, bucket, monkeypatch
):
    real_train = training.train
    folder = bucket / "incoming"

    def renamed_meanwhile(*args, **kwargs):
        if (folder / new_file.key).exists():
            (folder / new_file.key).rename(folder / "renamed.csv")
            scan.scan_incoming()
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", renamed_meanwhile)
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).status == TrainingRun.Status.SUCCEEDED
    assert set(DataFile.objects.values_list("status", flat=True)) == {DataFile.Status.USED}
    assert not tasks._awaiting_training()


def test_content_replaced_then_put_back_is_taken_up_again(active_version, new_file, bucket):
    path = bucket / "incoming" / new_file.key
    original = path.read_bytes()
    synthetic.write_csv(synthetic.generate(rows=20_000, fraud_rate=0.02, seed=99), path)  # by mistake
    retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    new_file.refresh_from_db()
    assert new_file.withdrawn
    path.write_bytes(original)  # restored
    assert scan.scan_incoming().accepted == [new_file.key]
    new_file.refresh_from_db()
    assert (new_file.status, new_file.error) == (DataFile.Status.NEW, "")


def test_the_active_versions_files_count_as_learned_even_if_never_marked_used(active_version, new_file):
    # A run killed between activating its candidate and marking its files used leaves them new.
    active_version.data_files.add(new_file)
    data, new, _, _ = retrain._load_data([new_file], active_version, lambda message: None)
    assert len(data) == 20_000 and not new.any()


def test_a_version_adopted_into_a_new_database_knows_the_files_it_learned(active_version, new_file, db):
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).result_version is not None
    winner = ModelVersion.objects.primary().get()
    stored = artifact_store.load(winner.artifact, winner.sha256).metadata["data_files_sha256"]
    assert stored == [new_file.sha256]
    # As in a new database that adopted it: no link to its files, which a scan records as new.
    winner.data_files.clear()
    DataFile.objects.update(status=DataFile.Status.NEW)
    assert winner.data_files_sha256 == stored  # adopt_from_storage takes the artifact's list
    data, new, _, _ = retrain._load_data(list(DataFile.objects.all()), winner, lambda message: None)
    assert len(data) == 20_000 and not new.any()


def test_a_model_is_never_judged_on_rows_it_learned(active_version, new_file, bucket):
    # With too few new rows for a hold-out, the newest rows of all data would include learned ones.
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).result_version is not None
    synthetic.write_csv(
        synthetic.generate(rows=500, fraud_rate=0.01, seed=31), bucket / "incoming" / "creditcard_20260105_000000.csv"
    )
    scan.scan_incoming()
    run = retrain.retrain()
    assert run.result_version is None
    assert "rows no model learned from, at least 12 of each are needed to judge candidates" in run.log


def test_a_file_that_no_longer_passes_validation_is_skipped(active_version, new_file, bucket):
    # A rule added since it was accepted (a file starting with an empty line, say).
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).status == TrainingRun.Status.SUCCEEDED
    path = bucket / "incoming" / new_file.key
    content = b"\n" + path.read_bytes()
    path.write_bytes(content)
    DataFile.objects.filter(pk=new_file.pk).update(sha256=hashlib.sha256(content).hexdigest())
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert f"{new_file.key}: skipped, it no longer passes validation: line 1: the first line is empty" in run.log


def test_the_whole_loop_on_local_folders(client, bucket, active_version, new_file, original_rows):
    import json

    run = retrain.retrain()
    new = run.result_version
    assert new is not None and new != active_version
    assert (bucket / "models" / new.artifact).exists()
    answer = client.post("/detect-fraud", json.dumps(original_rows["fraud"]), content_type="application/json").json()
    assert answer["model_version"] == new.version
    assert answer["is_fraud"] is True


def test_files_are_taken_in_the_order_of_the_time_in_their_names(db):
    # Older data uploaded late must not become the "newest rows" the hold-out is drawn from.
    newer = DataFile.objects.create(key="creditcard_20260102_000000.csv", etag="b", sha256="b")
    older = DataFile.objects.create(key="creditcard_20260101_000000.csv", etag="a", sha256="a")
    unnamed = DataFile.objects.create(key="extra.csv", etag="c", sha256="c")  # when first seen: now
    assert newer.first_seen <= older.first_seen
    assert sorted([unnamed, newer, older], key=retrain.data_time) == [older, newer, unnamed]


def test_a_new_file_whose_rows_all_fall_outside_the_row_cap_is_rejected_not_marked_used(
    active_version, new_file, bucket, settings
):
    # Older data uploaded late: by the time in its name it comes before the new file, so the cap
    # on retraining rows (the newest are kept) leaves none of its rows.
    older = bucket / "incoming" / "creditcard_20250101_000000.csv"
    synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.02, seed=24), older)
    scan.scan_incoming()
    settings.RETRAIN_MAX_ROWS = 20_500  # the new file whole, and 500 rows of the older one
    data, _, read, contents = retrain._load_data(
        sorted(DataFile.objects.all(), key=retrain.data_time), active_version, lambda message: None
    )
    assert len(data) == 20_500 and len(read) == len(contents) == 2  # partly kept: used

    settings.RETRAIN_MAX_ROWS = 20_000
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert ModelVersion.objects.get(kind="full_retrain").training_rows == 16_000
    cut = DataFile.objects.get(key=older.name)
    assert cut.status == DataFile.Status.REJECTED
    assert cut.error == "none of its rows are among the newest 20000 kept for retraining (RETRAIN_MAX_ROWS)"
    assert f"{older.name}: rejected, none of its rows are among the newest 20000" in run.log
    assert DataFile.objects.get(key=new_file.key).status == DataFile.Status.USED
    # Not taken up again by the next scan, and no call for another retrain.
    scan.scan_incoming()
    assert tasks.retrain_models() == "skipped: no new data files"


def test_files_older_than_the_row_cap_are_never_read(active_version, new_file, bucket, settings, monkeypatch):
    # The cap bounds the process's memory only if what it leaves out is not loaded first.
    for day in (1, 2):
        older = bucket / "incoming" / f"creditcard_202501{day:02d}_000000.csv"
        synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.02, seed=30 + day), older)
    scan.scan_incoming()
    opened = []
    real_read = retrain.read_file
    monkeypatch.setattr(retrain, "read_file", lambda storage, key: opened.append(key) or real_read(storage, key))
    settings.RETRAIN_MAX_ROWS = 20_500  # the new file and 500 rows of the newer of the two older ones
    data, _, read, _ = retrain._load_data(
        sorted(DataFile.objects.all(), key=retrain.data_time), active_version, lambda message: None
    )
    assert opened == [new_file.key, "creditcard_20250102_000000.csv"]
    assert len(data) == 20_500 and [f.key for f in read] == ["creditcard_20250102_000000.csv", new_file.key]
    assert DataFile.objects.get(key="creditcard_20250101_000000.csv").status == DataFile.Status.REJECTED


def test_a_rollback_made_while_a_run_trains_is_not_overridden(active_version, trained, new_file, monkeypatch):
    # The run compares its candidates with v2; meanwhile a manager rolls back to v1, which the
    # candidates were never compared with.
    v1 = active_version
    v2 = deployments.activate_version(version_id=versions.record_version(result=trained).pk, actor="alice")
    real_record = versions.record_version

    def rolled_back_meanwhile(**kwargs):
        if ModelVersion.objects.primary().get() == v2:
            deployments.activate_version(version_id=v1.pk, actor="max", reason="v2 misbehaves")
        return real_record(**kwargs)

    monkeypatch.setattr(versions, "record_version", rolled_back_meanwhile)
    run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL)
    assert run.status == TrainingRun.Status.SUCCEEDED and run.result_version is None
    assert ModelVersion.objects.primary().get() == v1
    assert f"not activated: v{v1.version} is primary since it was compared" in run.log
    candidates = ModelVersion.objects.exclude(pk__in=[v1.pk, v2.pk])
    assert candidates.count() == 2 and {v.status for v in candidates} == {ModelVersion.Status.REJECTED}
    # The data waits for the next run, which compares with v1.
    new_file.refresh_from_db()
    assert new_file.status == DataFile.Status.NEW and tasks._awaiting_training()


def test_a_copy_of_a_file_the_row_cap_leaves_out_is_rejected_too(active_version, new_file, bucket, settings):
    # One content under two names is read once, as the first: the copy must not stay new, or
    # every scan would queue a retrain.
    folder = bucket / "incoming"
    older = folder / "creditcard_20250101_000000.csv"
    synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.02, seed=24), older)
    (folder / "creditcard_20250101_000001.csv").write_bytes(older.read_bytes())
    scan.scan_incoming()
    settings.RETRAIN_MAX_ROWS = 20_000
    assert retrain.retrain(trigger=TrainingRun.Trigger.MANUAL).status == TrainingRun.Status.SUCCEEDED
    statuses = dict(DataFile.objects.values_list("key", "status"))
    assert statuses == {
        new_file.key: DataFile.Status.USED,
        older.name: DataFile.Status.REJECTED,
        "creditcard_20250101_000001.csv": DataFile.Status.REJECTED,
    }
    assert tasks.retrain_models() == "skipped: no new data files"


def test_a_run_past_the_task_timeout_is_left_to_the_heartbeat(active_version, new_file, monkeypatch):
    # The cluster's timeout raises a SystemExit in the task: the run must end as abandoned, which
    # counts towards the crash-loop pause, not as an interruption, which does not.
    from django_q.exceptions import TimeoutException

    def too_long(*args, **kwargs):
        raise TimeoutException("Task exceeded maximum timeout value (1800 seconds)")

    monkeypatch.setattr(training, "train", too_long)
    with pytest.raises(TimeoutException):
        tasks.retrain_models()
    assert TrainingRun.objects.get().status == TrainingRun.Status.RUNNING
