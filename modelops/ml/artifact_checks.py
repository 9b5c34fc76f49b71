"""Structural checks of an artifact document before any of it is used.

XGBoost trusts the indexes in its JSON model (a bad child index crashes the process), so everything
the booster and the tree walk index by is checked here, in linear time; any doubt is an error."""

from __future__ import annotations

import math
import sys

import numpy as np

from .schema import FEATURES

SCALED = ("Time", "Amount")
OBJECTIVES = frozenset({"binary:logistic"})  # serving takes the logistic of the margin
MAX_TREES = 20_000
MAX_NODES_PER_TREE = 1 << 16
# Trees times the widest tree: the size of the tree walk's tables.
MAX_TABLE_NODES = 8_000_000
# Any value in BOUNDS, scaled, stays far inside float32, which XGBoost reads it as.
MIN_SCALE = 1e-6
MAX_SCALING = 1e12
# XGBoost sums leaf values in float32 (largest 3.4e38): bounded leaves keep the sum finite.
MAX_MAGNITUDE = 1e30
_NO_PARENT = 2147483647  # XGBoost's parent of a root
_LARGEST_FLOAT = int(sys.float_info.max)
_PER_NODE = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "sum_hessian",
    "base_weights",
    "default_left",
)
_FLOATS = ("split_conditions", "sum_hessian", "base_weights")


class ArtifactCheckError(ValueError):
    pass


def check_document(document: object) -> None:
    """Refuse a document that is not a complete, well-formed artifact of this schema."""
    if not isinstance(document, dict):
        raise ArtifactCheckError("the artifact is not a JSON object")
    if document.get("features") != list(FEATURES):
        raise ArtifactCheckError("the artifact's feature order differs from this service's schema")
    threshold = document.get("threshold")
    if not _number(threshold) or not 0 < threshold < 1:
        raise ArtifactCheckError(f"the threshold must be a number between 0 and 1, not {_show(threshold)}")
    scaling = document.get("scaling")
    for name in SCALED:
        params = scaling.get(name) if isinstance(scaling, dict) else None
        if not isinstance(params, dict) or not _number(params.get("center")) or not _number(params.get("scale")):
            raise ArtifactCheckError(f"the scaling of {name} must have a finite center and scale")
        if not MIN_SCALE <= params["scale"] <= MAX_SCALING or abs(params["center"]) > MAX_SCALING:
            raise ArtifactCheckError(
                f"the scaling of {name} must have a scale from {MIN_SCALE:g} to {MAX_SCALING:g} and a center"
                f" within ±{MAX_SCALING:g}, not {_show(params['scale'])} and {_show(params['center'])}"
            )
    if not isinstance(document.get("metadata", {}), dict):
        raise ArtifactCheckError("the artifact's metadata is not a JSON object")
    check_booster(document.get("booster"))


def check_booster(booster: object) -> None:
    """Refuse an XGBoost JSON model that is not a binary tree ensemble over FEATURES, all indexes in range."""
    learner = _get(booster, "learner")
    objective = _get(learner, "objective").get("name")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ArtifactCheckError(f"the booster's objective {_show(objective)} is not one of {sorted(OBJECTIVES)}")
    params = _get(learner, "learner_model_param")
    if _int_text(params, "num_feature") != len(FEATURES):
        raise ArtifactCheckError(f"the booster must have {len(FEATURES)} features")
    if _int_text(params, "num_class") != 0 or _int_text(params, "num_target", default=1) != 1:
        raise ArtifactCheckError("the booster must have one target and no classes")
    base = params.get("base_score")
    try:
        base_score = float(str(base).strip("[]"))
    except ValueError:
        base_score = math.nan
    if not 0 < base_score < 1:
        raise ArtifactCheckError(f"the booster's base_score must be between 0 and 1, not {_show(base)}")
    gradient_booster = _get(learner, "gradient_booster")
    if gradient_booster.get("name") != "gbtree":
        raise ArtifactCheckError("the booster is not a tree booster (gbtree)")
    model = _get(gradient_booster, "model")
    trees = model.get("trees")
    if not isinstance(trees, list) or not 0 < len(trees) <= MAX_TREES:
        raise ArtifactCheckError(f"the booster must have 1 to {MAX_TREES} trees")
    if _int_text(_get(model, "gbtree_model_param"), "num_trees") != len(trees):
        raise ArtifactCheckError("the booster's tree count does not match its trees")
    _check_list(model, "tree_info", len(trees), low=0, high=1)
    # Written by XGBoost since 2.0; an older model without it gets one when loaded.
    indptr = _ints(model, "iteration_indptr", None) if "iteration_indptr" in model else np.array([0, len(trees)])
    if indptr[0] != 0 or indptr[-1] != len(trees) or (np.diff(indptr) < 0).any():
        raise ArtifactCheckError("the booster's iteration_indptr does not index its trees")
    widest = 0
    for number, tree in enumerate(trees):
        widest = max(widest, _check_tree(tree, number))
    if widest * len(trees) > MAX_TABLE_NODES:
        raise ArtifactCheckError(f"the booster is too large: {len(trees)} trees of up to {widest} nodes")


def _check_tree(tree: object, number: int) -> int:
    """Check one tree; its node count."""
    where = f"tree {number}"
    if not isinstance(tree, dict) or type(tree.get("id")) is not int or tree["id"] != number:
        raise ArtifactCheckError(f"{where} is missing or out of order")
    nodes = _int_text(_get(tree, "tree_param"), "num_nodes")
    if not 0 < nodes <= MAX_NODES_PER_TREE:
        raise ArtifactCheckError(f"{where} must have 1 to {MAX_NODES_PER_TREE} nodes")
    if _int_text(tree["tree_param"], "size_leaf_vector", default=1) > 1:
        raise ArtifactCheckError(f"{where} has vector leaves")
    for name in _PER_NODE:
        if not isinstance(tree.get(name), list) or len(tree[name]) != nodes:
            raise ArtifactCheckError(f"{where}: {name} must list its {nodes} nodes")
    split_type = tree.get("split_type", [])
    if not isinstance(split_type, list) or any(kind != 0 for kind in split_type) or tree.get("categories_nodes"):
        raise ArtifactCheckError(f"{where} has categorical splits, which this schema has no use for")
    left, right = _ints(tree, "left_children", where), _ints(tree, "right_children", where)
    leaf = left == -1
    if ((right == -1) != leaf).any():
        raise ArtifactCheckError(f"{where}: a node has one child")
    own = np.arange(nodes)
    children = np.concatenate([left[~leaf], right[~leaf]])
    parents = np.concatenate([own[~leaf], own[~leaf]])
    # Children after their parent (XGBoost's order, which the walk relies on), each node but the
    # root the child of exactly one node: a tree, with no cycle and no shared subtree.
    if ((children <= parents) | (children >= nodes)).any():
        raise ArtifactCheckError(f"{where}: a child index is out of range")
    if (np.bincount(children, minlength=nodes) != (own > 0)).any():
        raise ArtifactCheckError(f"{where}: the nodes do not form one tree")
    expected = np.full(nodes, _NO_PARENT)
    expected[children] = parents
    if (_ints(tree, "parents", where) != expected).any():
        raise ArtifactCheckError(f"{where}: parents do not match children")
    split = _ints(tree, "split_indices", where)
    if ((split[~leaf] < 0) | (split[~leaf] >= len(FEATURES))).any():
        raise ArtifactCheckError(f"{where}: a split index is out of range")
    for name in _FLOATS:
        values = _floats(tree, name, where)
        if not (np.abs(values) <= MAX_MAGNITUDE).all():
            raise ArtifactCheckError(f"{where}: {name} holds a value that is not finite or beyond ±{MAX_MAGNITUDE:g}")
    # XGBoost keeps weights as float32, in which a tiny one is 0; contributions divide by them.
    if (_floats(tree, "sum_hessian", where).astype(np.float32) <= 0).any():
        raise ArtifactCheckError(f"{where}: a node has no weight (sum_hessian)")
    return nodes


def _get(container: object, key: str) -> dict:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, dict):
        raise ArtifactCheckError(f"the booster has no {key}")
    return value


def _int_text(params: dict, key: str, default: int | None = None) -> int:
    """XGBoost writes its parameters as text: "30"."""
    value = params.get(key, default)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ArtifactCheckError(f"the booster's {key} is not a count: {_show(value)}")


def _ints(container: dict, key: str, where: str | None) -> np.ndarray:
    values = container.get(key)
    if not isinstance(values, list) or not values or not all(type(v) is int for v in values):
        raise ArtifactCheckError(f"{where or 'the booster'}: {key} must be a list of integers")
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise ArtifactCheckError(f"{where or 'the booster'}: {key} holds an integer out of range") from None


def _floats(tree: dict, key: str, where: str) -> np.ndarray:
    values = tree.get(key)
    if not isinstance(values, list) or not all(_number(v, finite=False) for v in values):
        raise ArtifactCheckError(f"{where}: {key} must be a list of numbers")
    return np.array(values, dtype=np.float64)


def _check_list(model: dict, key: str, length: int, *, low: int, high: int) -> None:
    values = _ints(model, key, None)
    if len(values) != length or ((values < low) | (values >= high)).any():
        raise ArtifactCheckError(f"the booster's {key} does not match its trees")


def _number(value: object, *, finite: bool = True) -> bool:
    if type(value) not in (int, float):
        return False
    if type(value) is int:
        return abs(value) <= _LARGEST_FLOAT  # an integer float() cannot hold is no usable number
    return not finite or math.isfinite(value)


def _show(value: object) -> str:
    return repr(value)[:40]
