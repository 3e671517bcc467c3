"""The gradient-boosted trees' TensorFlow evaluator against LightGBM's own predict, on small seeded data.

The evaluator routes each row as LightGBM does, comparing the same float64 values with the
same float64 thresholds, so every row reaches the same leaves; only the order in which the
leaf values are summed differs (TensorFlow's reduce_sum against LightGBM's running sum), a
rounding error of a few ulps per tree. Hence the tolerance: 1e-12 absolute on outputs of order
one (a few hundred trees times float64's 2.2e-16), far below any routing difference (a leaf
value, about the learning rate times a gradient). The leaves themselves are compared exactly,
with LightGBM's pred_leaf; and hand-made trees in LightGBM's text model route chosen values
(NaN, zeros, ids out of a set) through each kind of split, whose sums are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models import gbt
from models.spec import GbtConfig

NAMES = ("a_xf", "b_xf", "c_xf", "colour_xf")
CATEGORIES = 8
TOLERANCE = 1e-12


def _data(seed: int, rows: int):
    """Three numbers (a with NaNs) and a category of 8 ids, with effects of each."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    x[:, 3] = rng.integers(0, CATEGORIES, rows)
    x[rng.random(rows) < 0.1, 0] = np.nan
    colour_effect = np.array([1.5, -1.0, 0.2, 2.0, -2.0, 0.0, 1.0, -0.5])[x[:, 3].astype(int)]
    signal = np.nan_to_num(x[:, 0], nan=1.0) + 0.5 * x[:, 1] ** 2 - x[:, 2] + colour_effect
    return x, signal + rng.normal(scale=0.3, size=rows)


def _queries(x):
    """The rows to predict: the data, and the edge cases of LightGBM's routing."""
    edge = np.array(
        [
            [np.nan, np.nan, np.nan, np.nan],  # NaN where training saw none: zero (b, c); category: right
            [0.0, 0.0, 0.0, -1.0],  # a negative category goes right
            [1.0, 1.0, 1.0, 2.5],  # a fractional id is truncated, as C's int cast
            [1.0, -1.0, 3.0, 99.0],  # a category beyond every set
            [1e30, -1e30, 0.0, -0.5],  # far outside the thresholds; -0.5 truncates to category 0
            [0.0, 1e-36, -0.0, 0.0],  # zero, and below LightGBM's zero threshold
        ]
    )
    return np.concatenate([x, edge])


def _train(objective: str, label, num_classes: int = 1, seed: int = 7, **extra):
    x, _ = _data(0, 3000)
    eval_x, _ = _data(1, 500)
    params = gbt.lightgbm_params(objective, num_classes, GbtConfig(num_trees=80, num_leaves=15), seed)
    params.update(extra)
    return gbt.train(
        gbt.Data(x, label(0, 3000), NAMES),
        gbt.Data(eval_x, label(1, 500), NAMES),
        ["colour_xf"],
        params,
        num_trees=80,
        early_stopping_rounds=80,
    )


def _binary(seed, rows):
    _, y = _data(seed, rows)
    return (y > np.median(y)).astype(float)


def _multiclass(seed, rows):
    _, y = _data(seed, rows)
    return np.digitize(y, np.quantile(y, [1 / 3, 2 / 3])).astype(float)


def _regression(seed, rows):
    return _data(seed, rows)[1]


CASES = {
    "binary": ("binary", _binary, 1, {}),
    "multiclass": ("multiclass", _multiclass, 3, {}),
    "regression": ("regression", _regression, 1, {}),
    "huber": ("huber", _regression, 1, {}),
    # LightGBM's third missing type: zero (and NaN) is missing, and goes the default way.
    "zero_as_missing": ("regression", _regression, 1, {"zero_as_missing": True}),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request):
    objective, label, classes, extra = CASES[request.param]
    return request.param, _train(objective, label, classes, **extra)


def _splits(node):
    if "split_feature" not in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


def test_the_trees_use_categorical_splits_and_missing_values(trained):
    name, booster = trained
    splits = [s for tree in booster.dump_model()["tree_info"] for s in _splits(tree["tree_structure"])]
    assert any(s["decision_type"] == "==" for s in splits), "no categorical split: the test would not cover them"
    if name == "zero_as_missing":
        assert any(s["missing_type"] == "Zero" for s in splits), "no split with zero as missing"
    else:
        assert any(s["missing_type"] == "NaN" for s in splits), "no split with NaN handling"
        assert any(s["missing_type"] == "None" for s in splits), "no split without it"
    assert any(s["decision_type"] == "==" and "||" in str(s["threshold"]) for s in splits), "no category set"


def test_the_tensorflow_evaluator_predicts_as_lightgbm(trained):
    name, booster = trained
    queries = _queries(_data(2, 400)[0])
    ensemble = gbt.TreeEnsemble(gbt.flatten(booster.dump_model()))
    features = {n: tf.constant(queries[:, i]) for i, n in enumerate(NAMES)}
    x = ensemble.inputs(features)
    raw = gbt.raw_scores(
        ensemble.arrays, x, ensemble.columns, ensemble.category_limit, ensemble.depth, ensemble.num_outputs
    ).numpy()
    expected_raw = booster.predict(queries, raw_score=True).reshape(len(queries), -1)
    np.testing.assert_allclose(raw, expected_raw, rtol=0, atol=TOLERANCE)
    # Trees leaving the walk at their own depth, as the module walks them: the same sums, bit for bit.
    assert len(set(ensemble.tree_depths)) > 1, "trees of one depth: the test would not cover the early exits"
    walked = gbt.raw_scores(
        ensemble.arrays,
        x,
        ensemble.columns,
        ensemble.category_limit,
        ensemble.depth,
        ensemble.num_outputs,
        ensemble.tree_depths,
    ).numpy()
    np.testing.assert_array_equal(walked, raw)
    # The very leaves LightGBM reaches: the walk of a copy of the trees whose leaves hold their index.
    indexed = gbt.flatten(_leaf_indices(booster.dump_model()))
    leaves = gbt.leaf_values(
        {name: getattr(indexed, name) for name in ensemble.arrays},
        x,
        indexed.columns,
        indexed.category_limit,
        indexed.depth,
        indexed.tree_depths,
    ).numpy()
    np.testing.assert_array_equal(leaves, booster.predict(queries, pred_leaf=True))
    expected = booster.predict(queries).reshape(len(queries), -1)
    np.testing.assert_allclose(
        gbt.output_transform(ensemble.objective, tf.constant(raw)).numpy(), expected, rtol=0, atol=TOLERANCE
    )
    # The module's own answer, float32 as the DNN's, in the DNN's shapes.
    out = ensemble(features).numpy()
    assert out.dtype == np.float32 and out.shape == (len(queries), 3 if name == "multiclass" else 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def _leaf_indices(dump):
    """`dump` with each leaf's value replaced by its index in its tree, as pred_leaf answers it."""

    def relabel(node):
        if "split_feature" not in node:
            return {**node, "leaf_value": float(node.get("leaf_index", 0))}
        return {**node, "left_child": relabel(node["left_child"]), "right_child": relabel(node["right_child"])}

    return {**dump, "tree_info": [{**t, "tree_structure": relabel(t["tree_structure"])} for t in dump["tree_info"]]}


def test_the_modules_numpy_predict_answers_as_calling_it(trained):
    name, booster = trained
    queries = _queries(_data(2, 400)[0])
    ensemble = gbt.TreeEnsemble(gbt.flatten(booster.dump_model()), booster.model_to_string())
    columns = {n: queries[:, i] for i, n in enumerate(NAMES)}
    called = ensemble({n: tf.constant(v) for n, v in columns.items()}).numpy()
    predicted = ensemble.predict(columns)
    assert predicted.dtype == np.float32 and predicted.shape == called.shape
    np.testing.assert_allclose(predicted, called, rtol=1e-6, atol=1e-6)


def test_the_evaluator_walks_as_many_steps_as_the_deepest_tree(trained):
    _, booster = trained
    forest = gbt.flatten(booster.dump_model())
    assert forest.depth == max(_depth(tree["tree_structure"]) for tree in booster.dump_model()["tree_info"])
    assert forest.tree_depths == tuple(_depth(tree["tree_structure"]) for tree in booster.dump_model()["tree_info"])
    assert len(forest.roots) == booster.num_trees()


def _depth(node):
    if "split_feature" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def test_two_trainings_give_the_same_model():
    first = _train("binary", _binary)
    second = _train("binary", _binary)
    assert first.model_to_string() == second.model_to_string()
    assert first.dump_model() == second.dump_model()
    other_seed = _train("binary", _binary, seed=8)
    # The seed is used (bagging is off, so only ties and sampling could differ): the same trees
    # are allowed, but the parameters recorded in the model differ.
    assert "[seed: 8]" in other_seed.model_to_string() and "[seed: 7]" in first.model_to_string()


def test_a_single_leaf_tree_is_its_value():
    dump = {
        "num_tree_per_iteration": 1,
        "objective": "regression",
        "feature_names": ["x"],
        "tree_info": [{"tree_structure": {"leaf_value": 0.25}}, {"tree_structure": {"leaf_value": -1.0}}],
    }
    ensemble = gbt.TreeEnsemble(gbt.flatten(dump))
    out = ensemble({"x": tf.constant([1.0, np.nan])}).numpy()
    np.testing.assert_array_equal(out, [[-0.75], [-0.75]])


def test_an_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective 'lambdarank' is not supported"):
        gbt.output_transform("lambdarank", tf.constant([[0.0]], tf.float64))


def test_a_forest_without_categorical_splits_walks_without_their_step():
    x, y = _data(3, 2000)
    eval_x, eval_y = _data(4, 400)
    booster = gbt.train(
        gbt.Data(x, y, NAMES),
        gbt.Data(eval_x, eval_y, NAMES),
        [],  # the category column as a number: no categorical split
        gbt.lightgbm_params("regression", 1, GbtConfig(num_trees=30, num_leaves=15), 0),
        num_trees=30,
        early_stopping_rounds=30,
    )
    ensemble = gbt.TreeEnsemble(gbt.flatten(booster.dump_model()), booster.model_to_string())
    assert not ensemble.has_categorical
    queries = _queries(eval_x)
    out = ensemble({n: tf.constant(queries[:, i]) for i, n in enumerate(NAMES)}).numpy()
    np.testing.assert_allclose(out.reshape(-1), booster.predict(queries), rtol=1e-6, atol=1e-6)


# Hand-made trees in LightGBM's text model, to route chosen values through each kind of split.
# LightGBM's decision_type: bit 0 categorical, bit 1 default left, bits 2-3 the missing type.
CATEGORICAL, DEFAULT_LEFT, MISSING_NONE, MISSING_ZERO, MISSING_NAN = 1, 2, 0, 4, 8
LEFT, RIGHT = 1.0, 2.0  # the leaf values of a one-split tree


def _model_text(trees, num_features: int) -> str:
    """LightGBM's text model of `trees`, each (splits, leaf values): a split is (feature,
    decision_type, threshold, left, right), a child below zero being leaf ~child, and a
    categorical split's threshold the set of ids that go left (below 32)."""
    out = [
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0",
        f"max_feature_idx={num_features - 1}\nobjective=regression",
        "feature_names=" + " ".join(f"f{i}" for i in range(num_features)),
        "feature_infos=" + " ".join("none" for _ in range(num_features)) + "\n",
    ]
    for index, (splits, leaves) in enumerate(trees):
        features, decisions, thresholds, lefts, rights = zip(*splits) if splits else ([],) * 5
        sets = [sorted(t) for t in thresholds if isinstance(t, set)]
        # A categorical split's threshold is the index of its set (cat_boundaries, cat_threshold).
        numbers = iter(range(len(sets)))
        thresholds = [str(next(numbers)) if isinstance(t, set) else repr(float(t)) for t in thresholds]
        out += [
            f"Tree={index}\nnum_leaves={len(leaves)}\nnum_cat={len(sets)}",
            "split_feature=" + _joined(features) + "\nsplit_gain=" + _joined(1 for _ in splits),
            "threshold=" + _joined(thresholds) + "\ndecision_type=" + _joined(decisions),
            "left_child=" + _joined(lefts) + "\nright_child=" + _joined(rights),
            "leaf_value=" + _joined(repr(float(v)) for v in leaves),
            "leaf_weight=" + _joined(1 for _ in leaves) + "\nleaf_count=" + _joined(1 for _ in leaves),
            "internal_value=" + _joined(0 for _ in splits) + "\ninternal_weight=" + _joined(1 for _ in splits),
            "internal_count=" + _joined(1 for _ in splits),
        ]
        if sets:
            out.append("cat_boundaries=" + _joined(range(len(sets) + 1)))
            out.append("cat_threshold=" + _joined(sum(1 << i for i in ids) for ids in sets))
        out.append("is_linear=0\nshrinkage=1\n")
    return "\n".join(out) + "\nend of trees\n"


def _joined(values) -> str:
    return " ".join(str(v) for v in values)


def _walks(text: str, x):
    """LightGBM's raw scores of `x` [n, features] for model `text`, and the TensorFlow walk's,
    with and without the trees leaving at their own depth."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=text)
    forest = gbt.flatten(booster.dump_model())
    ensemble = gbt.TreeEnsemble(forest)
    inputs = tf.constant(x)
    walked = [
        gbt.raw_scores(
            ensemble.arrays, inputs, forest.columns, forest.category_limit, forest.depth, 1, tree_depths
        ).numpy()[:, 0]
        for tree_depths in ((), forest.tree_depths)
    ]
    return booster.predict(x, raw_score=True), walked


NAN, INF = np.nan, np.inf
# Where one split sends chosen values: (decision_type, threshold, values, sides), after
# include/LightGBM/tree.h NumericalDecision and CategoricalDecision.
ROUTES = {
    # Missing type None: NaN is zero, then compared as any number; the default side is unused.
    "nan_is_zero_with_missing_none": (
        MISSING_NONE | DEFAULT_LEFT,
        -0.5,
        [NAN, 0.0, -0.5, -1.0, INF, -INF],
        [RIGHT, RIGHT, LEFT, LEFT, RIGHT, LEFT],
    ),
    "nan_is_zero_with_missing_none_left": (MISSING_NONE, 0.5, [NAN, 0.0, 0.5, 0.6], [LEFT, LEFT, LEFT, RIGHT]),
    # Missing type Zero: NaN and zero (|x| at most 1e-35) go the default side, other values compare.
    "zero_and_nan_with_missing_zero_default_left": (
        MISSING_ZERO | DEFAULT_LEFT,
        -1.0,
        [NAN, 0.0, -0.0, 1e-35, -1e-35, 2e-35, -2e-35, -1.0, -2.0, -INF, INF],
        [LEFT, LEFT, LEFT, LEFT, LEFT, RIGHT, RIGHT, LEFT, LEFT, LEFT, RIGHT],
    ),
    "zero_and_nan_with_missing_zero_default_right": (
        MISSING_ZERO,
        1.0,
        [NAN, 0.0, -0.0, 1e-35, -1e-35, 2e-35, -2e-35, 1.0, 2.0, -INF, INF],
        [RIGHT, RIGHT, RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT, RIGHT, LEFT, RIGHT],
    ),
    # Missing type NaN: NaN goes the default side, zero compares as a number.
    "nan_with_missing_nan_default_left": (
        MISSING_NAN | DEFAULT_LEFT,
        -1.0,
        [NAN, 0.0, -1.0, -INF, INF],
        [LEFT, RIGHT, LEFT, LEFT, RIGHT],
    ),
    "nan_with_missing_nan_default_right": (
        MISSING_NAN,
        1.0,
        [NAN, 0.0, 1.0, 2.0, -INF, INF],
        [RIGHT, LEFT, LEFT, RIGHT, LEFT, RIGHT],
    ),
    # Categorical: the ids in the set go left, truncated as C's int cast; NaN, negative ids and
    # ids beyond the set go right, whatever the missing type.
    "categories": (
        CATEGORICAL,
        {0, 1, 3},
        [NAN, -1.0, -1.5, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 3.99, 4.0, 31.0, 99.0, 1e10, -1e10, INF, -INF],
        [RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT, LEFT, LEFT, RIGHT, RIGHT, LEFT, LEFT]
        + [RIGHT, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT],
    ),
    "categories_with_missing_nan": (
        CATEGORICAL | MISSING_NAN | DEFAULT_LEFT,
        {0, 2},
        [NAN, -1.0, -0.5, 0.0, 1.0, 2.0, 2.9, 3.0, 64.0],
        [RIGHT, RIGHT, LEFT, LEFT, RIGHT, LEFT, LEFT, RIGHT, RIGHT],
    ),
}


@pytest.mark.parametrize("case", sorted(ROUTES))
def test_each_kind_of_split_routes_as_lightgbm(case):
    decision_type, threshold, values, sides = ROUTES[case]
    # The split reads feature 1 of 2, beside a tree that is a single leaf (0.25) and a tree
    # whose category set {0, 7} comes next in the forest's arrays (reading past the first set
    # would read True), and which feature 0's 7 always takes left (0.5).
    trees = [
        ([(1, decision_type, threshold, -1, -2)], [LEFT, RIGHT]),
        ([], [0.25]),
        ([(0, CATEGORICAL, {0, 7}, -1, -2)], [0.5, 4.0]),
    ]
    x = np.stack([np.full(len(values), 7.0), values], axis=1)
    expected = np.asarray(sides) + 0.75
    lightgbm, walked = _walks(_model_text(trees, 2), x)
    np.testing.assert_array_equal(lightgbm, expected)
    for raw in walked:
        np.testing.assert_array_equal(raw, expected)


def test_a_leaf_stays_put_while_deeper_trees_walk():
    # A chain x <= 0, x <= 1, x <= 2 (each left child a leaf) beside two single-leaf trees: leaves
    # at every depth, and powers of two, so each sum tells the leaves apart.
    chain = (
        [(0, MISSING_NONE, 0.0, -1, 1), (0, MISSING_NONE, 1.0, -2, 2), (0, MISSING_NONE, 2.0, -3, -4)],
        [1.0, 2.0, 4.0, 8.0],
    )
    trees = [([], [16.0]), chain, ([], [32.0]), ([(0, MISSING_NAN, 0.5, -1, -2)], [64.0, 128.0])]
    x = np.array([[-1.0], [0.0], [0.5], [1.0], [1.5], [2.0], [3.0], [NAN], [INF], [-INF]])
    lightgbm, walked = _walks(_model_text(trees, 1), x)
    expected = 48.0 + np.array([1 + 64, 1 + 64, 2 + 64, 2 + 128, 4 + 128, 4 + 128, 8 + 128, 1 + 128, 8 + 128, 1 + 64])
    np.testing.assert_array_equal(lightgbm, expected)
    for raw in walked:
        np.testing.assert_array_equal(raw, expected)
