"""The Dask backend's pipeline on a real LocalCluster (2 workers, 1 thread each): the workers read and
check the files, train with xgboost.dask, and the model is an ordinary artifact."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import replace

import numpy as np
import pytest

from modelops.ml import artifact, dask_training, schema, synthetic, training
from modelops.ml.dask_training import Source
from tests.conftest import SMALL_CONFIG

from .signed import KEY


@pytest.fixture(scope="module")
def client():
    with dask_training.open_cluster(workers=2, threads=1, memory_limit="2GiB") as client:
        yield client


@pytest.fixture(scope="module")
def frame():
    return synthetic.generate(rows=30_000, fraud_rate=0.01, seed=11)


@pytest.fixture(scope="module")
def comparison(client, frame, tmp_path_factory):
    """Both backends trained on the same rows before the same hold-out (the newest fifth), and each
    model's hold-out metrics."""
    folder = tmp_path_factory.mktemp("same-data")
    ordered = frame.sort_values("Time", kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * 0.8)
    pool, holdout = ordered.iloc[:cut], ordered.iloc[cut:].reset_index(drop=True)
    synthetic.write_csv(pool, folder / "pool.csv")
    synthetic.write_csv(holdout, folder / "holdout.csv")

    local = training.train(pool, SMALL_CONFIG, holdout=holdout)
    rows = dask_training.load(client, [Source(str(folder / "pool.csv"))], {})
    held = dask_training.load(client, [Source(str(folder / "holdout.csv"))], {})
    lines = []
    on_cluster = dask_training.train(client, rows, SMALL_CONFIG, holdout=held, progress=lines.append)
    return local, on_cluster, holdout, lines


def test_the_cluster_scores_within_0_02_auprc_of_the_local_backend_on_the_same_holdout(comparison):
    local, on_cluster, holdout, _ = comparison
    assert on_cluster.metrics["rows"] == local.metrics["rows"] == len(holdout)
    assert on_cluster.metrics["frauds"] == local.metrics["frauds"]
    assert local.metrics["auprc"] > 0.5
    assert abs(on_cluster.metrics["auprc"] - local.metrics["auprc"]) <= 0.02


def test_the_cluster_model_is_an_ordinary_artifact_that_scores_as_the_cluster_did(comparison, client):
    _, on_cluster, holdout, _ = comparison
    data = artifact.dumps(on_cluster.bundle, key=KEY)
    loaded = artifact.loads(data, sha256=artifact.sha256_hex(data), keys=[KEY])
    rows = holdout[list(schema.FEATURES)].to_numpy()
    probability, contributions = loaded.score(rows[:50])
    assert len(contributions) == 50
    # The hold-out metrics were computed on the workers: the loaded model gives the same scores here.
    local_scores = loaded.predict_proba(rows)
    assert np.isclose(
        schema_auprc(holdout[schema.LABEL].to_numpy(), local_scores), on_cluster.metrics["auprc"], atol=1e-6
    )
    np.testing.assert_allclose(probability, local_scores[:50], rtol=1e-5, atol=1e-6)


def schema_auprc(labels, scores) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def test_the_version_records_the_backend_cluster_size_and_time(comparison):
    local, on_cluster, _, lines = comparison
    assert local.params["training_backend"]["backend"] == "local"
    backend = on_cluster.params["training_backend"]
    assert (backend["backend"], backend["workers"], backend["threads"]) == ("dask", 2, 2)
    assert backend["seconds"] > 0
    assert on_cluster.bundle.metadata["training_backend"] == backend
    assert on_cluster.params["strategy"] == "scale_pos_weight" and on_cluster.params["refit"] is True
    assert any("smote skipped: it has no distributed form" in line for line in lines)
    # The monitoring reference, as a local version's: bins of every feature and of the hold-out scores.
    ref = on_cluster.bundle.metadata["reference"]
    assert set(ref["features"]) == set(schema.FEATURES)
    assert ref["sampled_rows"] == ref["rows"] > 0  # few rows: the sample is all of them
    assert len(ref["score"]["shares"]) == len(ref["score"]["edges"]) + 1


def test_the_split_holds_out_the_newest_rows(client, frame, tmp_path):
    synthetic.write_csv(frame, tmp_path / "all.csv")
    rows = dask_training.load(client, [Source(str(tmp_path / "all.csv"))], {})
    parts = dask_training.split(rows, SMALL_CONFIG)
    assert parts.method == "time"
    train, validation, holdout = (p.compute() for p in (parts.train, parts.validation, parts.holdout))
    assert train["Time"].max() <= validation["Time"].min()
    assert validation["Time"].max() <= holdout["Time"].min()
    # A quantile computed on the cluster: about a fifth, not exactly.
    assert abs(len(holdout) - 0.2 * len(frame)) < 0.01 * len(frame)
    assert len(train) + len(validation) + len(holdout) == len(frame)


def test_across_files_the_holdout_is_the_newest_files_rows_not_a_mix_of_each_files_latest(client, tmp_path):
    # Each file's Time starts at 0: the newest fifth of three equal files is the last file's later 60 %.
    sources = []
    for index in range(3):
        synthetic.write_csv(synthetic.generate(rows=5_000, fraud_rate=0.02, seed=index), tmp_path / f"{index}.csv")
        sources.append(Source(str(tmp_path / f"{index}.csv")))
    rows = dask_training.load(client, sources, {})
    older, newest, method = dask_training.newest_split(rows, 0.2)
    older, newest = older.compute(), newest.compute()
    assert method == "time"
    assert set(newest["_rank"]) == {2}
    assert abs(len(newest) - 3_000) < 100
    assert newest["Time"].min() >= older.loc[older["_rank"] == 2, "Time"].max()


@pytest.fixture(scope="module")
def good_lines():
    import io

    buffer = io.StringIO()
    synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.03, seed=3), buffer)
    return buffer.getvalue().splitlines()


def _with_cell(lines: list[str], line: int, column: int, value: str) -> list[str]:
    cells = lines[line - 1].split(",")
    cells[column] = value
    return [*lines[: line - 1], ",".join(cells), *lines[line:]]


BAD_FILES = {
    "text in a late partition": lambda lines: _with_cell(lines, 1_950, 4, "abc"),
    "text in the first rows": lambda lines: _with_cell(lines, 5, 3, "abc"),
    "extra cells in the first rows": lambda lines: [*lines[:5], lines[5] + ",1,2", *lines[6:]],
    "NaN": lambda lines: _with_cell(lines, 1_500, 2, "nan"),
    "a label of 2": lambda lines: _with_cell(lines, 1_200, 30, "2"),
    "out of bounds": lambda lines: _with_cell(lines, 1_700, 29, "-5"),
    "extra cells": lambda lines: [*lines[:1_400], lines[1_400] + ",1,2", *lines[1_401:]],
    "an empty line inside": lambda lines: [*lines[:1_800], "", *lines[1_800:]],
    "a missing column": lambda lines: [",".join(line.split(",")[:-1]) for line in lines],
    "a header only": lambda lines: lines[:1],
}


@pytest.mark.parametrize("change", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_refused_on_the_workers_with_the_local_readers_reason_and_line(
    change, client, good_lines, tmp_path, monkeypatch
):
    # Small partitions, so the problem lies in one of many, as in a large file.
    monkeypatch.setattr(dask_training, "BLOCKSIZE", 64 * 1024)
    data = ("\n".join(change(good_lines)) + "\n").encode()
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    with pytest.raises(schema.DataValidationError) as local:
        schema.read_training_csv(data, require_fraud=False)
    (check,) = dask_training.check_files(client, [Source(str(path))], {})
    assert check.error == str(local.value)
    assert check.error.startswith("line ") or "header" in check.error or "column" in check.error


def test_a_good_file_is_counted_on_the_workers_trailing_empty_lines_allowed(client, good_lines, tmp_path, monkeypatch):
    monkeypatch.setattr(dask_training, "BLOCKSIZE", 64 * 1024)
    data = ("\n".join(good_lines) + "\n\n\n").encode()
    path = tmp_path / "good.csv"
    path.write_bytes(data)
    expected = schema.read_training_csv(data)
    (check,) = dask_training.check_files(client, [Source(str(path), hashlib.sha256(data).hexdigest())], {})
    assert (check.error, check.rows, check.frauds) == ("", len(expected), int(expected[schema.LABEL].sum()))


def test_a_gzip_file_a_changed_file_and_a_missing_one_are_told_apart(client, good_lines, tmp_path):
    data = ("\n".join(good_lines) + "\n").encode()
    (tmp_path / "packed.csv").write_bytes(gzip.compress(data))
    (tmp_path / "changed.csv").write_bytes(data)
    packed, changed, missing = dask_training.check_files(
        client,
        [
            Source(str(tmp_path / "packed.csv")),
            Source(str(tmp_path / "changed.csv"), fingerprint="0" * 64),
            Source(str(tmp_path / "gone.csv")),
        ],
        {},
    )
    assert packed.error == "the file is gzip-compressed: upload the CSV uncompressed"
    assert changed.changed and not changed.missing
    assert missing.missing


def test_too_few_frauds_is_a_data_error_not_a_cluster_one(client, tmp_path):
    few = synthetic.generate(rows=3_000, fraud_rate=0.002, seed=5)
    few = few[(few[schema.LABEL] == 0) | (few.index.isin(few.index[few[schema.LABEL] == 1][:5]))]
    synthetic.write_csv(few, tmp_path / "few.csv")
    rows = dask_training.load(client, [Source(str(tmp_path / "few.csv"))], {})
    with pytest.raises(schema.DataValidationError, match="too few fraud rows"):
        dask_training.train(client, rows, replace(SMALL_CONFIG, n_estimators=5))
