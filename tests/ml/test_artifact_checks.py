"""What a bucket writer can plant is refused before any of it is used: unsigned or badly signed
artifacts, and signed ones whose structure would mislead or crash the scorer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelops.ml import artifact, signing
from modelops.ml.schema import FEATURES

from .signed import KEY, rewrite

OTHER_KEY = signing.SigningKey(b"a key this service does not hold, long enough")


@pytest.fixture(scope="module")
def data(trained) -> bytes:
    return artifact.dumps(trained.bundle, key=KEY)


def load(data: bytes, **options):
    return artifact.loads(data, sha256=artifact.sha256_hex(data), keys=[KEY], **options)


def test_a_signed_artifact_loads_and_names_its_key(data):
    assert load(data).signed_by == KEY.id
    assert json.loads(data)["signature"]["key_id"] == KEY.id


def test_an_artifact_signed_with_a_replaced_key_still_loads_while_that_key_is_listed(trained):
    old = artifact.dumps(trained.bundle, key=OTHER_KEY)
    assert artifact.loads(old, sha256=None, keys=[KEY, OTHER_KEY]).signed_by == OTHER_KEY.id
    with pytest.raises(artifact.ArtifactError, match=f"signed with key '{OTHER_KEY.id}'"):
        artifact.loads(old, sha256=None, keys=[KEY])


def test_an_altered_artifact_whose_name_was_recomputed_is_refused_by_its_signature(data):
    # The planted file's sha256 is its own: only the signature can tell it was not made here.
    planted = rewrite(data, lambda d: d.update(threshold=0.999), key=None)
    with pytest.raises(artifact.ArtifactError, match="the artifact is unsigned"):
        load(planted)
    changed = data.replace(b'"threshold":', b'"threshold":0.999,"was":', 1)
    with pytest.raises(artifact.ArtifactError, match="does not match its content"):
        load(changed)
    with pytest.raises(artifact.ArtifactError, match="which this service does not hold"):
        load(rewrite(data, lambda d: None, key=OTHER_KEY))


def test_an_unsigned_artifact_loads_only_when_explicitly_allowed_and_a_bad_signature_never(data):
    unsigned = rewrite(data, lambda d: None, key=None)
    assert load(unsigned, allow_unsigned=True).signed_by == ""
    forged = rewrite(data, lambda d: None, key=OTHER_KEY)
    with pytest.raises(artifact.ArtifactError, match="does not hold"):
        load(forged, allow_unsigned=True)


def _first_tree(document: dict) -> dict:
    return document["booster"]["learner"]["gradient_booster"]["model"]["trees"][0]


def _set_tree(key: str, index: int, value):
    def change(document):
        _first_tree(document)[key][index] = value

    return change


def _set(path: tuple, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


LEARNER = ("booster", "learner")
STRUCTURE_ERRORS = {
    # Turned every alert off.
    "threshold_above_1": (_set(("threshold",), 1.5), "the threshold must be a number between 0 and 1"),
    "threshold_0": (_set(("threshold",), 0), "between 0 and 1"),
    "threshold_text": (_set(("threshold",), "0.5"), "between 0 and 1"),
    "scale_0": (_set(("scaling", "Amount", "scale"), 0.0), "must have a scale from"),
    # Found by fuzzing: a scale of 1e-300 made a scaled Amount infinite, an XGBoostError (a 500).
    "scale_tiny": (_set(("scaling", "Amount", "scale"), 1e-300), "must have a scale from"),
    "center_huge": (_set(("scaling", "Time", "center"), -1e300), "must have a scale from"),
    "scale_nan": (_set(("scaling", "Time", "scale"), float("nan")), "finite center and scale"),
    "features_reordered": (_set(("features",), list(reversed(FEATURES))), "feature order"),
    "objective": (_set((*LEARNER, "objective", "name"), "reg:squarederror"), "objective 'reg:squarederror'"),
    "num_feature": (_set((*LEARNER, "learner_model_param", "num_feature"), "31"), "must have 30 features"),
    "base_score": (_set((*LEARNER, "learner_model_param", "base_score"), "[1E0]"), "base_score"),
    # Crashed every worker with SIGSEGV on each request.
    "child_out_of_range": (_set_tree("left_children", 0, 10_000_000), "a child index is out of range"),
    "child_before_parent": (_set_tree("right_children", 0, 0), "a child index is out of range"),
    # Gave a 500 on every request and on /readyz.
    "split_out_of_range": (_set_tree("split_indices", 0, 30), "a split index is out of range"),
    "split_negative": (_set_tree("split_indices", 0, -1), "a split index is out of range"),
    "one_child": (_set_tree("right_children", 0, -1), "a node has one child"),
    "condition_nan": (_set_tree("split_conditions", 0, float("nan")), "not finite"),
    "hessian_0": (_set_tree("sum_hessian", 0, 0.0), "no weight"),
    # Found by fuzzing: above 0 as float64, 0 in XGBoost's float32, a division by zero in the walk.
    "hessian_below_float32": (_set_tree("sum_hessian", 0, 1e-50), "no weight"),
    # Found by fuzzing: a leaf without weight gave NaN contributions, and a NaN score.
    "leaf_hessian_0": (lambda d: _first_tree(d)["sum_hessian"].__setitem__(-1, 0.0), "no weight"),
    "index_not_int": (_set_tree("left_children", 0, 1.0), "must be a list of integers"),
    "short_list": (lambda d: _first_tree(d)["parents"].pop(), "parents must list its"),
    # Found by the fuzzer: a TypeError (a 500) instead of a refusal.
    "split_type_not_a_list": (lambda d: _first_tree(d).update(split_type=1), "categorical splits"),
    "split_type_categorical": (_set_tree("split_type", 0, 1), "categorical splits"),
    "threshold_huge_int": (_set(("threshold",), 10**400), "between 0 and 1"),
    "objective_a_list": (_set((*LEARNER, "objective", "name"), ["binary:logistic"]), "objective"),
    "tree_id_a_bool": (lambda d: _first_tree(d).update(id=False), "tree 0 is missing or out of order"),
    # Found by fuzzing: leaves of 1e308, finite as float64, gave an infinite margin and NaN scores.
    "leaf_huge": (lambda d: _first_tree(d)["split_conditions"].__setitem__(-1, 1e308), "beyond"),
    "condition_huge_int": (_set_tree("split_conditions", 0, -(10**400)), "must be a list of numbers"),
}


@pytest.mark.parametrize("case", STRUCTURE_ERRORS)
def test_a_signed_artifact_with_a_bad_structure_is_refused_with_its_reason(data, case):
    change, reason = STRUCTURE_ERRORS[case]
    with pytest.raises(artifact.ArtifactError, match=reason):
        load(rewrite(data, change))


def test_a_shared_subtree_is_refused(data):
    def share(document):
        tree = _first_tree(document)
        grandchild = tree["left_children"][1]
        tree["right_children"][2] = grandchild  # node 2 points at node 1's child too

    with pytest.raises(artifact.ArtifactError, match="the nodes do not form one tree"):
        load(rewrite(data, share))


def test_deeply_nested_json_is_refused_not_a_recursion_error():
    deep = b'{"format":"fraud-model/1","metadata":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(artifact.ArtifactError, match="nested too deeply"):
        artifact.loads(deep, sha256=None, keys=[KEY])


def test_an_artifact_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch, data):
    monkeypatch.setattr(artifact, "MAX_ARTIFACT_BYTES", len(data) - 1)
    with pytest.raises(artifact.ArtifactError, match="over"):
        load(data)


def test_a_walk_error_while_scoring_is_an_artifact_error(data, monkeypatch):
    bundle = load(data)
    assert bundle.walker is not None
    monkeypatch.setattr(bundle.walker, "feature", np.full_like(bundle.walker.feature, 10_000))
    with pytest.raises(artifact.ArtifactError, match="cannot be walked"):
        bundle.score(np.zeros((1, len(FEATURES))))


def test_an_error_while_building_the_walk_is_an_artifact_error(data, monkeypatch):
    # The checks now keep every known cause out; a new one must still be a 503, never a 500.
    def fails(self, booster):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(artifact.TreeTable, "__init__", fails)
    with pytest.raises(artifact.ArtifactError, match="cannot be walked"):
        load(data).score(np.zeros((1, len(FEATURES))))


def test_a_score_that_is_not_a_number_is_an_artifact_error(data, monkeypatch):
    bundle = load(data)
    monkeypatch.setattr(bundle, "contributions", lambda prepared: np.full((len(prepared), len(FEATURES) + 1), np.nan))
    with pytest.raises(artifact.ArtifactError, match="not a number"):
        bundle.score(np.zeros((1, len(FEATURES))))
