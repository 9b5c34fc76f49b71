from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from modelops.ml import schema
from modelops.models import ModelVersion, TrainingRun


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_ctrl_c_during_training_closes_the_run_so_the_next_one_starts(db, training_csv, monkeypatch):
    from modelops.models import TrainingRun
    from modelops.services import train_file

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(train_file.training, "train", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run("train_model", "--csv", str(training_csv), "--activate")
    # Left running, it refused every training until its heartbeat went stale, then counted as
    # abandoned towards the crash-loop pause.
    assert TrainingRun.objects.values_list("status", "error").get() == (TrainingRun.Status.FAILED, "interrupted")
    assert run("train_model", "--csv", str(training_csv), "--activate", "--trees", "20").startswith("v1 (primary)")


def test_generate_data_writes_a_valid_file(tmp_path):
    out = tmp_path / "gen.csv"
    summary = run("generate_data", "--rows", "2000", "--fraud-rate", "0.01", "--seed", "3", "--out", str(out))
    frame = schema.read_training_csv(out)
    assert len(frame) == 2000
    assert frame["Class"].sum() == 20
    assert summary.startswith("wrote 2000 rows (20 frauds, seed 3)")


def test_generate_data_never_leaves_half_a_csv_file_for_a_scan(tmp_path, monkeypatch):
    # The scan lists *.csv: the file is written under another name, then renamed.
    from pathlib import Path

    from modelops.ml import synthetic

    real_write = synthetic.write_csv
    written_as = []

    def write(frame, path):
        written_as.append(Path(path).name)
        real_write(frame, path)

    monkeypatch.setattr(synthetic, "write_csv", write)
    run("generate_data", "--rows", "100", "--fraud-rate", "0.05", "--out", str(tmp_path / "creditcard_x.csv"))
    assert len(written_as) == 1 and not written_as[0].endswith(".csv")
    assert [p.name for p in tmp_path.iterdir()] == ["creditcard_x.csv"]


def test_generate_data_refuses_bad_arguments(tmp_path):
    with pytest.raises(CommandError, match="fraud_rate"):
        run("generate_data", "--rows", "10", "--fraud-rate", "2", "--out", str(tmp_path / "x.csv"))


def test_train_model_records_an_active_version_with_metrics_and_artifact(db, training_csv, client, original_rows):
    summary = run("train_model", "--csv", str(training_csv), "--activate", "--trees", "60")
    version = ModelVersion.objects.get()
    assert summary.startswith("v1 (primary)")
    assert (version.status, version.role) == (ModelVersion.Status.ACCEPTED, "primary")
    assert version.training_rows == 30_000
    assert version.training_frauds == 300
    assert {"f1", "auprc", "roc_auc", "confusion", "pr_curve"} <= set(version.metrics)
    assert version.library_versions["xgboost"]
    assert storages["models"].exists(version.artifact)
    run_row = TrainingRun.objects.get()
    assert (run_row.status, run_row.result_version) == (TrainingRun.Status.SUCCEEDED, version)
    # The model it made tells the original app's two rows apart.
    legit = client.post(
        "/detect-fraud", json.dumps(json.dumps(original_rows["legit"])), content_type="application/json"
    )
    fraud = client.post(
        "/detect-fraud", json.dumps(json.dumps(original_rows["fraud"])), content_type="application/json"
    )
    assert (legit.json()["is_fraud"], fraud.json()["is_fraud"]) == (False, True)


def test_train_model_without_activate_leaves_a_candidate(db, training_csv):
    run("train_model", "--csv", str(training_csv), "--trees", "30")
    assert ModelVersion.objects.get().status == ModelVersion.Status.CANDIDATE


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda text: text.replace("Amount,", "Amt,", 1), "line 1: missing column(s): Amount"),
        (lambda text: text.replace("\n", "\nxyz", 2).replace("\nxyz", "\n", 1), "line 3: column Time is not a number"),
        (lambda text: "", "the file is empty"),
    ],
)
def test_train_model_stops_on_a_malformed_file_and_makes_no_version(db, bucket, training_csv, mutate, message):
    training_csv.write_text(mutate(training_csv.read_text()))
    with pytest.raises(CommandError, match=re.escape(message)):
        run("train_model", "--csv", str(training_csv), "--activate")
    assert ModelVersion.objects.count() == 0
    assert not list((bucket / "models").glob("*"))
    failed = TrainingRun.objects.get()
    assert failed.status == TrainingRun.Status.FAILED
    assert message.split(": ", 1)[-1] in failed.error


def test_train_model_names_a_missing_file_or_a_folder(db, tmp_path):
    with pytest.raises(CommandError, match=r"absent\.csv: no such file"):
        run("train_model", "--csv", str(tmp_path / "absent.csv"))
    with pytest.raises(CommandError, match=f"{re.escape(str(tmp_path))}: not a file"):
        run("train_model", "--csv", str(tmp_path))


def test_ensure_model_stops_on_a_malformed_file_with_one_line(db, training_csv):
    # make run CSV=... goes through ensure_model.
    training_csv.write_text(training_csv.read_text().replace("Amount,", "Amt,", 1))
    with pytest.raises(CommandError, match=re.escape("line 1: missing column(s): Amount")):
        run("ensure_model", "--csv", str(training_csv))
    assert ModelVersion.objects.count() == 0


def test_ensure_model_trains_once_then_does_nothing(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    first = run("ensure_model", "--rows", "20000")
    second = run("ensure_model")
    assert "trained" in first and "activated" in first
    assert second == "model v1 is active\n"
    assert ModelVersion.objects.count() == 1
