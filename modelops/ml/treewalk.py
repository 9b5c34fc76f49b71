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
makes them (`value < split_condition` goes left), so the same leaf is reached. Which features a
leaf's path credits, and by how much, depends only on the leaf: it is tabled once, so the walk
only finds each tree's leaf, and one bincount then sums the tabled paths of the leaves reached.
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
        if self.n_features >= 2**15:
            raise UnsupportedModel("too many features for the path tables")
        width = max(int(t["tree_param"]["num_nodes"]) for t in trees)
        count = len(trees)
        index = np.arange(count * width, dtype=np.int64).reshape(count, width)
        child = np.repeat(index.ravel(), 2).reshape(count, width, 2)
        feature = np.zeros((count, width), dtype=np.intp)
        condition = np.zeros((count, width), dtype=np.float32)
        means = np.zeros(count, dtype=np.float64)
        paths: list[tuple[int, list[tuple[int, float]]]] = []  # (leaf's entry, its path's steps)
        for t, tree in enumerate(trees):
            if tree.get("categories_nodes") or any(tree.get("split_type", ())):
                raise UnsupportedModel("categorical splits")
            lefts, rights = tree["left_children"], tree["right_children"]
            hessian, values = tree["sum_hessian"], tree["split_conditions"]
            n = len(lefts)
            mean = [0.0] * n
            # Children have larger ids than their parent in XGBoost's trees: a reverse pass
            # sees both children before the parent, a forward pass the parent first.
            for i in range(n - 1, -1, -1):
                if lefts[i] == -1:
                    mean[i] = values[i]
                    continue
                a, b = lefts[i], rights[i]
                if not (a > i and b > i):
                    raise UnsupportedModel("node order")
                mean[i] = (mean[a] * hessian[a] + mean[b] * hessian[b]) / hessian[i]
                child[t, i] = (t * width + a, t * width + b)
                feature[t, i] = tree["split_indices"][i]
                condition[t, i] = values[i]
            steps: list[list[tuple[int, float]]] = [[] for _ in range(n)]
            for i in range(n):
                if lefts[i] == -1:
                    paths.append((t * width + i, steps[i]))
                    continue
                for c in (lefts[i], rights[i]):
                    steps[c] = [*steps[i], (int(tree["split_indices"][i]), mean[c] - mean[i])]
            means[t] = mean[0]
        depth = max(len(path) for _, path in paths)
        # Leaf k's path, padded to `depth` steps that credit feature 0 with nothing; `leaf_of`
        # gives k from where the walk ends (twice the leaf's entry, see below). Rows are leaves
        # only, not every node, and features small integers: the tables stay near the size of
        # the walk's own arrays for deeper models too.
        self.leaf_of = np.zeros(2 * count * width, dtype=np.int32)
        self.path_feature = np.zeros((len(paths), max(depth, 1)), dtype=np.int16)
        self.path_delta = np.zeros((len(paths), max(depth, 1)), dtype=np.float64)
        for k, (entry, path) in enumerate(paths):
            self.leaf_of[2 * entry] = k
            for step, (f, change) in enumerate(path):
                self.path_feature[k, step], self.path_delta[k, step] = f, change
        # Node i of tree t is entry t * width + i. The walk keeps twice a node's entry, so that
        # adding "goes right" (0 or 1) gives the index of the step taken in `child` (twice the
        # next node's entry), `feature` and `condition`: one numpy operation less per level. A
        # leaf (and padding) leads to itself, splitting on feature 0, so walking past it changes
        # nothing and every tree takes `depth` steps.
        self.child = child.ravel() * 2
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
        flat = prepared.ravel()
        if rows == 1:
            node = self.roots
            for _ in range(self.depth):
                node = self.child[node + (flat[self.feature[node]] >= self.condition[node])]
            leaves = self.leaf_of[node]
            features = self.path_feature[leaves]
        else:
            # Offsets that turn (row, feature) into a flat index of `prepared` and of the output.
            row_base = (np.arange(rows) * columns)[:, None]
            node = np.broadcast_to(self.roots, (rows, len(self.roots)))
            for _ in range(self.depth):
                node = self.child[node + (flat[row_base + self.feature[node]] >= self.condition[node])]
            leaves = self.leaf_of[node]
            features = self.path_feature[leaves] + (np.arange(rows) * width)[:, None, None]
        # Each (row, feature) gets the sum of its leaves' path steps.
        out = np.bincount(features.ravel(), weights=self.path_delta[leaves].ravel(), minlength=rows * width)
        out = out.reshape(rows, width)
        out[:, -1] = self.bias
        return out
