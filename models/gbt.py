"""Gradient-boosted trees (trainer.model: gbt): trained with LightGBM, served as plain TensorFlow ops.

LightGBM trains on the transformed features as NumPy arrays (`train`). Its public
`Booster.dump_model()` JSON is then flattened into arrays, one entry per node of every tree
(`flatten`), and `TreeEnsemble` evaluates them with a fixed number of gather steps, one per
level of the deepest tree (`raw_scores`). Only stock TensorFlow ops take part (GatherV2,
LessEqual, SelectV2, IsNan, ...), so TF Serving runs the exported model without custom ops,
unlike TensorFlow Decision Forests' inference ops (docs/training.md).

The routing is LightGBM's own (include/LightGBM/tree.h NumericalDecision and
CategoricalDecision), compared in float64 as LightGBM predicts, so each row reaches the same
leaf in every tree; only the order of summing the leaf values can differ. Where a missing value
goes at a split (its missing type and default side) is settled once per batch, in the input
column the split reads (`_table`), so a step decides every split with one comparison.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

# LightGBM's kZeroThreshold: |x| at most this is zero for missing_type Zero.
_ZERO_THRESHOLD = 1e-35
# A categorical input with more ids than this is given to LightGBM as a number (ordered ids):
# LightGBM's own advice for high-cardinality categories.
MAX_CATEGORIES = 1000

# How a split sees its input feature: the walk's table has one column per (variant, feature) in
# use (`_table`). NumericalDecision makes NaN zero unless the missing type is NaN, and sends a
# missing value (NaN, or zero for missing type Zero) to the default side; a column holds a
# missing value as -inf where that side is left and as NaN where it is right, so that
# `value <= threshold` alone decides (NaN compares false).
_NONE, _NAN_LEFT, _NAN_RIGHT, _ZERO_LEFT, _ZERO_RIGHT, _CATEGORY = range(6)
# By LightGBM's missing type and default side.
_NUMERIC_VARIANTS = {
    ("None", False): _NONE,
    ("None", True): _NONE,
    ("NaN", True): _NAN_LEFT,
    ("NaN", False): _NAN_RIGHT,
    ("Zero", True): _ZERO_LEFT,
    ("Zero", False): _ZERO_RIGHT,
}
# What a leaf reads: a column without NaN, so that its threshold +inf sends every row left.
_LEAF_READS = (_NONE, 0)


@dataclasses.dataclass(frozen=True)
class Forest:
    """All trees' nodes as flat arrays; node i of the forest is one split or one leaf.

    A row at node i goes left if its table's column `column[i]` (`_table`) holds at most
    `threshold[i]`. A split's two children are adjacent, right first: the row moves to
    `right[i]`, plus one if it goes left. A leaf has threshold +inf and right = i - 1, so a row
    that reached a leaf stays there for the remaining steps.

    A categorical split's threshold is the largest float64 below its set's size, and its column
    holds NaN where CategoricalDecision goes right whatever the set (NaN, ids at most -1), so
    the comparison keeps the ids within the set's range; the id then also has to be in
    `categories[cat_start:cat_start + size]` (True: the category goes left). Every other node
    has cat_start 0, where `categories` holds True.
    """

    column: np.ndarray  # int32: what the node compares, an index in `columns`
    threshold: np.ndarray  # float64: at most this goes left
    right: np.ndarray  # int32: the right child; the left child is right + 1
    cat_start: np.ndarray  # int32
    leaf_value: np.ndarray  # float64 (0 for splits)
    roots: np.ndarray  # int32: each tree's root node, in LightGBM's tree order
    categories: np.ndarray  # bool, then category_limit False: an id out of a set's range stays in the array
    columns: tuple[tuple[int, int], ...]  # the table's columns: (variant, input feature), sorted
    category_limit: int  # the largest set's size: larger ids are in no set (0: no categorical split)
    depth: int  # splits on the longest path: the number of steps
    num_outputs: int  # trees per boosting iteration: classes for multiclass, else 1
    objective: str  # LightGBM's objective as dumped, e.g. "binary sigmoid:1"
    feature_names: tuple[str, ...]
    tree_depths: tuple[int, ...] = ()  # each tree's `depth`, in LightGBM's order (empty: all `depth`)


# The per-node arrays of a Forest and their types.
_NODE_TYPES = {
    "column": np.int32,
    "threshold": np.float64,
    "right": np.int32,
    "cat_start": np.int32,
    "leaf_value": np.float64,
}


def flatten(dump: Mapping[str, Any]) -> Forest:
    """The forest of a `Booster.dump_model()` dict."""
    nodes: dict[str, list] = {name: [] for name in _NODE_TYPES}
    reads: list[tuple[int, int]] = []  # each node's (variant, feature); `column` is its index in `columns`
    categories: list[bool] = [True]
    limit = 0

    def new() -> int:
        for values in nodes.values():
            values.append(0)
        reads.append(_LEAF_READS)
        return len(reads) - 1

    def add(root: Mapping[str, Any]) -> int:
        """Adds a tree, breadth first, each split's children side by side; returns its depth."""
        nonlocal limit
        depth = 0
        queue = [(root, new(), 0)]
        for node, index, level in queue:
            if "split_feature" not in node:  # a leaf
                nodes["threshold"][index] = np.inf
                nodes["right"][index] = index - 1
                nodes["leaf_value"][index] = float(node["leaf_value"])
                depth = max(depth, level)
                continue
            feature = int(node["split_feature"])
            if node["decision_type"] == "==":  # threshold: the categories that go left, "1||4||7"
                ids = {int(c) for c in str(node["threshold"]).split("||")}
                size = max(ids) + 1
                reads[index] = (_CATEGORY, feature)
                nodes["threshold"][index] = np.nextafter(float(size), -np.inf)  # x < size
                nodes["cat_start"][index] = len(categories)
                categories.extend(i in ids for i in range(size))
                limit = max(limit, size)
            elif node["decision_type"] == "<=":
                reads[index] = (_NUMERIC_VARIANTS[node["missing_type"], bool(node["default_left"])], feature)
                nodes["threshold"][index] = float(node["threshold"])
            else:
                raise ValueError(f"LightGBM split decision {node['decision_type']!r} is not supported")
            right, left = new(), new()
            nodes["right"][index] = right
            queue += [(node["right_child"], right, level + 1), (node["left_child"], left, level + 1)]
        return depth

    roots, tree_depths = [], []
    for tree in dump["tree_info"]:
        roots.append(len(reads))
        tree_depths.append(add(tree["tree_structure"]))
    columns = tuple(sorted(set(reads)))
    index = {read: i for i, read in enumerate(columns)}
    nodes["column"] = [index[read] for read in reads]
    return Forest(
        **{name: np.asarray(values, _NODE_TYPES[name]) for name, values in nodes.items()},
        roots=np.asarray(roots, np.int32),
        categories=np.asarray(categories + [False] * limit, bool),
        columns=columns,
        category_limit=limit,
        depth=max(tree_depths, default=0),
        num_outputs=int(dump["num_tree_per_iteration"]),
        objective=str(dump["objective"]),
        feature_names=tuple(dump["feature_names"]),
        tree_depths=tuple(tree_depths),
    )


def raw_scores(
    forest: Mapping[str, Any],
    x,
    columns: Sequence[tuple[int, int]],
    category_limit: int,
    depth: int,
    num_outputs: int,
    tree_depths: Sequence[int] = (),
):
    """The ensemble's raw scores [n, num_outputs] (float64) of inputs `x` [n, features] (float64).

    `forest` holds the Forest's arrays as tensors (or arrays) by field name; the other arguments
    are the Forest's fields of those names. Every row walks every tree at once, one level per
    step. With `tree_depths` (each tree's depth) a tree leaves the walk after its own depth, when
    every row has reached one of its leaves: the trees walk deepest first, so the ones still
    walking are the first columns. `category_limit` 0: the forest has no categorical split, and
    its part of the step is left out. Neither changes a leaf reached nor the order of the sum.
    """
    values = leaf_values(forest, x, columns, category_limit, depth, tree_depths)
    # LightGBM's trees come iteration by iteration, one per output within each iteration.
    return tf.reduce_sum(tf.reshape(values, tf.stack([tf.shape(x)[0], -1, num_outputs])), axis=1)


def leaf_values(
    forest: Mapping[str, Any],
    x,
    columns: Sequence[tuple[int, int]],
    category_limit: int,
    depth: int,
    tree_depths: Sequence[int] = (),
):
    """The value of the leaf each row reaches in each tree [n, trees] (float64), in LightGBM's
    tree order; the arguments are raw_scores'."""
    rows = tf.shape(x)[0]
    table, ids = _table(x, columns, category_limit)
    flat_table = tf.reshape(table, [-1])
    flat_ids = tf.reshape(ids, [-1]) if ids is not None else None
    row_start = tf.reshape(tf.range(rows) * len(columns), [-1, 1])
    depths = list(tree_depths) or [depth] * int(np.shape(forest["roots"])[0])
    order = sorted(range(len(depths)), key=lambda tree: -depths[tree])  # stable: deepest first
    # Every row starts at the roots: [trees], which the first step broadcasts to [n, trees].
    node = tf.gather(forest["roots"], order)
    done = []  # column blocks of trees whose rows all sit on leaves, last columns first
    for level in range(depth):
        walking = sum(1 for d in depths if d > level)
        if walking < node.shape[-1]:
            done.append(node[..., walking:])
            node = node[..., :walking]
        node = _step(forest, flat_table, flat_ids, row_start, node)
    blocks = [node, *reversed(done)]
    node = tf.concat([b if b.shape.rank == 2 else tf.tile(b[tf.newaxis], tf.stack([rows, 1])) for b in blocks], 1)
    return tf.gather(tf.gather(forest["leaf_value"], node), np.argsort(order), axis=1)


def _table(x, columns: Sequence[tuple[int, int]], category_limit: int):
    """The walk's inputs: the table [n, len(columns)] (float64) each column of which is an input
    feature as a variant sees it, and with categorical splits the ids [n, len(columns)] (int32)
    that index their sets (0 in the other columns, and for ids out of every set's range)."""
    nan = tf.math.is_nan(x)
    missing_zero = nan | (tf.abs(x) <= _ZERO_THRESHOLD)
    low = tf.constant(-np.inf, tf.float64)
    nan_value = tf.constant(np.nan, tf.float64)
    variants = {
        _NONE: lambda: tf.where(nan, tf.constant(0.0, tf.float64), x),
        _NAN_LEFT: lambda: tf.where(nan, low, x),
        _NAN_RIGHT: lambda: x,
        _ZERO_LEFT: lambda: tf.where(missing_zero, low, x),
        _ZERO_RIGHT: lambda: tf.where(missing_zero, nan_value, x),
        # CategoricalDecision: NaN and negative ids (after C's int cast, which truncates) go right.
        _CATEGORY: lambda: tf.where(x > -1.0, x, nan_value),
    }
    blocks = []
    for variant in sorted({variant for variant, _ in columns}):
        features = [feature for v, feature in columns if v == variant]
        blocks.append(tf.gather(variants[variant](), features, axis=1))
    table = tf.concat(blocks, axis=1)
    if not category_limit:
        return table, None
    # The ids that a set can hold, as C's int cast gives them; the others are beyond the set's
    # range (the comparison sends them right), and read a set's first entry instead.
    features = [feature for variant, feature in columns if variant == _CATEGORY]
    in_range = (x > -1.0) & (x < float(category_limit))
    ids = tf.cast(tf.where(in_range, x, tf.zeros_like(x)), tf.int32)
    others = tf.zeros(tf.stack([tf.shape(x)[0], len(columns) - len(features)]), tf.int32)
    return table, tf.concat([others, tf.gather(ids, features, axis=1)], axis=1)


def _step(forest: Mapping[str, Any], flat_table, flat_ids, row_start, node):
    """Every row one level down in every tree of `node` [n, trees] (or [trees]: every row at the
    same node); a row on a leaf stays there."""
    at = row_start + tf.gather(forest["column"], node)
    left = tf.gather(flat_table, at) <= tf.gather(forest["threshold"], node)
    if flat_ids is not None:
        # CategoricalDecision: an id within the set's range goes left if the set holds it.
        left &= tf.gather(forest["categories"], tf.gather(forest["cat_start"], node) + tf.gather(flat_ids, at))
    return tf.gather(forest["right"], node) + tf.cast(left, tf.int32)


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
        self.columns = tuple((int(variant), int(feature)) for variant, feature in forest.columns)
        self.category_limit = int(forest.category_limit)
        self.has_categorical = forest.category_limit > 0
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

    # Plain TensorFlow ops over loops fixed by the forest's shape: AutoGraph has nothing to
    # convert, and converting the walk's functions was most of the time a trace took.
    @tf.autograph.experimental.do_not_convert
    def __call__(self, transformed_features: Mapping[str, Any]):
        raw = raw_scores(
            self.arrays,
            self.inputs(transformed_features),
            self.columns,
            self.category_limit,
            self.depth,
            self.num_outputs,
            self.tree_depths,
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
