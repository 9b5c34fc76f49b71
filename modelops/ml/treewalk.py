"""XGBoost's approximate (Saabas) contributions for a few rows, walked in numpy.

For a few rows XGBoost's per-call setup outweighs the traversal, so all trees are walked together
as flat arrays, one level per step, as CalculateContributionsApprox credits splits. Comparisons are
in float32, as XGBoost makes them, so the same leaf is reached; each leaf's path is tabled once."""

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
            # Children have larger ids than their parent: a reverse pass sees them first.
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
        # Leaf k's path, padded with steps crediting feature 0 nothing; `leaf_of` maps the walk's end to k.
        self.leaf_of = np.zeros(2 * count * width, dtype=np.int32)
        self.path_feature = np.zeros((len(paths), max(depth, 1)), dtype=np.int16)
        self.path_delta = np.zeros((len(paths), max(depth, 1)), dtype=np.float64)
        for k, (entry, path) in enumerate(paths):
            self.leaf_of[2 * entry] = k
            for step, (f, change) in enumerate(path):
                self.path_feature[k, step], self.path_delta[k, step] = f, change
        # Node i of tree t is entry t * width + i; the walk keeps twice it, so adding "goes right" (0
        # or 1) indexes `child`, `feature` and `condition` directly. A leaf (and padding) leads to
        # itself, so walking past it changes nothing and every tree takes `depth` steps.
        self.child = child.ravel() * 2
        self.feature, self.condition = np.repeat(feature.ravel(), 2), np.repeat(condition.ravel(), 2)
        self.roots = index[:, 0] * 2
        self.depth = depth
        self.bias = math.log(base_score / (1 - base_score)) + float(means.sum())

    def contributions(self, prepared: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) contributions, the bias last, for prepared float32 rows without NaN."""
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
            row_base = (np.arange(rows) * columns)[:, None]
            node = np.broadcast_to(self.roots, (rows, len(self.roots)))
            for _ in range(self.depth):
                node = self.child[node + (flat[row_base + self.feature[node]] >= self.condition[node])]
            leaves = self.leaf_of[node]
            features = self.path_feature[leaves] + (np.arange(rows) * width)[:, None, None]
        out = np.bincount(features.ravel(), weights=self.path_delta[leaves].ravel(), minlength=rows * width)
        out = out.reshape(rows, width)
        out[:, -1] = self.bias
        return out
