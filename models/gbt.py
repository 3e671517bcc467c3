"""Gradient-boosted trees (trainer.model: gbt): trained with LightGBM, served as plain TensorFlow ops.

LightGBM trains on the transformed features as NumPy arrays (`train`). Its public
`Booster.dump_model()` JSON is then flattened into arrays, one entry per node of every tree
(`flatten`), and `TreeEnsemble` evaluates them with a fixed number of gather/select steps,
one per level of the deepest tree (`raw_scores`). Only stock TensorFlow ops take part
(GatherV2, SelectV2, LessEqual, IsNan, ...), so TF Serving runs the exported model without
custom ops, unlike TensorFlow Decision Forests' inference ops (docs/training.md).

The routing is LightGBM's own (include/LightGBM/tree.h NumericalDecision and
CategoricalDecision), compared in float64 as LightGBM predicts, so each row reaches the same
leaf in every tree; only the order of summing the leaf values can differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

# LightGBM's missing_type per node, as the JSON dump names it.
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
# LightGBM's kZeroThreshold: |x| at most this is zero for missing_type Zero.
_ZERO_THRESHOLD = 1e-35
# A categorical input with more ids than this is given to LightGBM as a number (ordered ids):
# LightGBM's own advice for high-cardinality categories.
MAX_CATEGORIES = 1000


@dataclasses.dataclass(frozen=True)
class Forest:
    """All trees' nodes as flat arrays; node i of the forest is one split or one leaf.

    A leaf's children are itself, so a row that reached a leaf stays there for the remaining
    steps. Categorical splits hold their category set as `categories[cat_start:cat_start +
    cat_size]` (True: the category goes left).
    """

    feature: np.ndarray  # int32: input column of the split (0 for leaves)
    threshold: np.ndarray  # float64: x <= threshold goes left (numeric splits)
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    default_left: np.ndarray  # bool: where a missing value goes
    missing: np.ndarray  # int32: _MISSING
    categorical: np.ndarray  # bool
    cat_start: np.ndarray  # int32
    cat_size: np.ndarray  # int32
    leaf_value: np.ndarray  # float64 (0 for splits)
    roots: np.ndarray  # int32: each tree's root node, in LightGBM's tree order
    categories: np.ndarray  # bool
    depth: int  # splits on the longest path: the number of steps
    num_outputs: int  # trees per boosting iteration: classes for multiclass, else 1
    objective: str  # LightGBM's objective as dumped, e.g. "binary sigmoid:1"
    feature_names: tuple[str, ...]
    tree_depths: tuple[int, ...] = ()  # each tree's `depth`, in LightGBM's order (empty: all `depth`)


# The per-node arrays of a Forest and their types.
_NODE_TYPES = {
    "feature": np.int32,
    "threshold": np.float64,
    "left": np.int32,
    "right": np.int32,
    "default_left": bool,
    "missing": np.int32,
    "categorical": bool,
    "cat_start": np.int32,
    "cat_size": np.int32,
    "leaf_value": np.float64,
}


def flatten(dump: Mapping[str, Any]) -> Forest:
    """The forest of a `Booster.dump_model()` dict."""
    nodes: dict[str, list] = {name: [] for name in _NODE_TYPES}
    categories: list[bool] = []
    depth = tree_depth = 0

    def add(node: Mapping[str, Any], level: int) -> int:
        nonlocal depth, tree_depth
        index = len(nodes["feature"])
        for values in nodes.values():
            values.append(0)
        if "split_feature" not in node:  # a leaf
            nodes["left"][index] = nodes["right"][index] = index
            nodes["leaf_value"][index] = float(node["leaf_value"])
            depth, tree_depth = max(depth, level), max(tree_depth, level)
            return index
        nodes["feature"][index] = int(node["split_feature"])
        nodes["default_left"][index] = bool(node["default_left"])
        nodes["missing"][index] = _MISSING[node["missing_type"]]
        if node["decision_type"] == "==":  # threshold: the categories that go left, "1||4||7"
            ids = {int(c) for c in str(node["threshold"]).split("||")}
            nodes["categorical"][index] = True
            nodes["cat_start"][index] = len(categories)
            nodes["cat_size"][index] = max(ids) + 1
            categories.extend(i in ids for i in range(max(ids) + 1))
        elif node["decision_type"] == "<=":
            nodes["threshold"][index] = float(node["threshold"])
        else:
            raise ValueError(f"LightGBM split decision {node['decision_type']!r} is not supported")
        nodes["left"][index] = add(node["left_child"], level + 1)
        nodes["right"][index] = add(node["right_child"], level + 1)
        return index

    roots, tree_depths = [], []
    for tree in dump["tree_info"]:
        tree_depth = 0
        roots.append(add(tree["tree_structure"], 0))
        tree_depths.append(tree_depth)
    return Forest(
        **{name: np.asarray(values, _NODE_TYPES[name]) for name, values in nodes.items()},
        roots=np.asarray(roots, np.int32),
        categories=np.asarray(categories or [False], bool),
        depth=depth,
        num_outputs=int(dump["num_tree_per_iteration"]),
        objective=str(dump["objective"]),
        feature_names=tuple(dump["feature_names"]),
        tree_depths=tuple(tree_depths),
    )


def raw_scores(
    forest: Mapping[str, Any],
    x,
    depth: int,
    num_outputs: int,
    tree_depths: Sequence[int] = (),
    categorical: bool = True,
):
    """The ensemble's raw scores [n, num_outputs] (float64) of inputs `x` [n, features] (float64).

    `forest` holds the Forest's arrays as tensors (or arrays) by field name; every row walks
    every tree at once, one level per step. With `tree_depths` (each tree's depth) a tree leaves
    the walk after its own depth, when every row has reached one of its leaves: the trees walk
    deepest first, so the ones still walking are the first columns. `categorical` False: the
    forest has no categorical split, and its step is left out. Neither changes a leaf reached
    nor the order of the sum.
    """
    rows = tf.shape(x)[0]
    width = tf.shape(x)[1]
    flat_x = tf.reshape(x, [-1])
    row_start = tf.reshape(tf.range(rows) * width, [-1, 1])
    depths = list(tree_depths) or [depth] * int(np.shape(forest["roots"])[0])
    order = sorted(range(len(depths)), key=lambda tree: -depths[tree])  # stable: deepest first
    node = tf.tile(tf.reshape(tf.gather(forest["roots"], order), [1, -1]), tf.stack([rows, 1]))
    done = []  # column blocks of trees whose rows all sit on leaves, last columns first
    for level in range(depth):
        walking = sum(1 for d in depths if d > level)
        if walking < node.shape[1]:
            done.append(node[:, walking:])
            node = node[:, :walking]
        node = _step(forest, flat_x, row_start, node, categorical)
    node = tf.concat([node, *reversed(done)], axis=1)
    values = tf.gather(tf.gather(forest["leaf_value"], node), np.argsort(order), axis=1)
    # LightGBM's trees come iteration by iteration, one per output within each iteration.
    return tf.reduce_sum(tf.reshape(values, tf.stack([rows, -1, num_outputs])), axis=1)


def _step(forest: Mapping[str, Any], flat_x, row_start, node, categorical: bool):
    """Every row one level down in every tree of `node` [n, trees]: a leaf's children are itself."""
    value = tf.gather(flat_x, row_start + tf.gather(forest["feature"], node))
    nan = tf.math.is_nan(value)
    missing = tf.gather(forest["missing"], node)
    # NumericalDecision: NaN is zero unless the node's missing type is NaN; a missing
    # value (NaN, or zero for missing type Zero) goes to the default side.
    number = tf.where(nan & (missing != _MISSING["NaN"]), tf.zeros_like(value), value)
    is_missing = ((missing == _MISSING["Zero"]) & (tf.abs(number) <= _ZERO_THRESHOLD)) | (
        (missing == _MISSING["NaN"]) & nan
    )
    left = tf.where(is_missing, tf.gather(forest["default_left"], node), number <= tf.gather(forest["threshold"], node))
    if categorical:
        # CategoricalDecision: NaN and negative ids go right; an id is truncated as C's int cast.
        size = tf.gather(forest["cat_size"], node)
        in_set = (~nan) & (value > -1.0) & (value < tf.cast(size, tf.float64))
        category = tf.cast(tf.where(in_set, value, tf.zeros_like(value)), tf.int32)
        member = tf.gather(forest["categories"], tf.gather(forest["cat_start"], node) + category)
        left = tf.where(tf.gather(forest["categorical"], node), in_set & member, left)
    return tf.where(left, tf.gather(forest["left"], node), tf.gather(forest["right"], node))


def output_transform(objective: str, raw):
    """What LightGBM's predict answers from raw scores: sigmoid (binary), softmax (multiclass),
    the raw score itself (regression)."""
    name, *params = objective.split()
    if name == "binary":
        scale = dict(p.split(":") for p in params).get("sigmoid", "1")
        return tf.math.sigmoid(float(scale) * raw)
    if name in ("multiclass", "softmax"):
        return tf.nn.softmax(raw, axis=1)
    if name in ("regression", "huber", "regression_l2", "l2"):
        return raw
    raise ValueError(f"LightGBM objective {objective!r} is not supported by the TensorFlow evaluator")


class TreeEnsemble(tf.Module):
    """A LightGBM model as a tf.Module: called on the transformed features (a dict of [n] or
    [n, 1] tensors, as Transform gives them), it answers what the DNN answers: the probability
    [n, 1] (binary), the class probabilities [n, k] (multiclass), the z-scored value [n, 1]
    (regression), as float32.

    The node arrays are non-trainable variables, so the SavedModel holds them once in its
    checkpoint instead of once per signature.
    """

    def __init__(self, forest: Forest, model_text: str = ""):
        super().__init__(name="tree_ensemble")
        self.feature_names = forest.feature_names
        self.depth = forest.depth
        self.tree_depths = tuple(int(d) for d in forest.tree_depths)
        self.has_categorical = bool(np.any(forest.categorical))
        self.num_outputs = forest.num_outputs
        self.objective = forest.objective
        self.model_text = model_text  # LightGBM's own text model, saved in assets.extra
        self.arrays = {
            name: tf.Variable(getattr(forest, name), trainable=False, name=f"gbt_{name}")
            for name in (*_NODE_TYPES, "roots", "categories")
        }

    def inputs(self, transformed_features: Mapping[str, Any]):
        """The model's input matrix [n, features] (float64) in LightGBM's feature order."""
        return tf.concat(
            [tf.reshape(tf.cast(transformed_features[name], tf.float64), [-1, 1]) for name in self.feature_names],
            axis=1,
        )

    def __call__(self, transformed_features: Mapping[str, Any]):
        raw = raw_scores(
            self.arrays,
            self.inputs(transformed_features),
            self.depth,
            self.num_outputs,
            self.tree_depths,
            self.has_categorical,
        )
        return tf.cast(output_transform(self.objective, raw), tf.float32)

    def predict(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """What calling the module answers ([n, outputs] float32), from LightGBM's own predict on
        NumPy columns: the same leaves (tests/models/test_gbt.py), walked in C++ instead of one
        TensorFlow step per tree level over every tree, which scoring a whole split in Python
        pays for (the Trainer's choice between models)."""
        import lightgbm as lgb

        x = np.stack([np.asarray(columns[name], dtype=np.float64).reshape(-1) for name in self.feature_names], axis=1)
        out = lgb.Booster(model_str=self.model_text).predict(x)
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


@dataclasses.dataclass(frozen=True)
class Data:
    """One split as LightGBM reads it: features [n, len(names)] (float64) and labels [n]."""

    x: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]


def lightgbm_params(
    objective: str, num_classes: int, gbt_config, seed: int, metric: str | None = None
) -> dict[str, Any]:
    """LightGBM's parameters: the task's objective, the configured trees, and what makes two
    trainings on the same data give the same model bit for bit."""
    params: dict[str, Any] = {
        "objective": objective,
        "learning_rate": gbt_config.learning_rate,
        "num_leaves": gbt_config.num_leaves,
        "min_data_in_leaf": gbt_config.min_data_in_leaf,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": gbt_config.num_threads,
        "verbosity": -1,
        # Categories as they are: a category seen in a handful of rows still gets its split.
        "max_cat_to_onehot": 4,
    }
    if objective == "multiclass":
        params["num_class"] = num_classes
    if metric:
        params["metric"] = metric
    return params


def train(
    train_data: Data,
    eval_data: Data,
    categorical: Sequence[str],
    params: Mapping[str, Any],
    num_trees: int,
    early_stopping_rounds: int,
):
    """A LightGBM Booster trained on `train_data`, stopped early on `eval_data`'s first metric,
    keeping the best iteration's trees only."""
    import lightgbm as lgb

    names = list(train_data.names)
    train_set = lgb.Dataset(
        train_data.x, label=train_data.y, feature_name=names, categorical_feature=list(categorical), free_raw_data=False
    )
    eval_set = lgb.Dataset(eval_data.x, label=eval_data.y, reference=train_set)
    booster = lgb.train(
        dict(params),
        train_set,
        num_boost_round=num_trees,
        valid_sets=[eval_set],
        valid_names=["eval"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    # The best iteration's model only: the text and the dump then describe the same trees.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
