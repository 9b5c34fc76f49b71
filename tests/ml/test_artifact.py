from __future__ import annotations

import json
import threading

import pytest

from modelops.ml import artifact
from modelops.ml.schema import FEATURES

from .signed import KEY


def test_a_loaded_artifact_scores_exactly_as_the_trained_model(trained, training_frame):
    data = artifact.dumps(trained.bundle, key=KEY)
    loaded = artifact.loads(data, sha256=artifact.sha256_hex(data), keys=[KEY])
    rows = training_frame[list(FEATURES)].to_numpy()[:2_000]
    assert (loaded.predict_proba(rows) == trained.bundle.predict_proba(rows)).all()
    assert loaded.threshold == trained.bundle.threshold
    assert loaded.scaling == trained.bundle.scaling


def test_the_artifact_is_json_with_the_model_and_its_metadata(trained):
    document = json.loads(artifact.dumps(trained.bundle, key=KEY))
    assert document["format"] == artifact.FORMAT
    assert document["features"] == list(FEATURES)
    assert set(document["scaling"]) == {"Time", "Amount"}
    assert "learner" in document["booster"]  # XGBoost's own JSON model format
    assert document["metadata"]["library_versions"]["xgboost"]


def test_a_tampered_artifact_is_refused(trained):
    data = artifact.dumps(trained.bundle, key=KEY)
    sha256 = artifact.sha256_hex(data)
    tampered = data.replace(b'"threshold":', b'"threshold": ', 1)
    with pytest.raises(artifact.ArtifactError, match="checksum"):
        artifact.loads(tampered, sha256=sha256, keys=[KEY])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x04pickle", "not JSON"),
        (b'{"format": "other"}', "unknown artifact format"),
        (b'{"format": "fraud-model/1", "features": ["Amount"]}', "feature order"),
        (
            b'{"format": "fraud-model/1", "features": ' + json.dumps(list(FEATURES)).encode() + b', "booster": {}}',
            "the threshold must be a number",
        ),
    ],
)
def test_an_unusable_artifact_is_refused_with_its_reason(data, message):
    with pytest.raises(artifact.ArtifactError, match=message):
        artifact.loads(data, sha256=None, keys=[KEY], allow_unsigned=True)


def test_score_gives_the_models_probability(trained, training_frame):
    rows = training_frame[list(FEATURES)].to_numpy()[:2_000]
    probability, _ = trained.bundle.score(rows)
    assert probability == pytest.approx(trained.bundle.predict_proba(rows), abs=1e-6)


def test_contributions_name_the_features_that_moved_the_score(trained, training_frame):
    rows = training_frame[list(FEATURES)].to_numpy()[:3]
    _, explained = trained.bundle.score(rows)
    assert len(explained) == 3
    assert len(explained[0]) == artifact.TOP_CONTRIBUTIONS
    assert {c["feature"] for c in explained[0]} <= set(FEATURES)
    magnitudes = [abs(c["contribution"]) for c in explained[0]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert explained[0][0]["value"] == rows[0][FEATURES.index(explained[0][0]["feature"])]


def test_a_large_batch_is_explained_in_two_threads_exactly_as_in_one(trained, training_frame, monkeypatch):
    data = artifact.dumps(trained.bundle, key=KEY)
    served = artifact.loads(data, sha256=None, keys=[KEY], nthread=1)  # one XGBoost thread, as a web worker loads it
    rows = training_frame[list(FEATURES)].to_numpy()[: artifact.SPLIT_MIN_ROWS + 1]
    calls = []
    explain = served._xgboost_contributions

    def recorded(prepared):
        calls.append((threading.current_thread().name, len(prepared)))
        return explain(prepared)

    monkeypatch.setattr(served, "_xgboost_contributions", recorded)
    split = served.score(rows)
    assert sorted(size for _, size in calls) == [len(rows) // 2, len(rows) - len(rows) // 2]
    assert len({name for name, _ in calls}) == 2

    calls.clear()
    monkeypatch.setattr(artifact, "SPLIT_MIN_ROWS", len(rows) + 1)
    whole = served.score(rows)
    assert calls == [(threading.current_thread().name, len(rows))]
    assert (split[0] == whole[0]).all()
    assert split[1] == whole[1]
