"""The synthetic generator: shape, determinism, the CSV format, calibration and drift.

Everything here runs on the committed statistics or on generated data; the real sample the
statistics were derived from is not available on a user's machine.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from modelops.ml import schema, synthetic

DISCRIMINATIVE = ("V14", "V12", "V10", "V4", "V17")


def _committed(stats: dict, label: int, statistic: str, column: str) -> float:
    index = stats["columns"].index(column)
    if statistic == "median":
        table = stats["classes"][str(label)]
        return table["quantiles"][index][table["probabilities"].index(0.5)]
    return stats["classes"][str(label)][statistic][index]


@pytest.fixture(scope="module")
def large() -> pd.DataFrame:
    return synthetic.generate(rows=200_000, fraud_rate=0.05, seed=11)


@pytest.mark.parametrize(
    ("rows", "fraud_rate", "frauds"),
    [
        (1_000, 0.05, 50),
        (10_000, synthetic.DEFAULT_FRAUD_RATE, 17),
        (100, 0.00172, 1),  # rounds to 0, but a non-zero rate always yields one fraud
        (1, 0.5, 1),
        (500, 0.0, 0),
        (300, 1.0, 300),
    ],
)
def test_it_returns_exactly_the_requested_rows_and_frauds(rows, fraud_rate, frauds):
    frame = synthetic.generate(rows=rows, fraud_rate=fraud_rate, seed=1)
    assert len(frame) == rows
    assert int(frame["Class"].sum()) == frauds


def test_columns_are_in_schema_order_with_float_features_and_an_integer_label():
    frame = synthetic.generate(rows=200, fraud_rate=0.1)
    assert tuple(frame.columns) == schema.COLUMNS
    assert all(frame[name].dtype == np.float64 for name in schema.FEATURES)
    assert pd.api.types.is_integer_dtype(frame["Class"])
    assert set(frame["Class"].unique()) == {0, 1}
    assert frame.index.equals(pd.RangeIndex(200))


def test_time_is_sorted_whole_seconds_within_the_requested_span():
    frame = synthetic.generate(rows=20_000, fraud_rate=0.2, seed=3, start_time=86_400.0 * 30, days=1.5)
    time = frame["Time"].to_numpy()
    assert np.all(np.diff(time) >= 0)
    assert time.min() >= 86_400.0 * 30
    assert time.max() < 86_400.0 * 31.5
    assert np.array_equal(time, np.floor(time))
    # The whole span is used, not just its first day.
    assert time.max() > 86_400.0 * 31.4


def test_time_stays_in_the_span_when_it_starts_mid_second():
    time = synthetic.generate(rows=5_000, fraud_rate=0.1, seed=3, start_time=100.5, days=0.01)["Time"]
    assert time.min() >= 100.5
    assert time.max() < 100.5 + 864.0


def test_time_follows_the_day_and_night_rhythm_of_the_calibration():
    frame = synthetic.generate(rows=50_000, fraud_rate=0.0, seed=4, days=1.0)
    hours = frame["Time"].to_numpy() // 3600
    # Card payments are rare at night (hours 1-6 of the dataset's clock) and common by day.
    assert np.mean((hours >= 1) & (hours < 6)) < np.mean((hours >= 12) & (hours < 17)) / 2


def test_amount_is_non_negative_and_in_cents():
    amount = synthetic.generate(rows=50_000, fraud_rate=0.1, seed=5)["Amount"].to_numpy()
    assert amount.min() >= 0.0
    assert not np.signbit(amount).any()  # no "-0.0" written to a file
    assert np.allclose(amount * 100, np.round(amount * 100), atol=1e-6)
    # Calibrated to card purchases: a typical payment is tens of units, the largest stay modest.
    assert 5.0 < np.median(amount) < 60.0
    assert amount.max() < 100_000.0


def test_it_is_deterministic_for_a_seed():
    first = synthetic.generate(rows=5_000, fraud_rate=0.05, seed=42, drift=0.5)
    second = synthetic.generate(rows=5_000, fraud_rate=0.05, seed=42, drift=0.5)
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_a_different_seed_gives_different_rows():
    first = synthetic.generate(rows=5_000, fraud_rate=0.05, seed=1)
    second = synthetic.generate(rows=5_000, fraud_rate=0.05, seed=2)
    assert not np.allclose(first["V1"].to_numpy(), second["V1"].to_numpy())
    assert not np.array_equal(first["Time"].to_numpy(), second["Time"].to_numpy())


def test_a_written_file_reads_back_unchanged_through_the_schema(tmp_path):
    frame = synthetic.generate(rows=3_000, fraud_rate=0.05, seed=8)
    path = tmp_path / "synthetic.csv"
    synthetic.write_csv(frame, path)
    back = schema.read_training_csv(str(path))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def test_the_written_file_has_the_dataset_format():
    frame = synthetic.generate(rows=500, fraud_rate=0.1, seed=9)
    frame.loc[0, "Amount"] = 20.0
    buffer = io.StringIO()
    synthetic.write_csv(frame, buffer)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == ",".join(schema.COLUMNS)
    assert len(lines) == 501
    first = lines[1].split(",")
    # As in the original file: whole Times and Amounts have no decimal point, labels are 0/1.
    assert first[0] == str(int(frame.loc[0, "Time"]))
    assert first[-2] == "20"
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"0", "1"}


def test_class_means_follow_the_committed_stats_and_separate_the_classes(large):
    stats = synthetic.load_stats()
    for column in DISCRIMINATIVE:
        legit = large.loc[large["Class"] == 0, column]
        fraud = large.loc[large["Class"] == 1, column]
        for label, values in ((0, legit), (1, fraud)):
            spread = _committed(stats, label, "std", column)
            assert abs(values.median() - _committed(stats, label, "median", column)) < 0.05 * spread, column
            assert abs(values.mean() - _committed(stats, label, "mean", column)) < 0.1 * spread, column
        # The fraud class sits several legitimate standard deviations away on these features.
        assert abs(fraud.mean() - legit.mean()) > 3 * legit.std(), column


def test_the_copula_keeps_the_fraud_features_correlated(large):
    fraud = large[large["Class"] == 1]
    # In real frauds V14, V12, V10 and V17 fall together; independent marginals would lose that.
    corr = fraud[["V14", "V12", "V10", "V17"]].corr(method="spearman").to_numpy()
    assert corr[np.triu_indices(4, 1)].min() > 0.5


def test_drift_moves_the_late_rows_and_not_the_early_ones():
    steady = synthetic.generate(rows=60_000, fraud_rate=0.0, seed=5)
    drifted = synthetic.generate(rows=60_000, fraud_rate=0.0, seed=5, drift=2.0)
    # Drift only shifts values: the same transactions are drawn, at the same times.
    assert np.array_equal(steady["Time"].to_numpy(), drifted["Time"].to_numpy())
    span = 2 * 86_400.0
    early = steady["Time"].to_numpy() < 0.1 * span
    late = steady["Time"].to_numpy() >= 0.9 * span
    spread = np.asarray(synthetic.load_stats()["classes"]["0"]["std"][:-1])
    features = list(schema.PCA_FEATURES)
    early_shift = (drifted.loc[early, features].mean() - steady.loc[early, features].mean()).abs() / spread
    late_shift = (drifted.loc[late, features].mean() - steady.loc[late, features].mean()).abs() / spread
    assert early_shift.max() < 0.2
    assert late_shift.min() > 1.7
    assert not drifted.loc[late, "Amount"].equals(steady.loc[late, "Amount"])


def test_drift_direction_depends_on_the_seed():
    def direction(seed: int) -> np.ndarray:
        steady = synthetic.generate(rows=2_000, fraud_rate=0.0, seed=seed)
        drifted = synthetic.generate(rows=2_000, fraud_rate=0.0, seed=seed, drift=1.0)
        return np.sign((drifted[list(schema.PCA_FEATURES)] - steady[list(schema.PCA_FEATURES)]).mean().to_numpy())

    assert not np.array_equal(direction(1), direction(2))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"rows": 0}, "rows"),
        ({"rows": 2.5}, "rows"),
        ({"rows": 10, "fraud_rate": -0.1}, "fraud_rate"),
        ({"rows": 10, "fraud_rate": 1.5}, "fraud_rate"),
        ({"rows": 10, "fraud_rate": math.nan}, "fraud_rate"),
        ({"rows": 10, "days": 0}, "days"),
        ({"rows": 10, "days": -1.0}, "days"),
        ({"rows": 10, "days": math.inf}, "days"),
        ({"rows": 10, "start_time": 9e8, "days": 10_000}, "days"),
        ({"rows": 10, "seed": -1}, "seed"),
        ({"rows": 10, "drift": math.inf}, "drift"),
        ({"rows": 10, "start_time": -5.0}, "start_time"),
    ],
)
def test_invalid_arguments_raise_a_value_error_naming_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        synthetic.generate(**kwargs)


def test_the_committed_stats_are_well_formed():
    stats = synthetic.load_stats()
    assert stats["columns"] == [*schema.PCA_FEATURES, "log1p(Amount)"]
    assert 0.0 < stats["sample_fraud_rate"] < 1.0
    for table in stats["classes"].values():
        assert len(table["quantiles"]) == len(stats["columns"])
        assert all(np.all(np.diff(row) >= 0) for row in table["quantiles"])
        # No outermost probability so extreme that it is really one row's value.
        assert min(table["probabilities"]) * table["rows"] >= synthetic.MIN_ROWS_BEYOND
        correlation = np.asarray(table["correlation"])
        assert correlation.shape == (29, 29)
        assert np.allclose(correlation, correlation.T)
        assert math.isclose(sum(table["time_of_day"]), 1.0, abs_tol=1e-4)


def test_load_stats_returns_a_copy_callers_can_change():
    stats = synthetic.load_stats()
    stats["classes"]["1"]["quantiles"][13] = [0.0] * len(stats["classes"]["1"]["probabilities"])
    assert synthetic.load_stats()["classes"]["1"]["quantiles"][13] != stats["classes"]["1"]["quantiles"][13]


def test_calibrate_then_generate_reproduces_a_population():
    population = synthetic.generate(rows=4_000, fraud_rate=0.1, seed=12)
    stats = synthetic.calibrate(population)
    assert stats["classes"]["1"]["rows"] == 400
    assert stats["sample_fraud_rate"] == 0.1
    # Statistics only: nothing the size of the population is kept.
    assert len(json.dumps(stats)) < 60_000
    copy = synthetic.generate(rows=20_000, fraud_rate=0.1, seed=13, stats=stats)
    for column in DISCRIMINATIVE:
        for label in (0, 1):
            original = population.loc[population["Class"] == label, column]
            regenerated = copy.loc[copy["Class"] == label, column]
            assert abs(regenerated.median() - original.median()) < 0.15 * original.std(), (column, label)


def test_the_calibrate_command_writes_stats_from_a_csv(tmp_path, capsys):
    source = tmp_path / "sample.csv"
    synthetic.write_csv(synthetic.generate(rows=3_000, fraud_rate=0.1, seed=14), source)
    out = tmp_path / "stats.json"
    assert synthetic.main(["calibrate", "--csv", str(source), "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["sample_rows"] == 3_000
    assert stats["classes"]["1"]["rows"] == 300
    summary = capsys.readouterr().out
    assert summary.count("\n") == 1
    assert "3000 rows" in summary
