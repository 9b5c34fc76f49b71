"""XGBoost's approximate (Saabas) contributions for a few rows, walked in numpy.

For one row, XGBoost spends about 0.24 ms building a DMatrix and calling predict with
pred_contribs (docs/BENCHMARKS.md), most of it per-call overhead, not tree traversal. Here the
ensemble is laid out as flat arrays once, when the model is loaded, and all trees are walked
together, one level per step: a few numpy operations per level instead of one C call with its
setup. Past a few dozen rows XGBoost's own loop is faster, so ModelBundle.score uses this only
for small inputs.

The walk is XGBoost's CalculateContributionsApprox: each split moves the row from a node's mean
value to its child's, and the difference is credited to the split's feature; a node's mean value
is its leaves' values weighted by hessian (cover). Comparisons are made in float32, as XGBoost
makes them (`value < split_condition` goes left), so the same leaf is reached.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xgboost as xgb


class UnsupportedModel(Exception):
    """A booster this walk does not reproduce (another objective, categorical splits, ...)."""


class TreeTable:
    def __init__(self, booster: xgb.Booster) -> None:
        document = json.loads(bytes(booster.save_raw("json")))
        learner = document["learner"]
        if learner["objective"]["name"] != "binary:logistic":
            raise UnsupportedModel(f"objective {learner['objective']['name']}")
        model = learner["gradient_booster"]["model"]
        if learner["gradient_booster"].get("name", "gbtree") != "gbtree":
            raise UnsupportedModel("not a tree booster")
        trees = model["trees"]
        if not trees:
            raise UnsupportedModel("no trees")
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        self.n_features = int(learner["learner_model_param"]["num_feature"])
        width = max(int(t["tree_param"]["num_nodes"]) for t in trees)
        count = len(trees)
        # Node i of tree t is entry t * width + i. Its children are entries 2 * node (left) and
        # 2 * node + 1 (right) of `child` and `delta` (the change of mean value the step makes).
        # A leaf (and padding) leads to itself with a zero change, splitting on feature 0, so
        # walking past it changes nothing and every tree takes `depth` steps.
        index = np.arange(count * width, dtype=np.int64).reshape(count, width)
        child = np.repeat(index.ravel(), 2).reshape(count, width, 2)
        delta = np.zeros((count, width, 2), dtype=np.float64)
        feature = np.zeros((count, width), dtype=np.intp)
        condition = np.zeros((count, width), dtype=np.float32)
        means = np.zeros(count, dtype=np.float64)
        depth = 0
        for t, tree in enumerate(trees):
            if tree.get("categories_nodes") or any(tree.get("split_type", ())):
                raise UnsupportedModel("categorical splits")
            lefts, rights = tree["left_children"], tree["right_children"]
            hessian, values = tree["sum_hessian"], tree["split_conditions"]
            n = len(lefts)
            mean = [0.0] * n
            node_depth = [0] * n
            # Children have larger ids than their parent in XGBoost's trees: a reverse pass
            # sees both children before the parent.
            for i in range(n - 1, -1, -1):
                if lefts[i] == -1:
                    mean[i] = values[i]
                    continue
                a, b = lefts[i], rights[i]
                if not (a > i and b > i):
                    raise UnsupportedModel("node order")
                mean[i] = (mean[a] * hessian[a] + mean[b] * hessian[b]) / hessian[i]
                node_depth[i] = 1 + max(node_depth[a], node_depth[b])
                child[t, i] = (t * width + a, t * width + b)
                delta[t, i] = (mean[a] - mean[i], mean[b] - mean[i])
                feature[t, i] = tree["split_indices"][i]
                condition[t, i] = values[i]
            means[t] = mean[0]
            depth = max(depth, node_depth[0])
        # Everything is indexed by twice the node's entry, so that adding "goes right" (0 or 1)
        # gives the step's entry directly: one numpy operation less per level.
        self.child, self.delta = child.ravel() * 2, delta.ravel()
        self.feature, self.condition = np.repeat(feature.ravel(), 2), np.repeat(condition.ravel(), 2)
        self.roots = index[:, 0] * 2
        self.depth = depth
        # The bias column: the base margin plus every tree's root mean.
        self.bias = math.log(base_score / (1 - base_score)) + float(means.sum())

    def contributions(self, prepared: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) contributions, the bias last, for prepared float32 rows without
        missing values (the booster's own predict handles those)."""
        rows, columns = prepared.shape
        width = self.n_features + 1
        node = np.broadcast_to(self.roots, (rows, len(self.roots)))
        flat = prepared.ravel()
        features, deltas = [], []
        if rows == 1:
            for _ in range(self.depth):
                feature = self.feature[node]
                step = node + (flat[feature] >= self.condition[node])
                features.append(feature)
                deltas.append(self.delta[step])
                node = self.child[step]
        else:
            # Offsets that turn (row, feature) into a flat index of `prepared` and of the output.
            row_base = (np.arange(rows) * columns)[:, None]
            out_base = (np.arange(rows) * width)[:, None]
            for _ in range(self.depth):
                feature = self.feature[node]
                step = node + (flat[row_base + feature] >= self.condition[node])
                features.append(feature + out_base)
                deltas.append(self.delta[step])
                node = self.child[step]
        # One bincount for all levels: each (row, feature) gets the sum of its steps' changes.
        out = np.bincount(
            np.concatenate(features, axis=None), weights=np.concatenate(deltas, axis=None), minlength=rows * width
        ).reshape(rows, width)
        out[:, -1] = self.bias
        return out
