"""preprocessing_fn, analyzed with tf.Transform on Beam over the tiny in-repo sample."""

import tempfile

import numpy as np
import pytest
import tensorflow as tf

from models import preprocessing
from models.model_inputs import transformed_name
from pipeline.config import FeatureType


def test_every_feature_and_the_label_are_produced(transformed, taxi_config):
    _, features = transformed
    expected = {transformed_name(n) for n in taxi_config.features} | {taxi_config.label.name}
    assert set(features) == expected


def test_numeric_features_are_z_scored(transformed, tiny_rows):
    _, features = transformed
    fare = features[transformed_name("fare")].numpy()
    assert fare.shape == (len(tiny_rows),)
    assert abs(fare.mean()) < 1e-4
    assert abs(fare.std() - 1.0) < 1e-3


def test_z_scores_are_fitted_in_float64(transformed, tiny_rows, taxi_config):
    """As numpy's float64 mean and variance give them, rounded to float32 (preprocessing._fitted),
    to float32's last bit (float32 sums were off in their last bits, and Beam's order of adding
    changed them from run to run)."""
    _, features = transformed
    numeric = [n for n, spec in taxi_config.features.items() if spec.type is FeatureType.NUMERIC]
    assert numeric
    for name in numeric:
        default = taxi_config.features[name].default or 0.0
        x = np.array([float(row[name]) if row[name] else default for row in tiny_rows], np.float32).astype(np.float64)
        got = features[transformed_name(name)].numpy()
        assert got.dtype == np.float32
        mean, variance = (np.float64(np.float32(v)) for v in (x.mean(), x.var()))
        np.testing.assert_array_max_ulp(got, ((x - mean) / np.sqrt(variance)).astype(np.float32), maxulp=1)


def _z_scored(values: np.ndarray, batch_size: int) -> np.ndarray:
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec({"x": tf.io.FixedLenFeature([], tf.float32)})
    )
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), desired_batch_size=batch_size, force_tf_compat_v1=False):
        (transformed, _), _ = ([{"x": float(v)} for v in values], metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: {"z": preprocessing.z_score(preprocessing.log1p(inputs["x"]))}
        )
    return np.array([row["z"] for row in transformed], np.float32)


def test_z_scores_are_the_same_bits_whatever_order_beam_adds_the_batches_in():
    """Two runs on the same rows, added up in other orders (another row order, other batches):
    the float64 sums and log1p differ in their last bits, the scaled float32 values do not
    (diamonds' log-transformed `y` differed in 428 of 43,277 values between two runs before)."""
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.5, 0.1, 3000).astype(np.float32)
    order = rng.permutation(len(values))
    first = _z_scored(values, batch_size=7)
    second = np.empty_like(first)
    second[order] = _z_scored(values[order], batch_size=64)
    assert first.tobytes() == second.tobytes()


def test_bucketized_features_stay_in_range(transformed, taxi_config):
    _, features = transformed
    for name, spec in taxi_config.features.items():
        if spec.type is FeatureType.BUCKETIZED:
            values = features[transformed_name(name)].numpy()
            assert values.min() >= 0 and values.max() < spec.num_buckets, name


def test_categorical_vocabulary_maps_known_and_unknown_values(transformed, tiny_rows):
    output, features = transformed
    ids = features[transformed_name("payment_type")].numpy()
    vocab = output.vocabulary_by_name("payment_type")
    assert {vocab[i].decode() for i in ids} == {row["payment_type"] for row in tiny_rows}
    unseen = output.transform_raw_features(
        {"payment_type": tf.sparse.from_dense(tf.constant([["Bitcoin"]]))}, drop_unused_features=True
    )
    assert unseen[transformed_name("payment_type")].numpy()[0] >= len(vocab)


def test_approximate_vocabularies_equal_the_exact_ones(transform_dir, exact_vocabulary_transform_dir, taxi_config):
    """Below top_k distinct values the one-pass analyzer must give tft.vocabulary's exact result,
    in the same (frequency) order, so the ids the model sees do not depend on the choice."""
    import tensorflow_transform as tft

    approximate, exact = (tft.TFTransformOutput(str(d)) for d in (transform_dir, exact_vocabulary_transform_dir))
    categorical = [n for n, spec in taxi_config.features.items() if spec.type is FeatureType.CATEGORICAL]
    assert categorical
    for name in categorical:
        assert approximate.vocabulary_by_name(name) == exact.vocabulary_by_name(name), name
        assert len(exact.vocabulary_by_name(name)) > 1, name


def test_label_is_big_tipper(transformed, tiny_rows):
    _, features = transformed
    expected = [int(float(r["tips"] or 0) > 0.2 * float(r["fare"] or 0)) for r in tiny_rows]
    assert features["big_tipper"].numpy().tolist() == expected
    assert 0 < sum(expected) < len(expected)


def test_missing_values_are_filled_with_the_default(transformed, tiny_rows):
    output, features = transformed
    missing = [i for i, r in enumerate(tiny_rows) if r["pickup_latitude"] == ""]
    present = [i for i, r in enumerate(tiny_rows) if r["pickup_latitude"] != ""]
    assert missing and present
    buckets = features[transformed_name("pickup_latitude")].numpy()
    # The default 0.0 lies below every Chicago latitude: the lowest bucket.
    assert set(buckets[missing]) == {0}


@pytest.mark.parametrize("value", [tf.constant([[1.5], [2.5]]), tf.constant([1.5, 2.5])])
def test_dense_accepts_dense_columns(value):
    assert preprocessing.dense(value, 0.0).numpy().tolist() == [1.5, 2.5]


def test_dense_fills_sparse_gaps():
    sparse = tf.SparseTensor(indices=[[0, 0], [2, 0]], values=[3.0, 4.0], dense_shape=[3, 1])
    assert preprocessing.dense(sparse, -1.0).numpy().tolist() == [3.0, -1.0, 4.0]


def test_label_from_positive_values():
    from models.model_inputs import from_custom_config

    spec = from_custom_config({"label": {"column": "y", "name": "label", "positive_values": ["yes"]}, "features": {}})
    label = preprocessing._label({"y": tf.constant([["yes"], ["no"], ["yes"]])}, spec)
    assert label.numpy().tolist() == [1, 0, 1]


def test_label_from_integer_class():
    from models.model_inputs import from_custom_config

    spec = from_custom_config({"label": {"column": "y"}, "features": {}})
    label = preprocessing._label({"y": tf.constant([[0], [1], [1]], tf.int64)}, spec)
    assert np.array_equal(label.numpy(), [0, 1, 1])


@pytest.mark.parametrize(
    "options, dtype, expected",
    [
        ({"type": "numeric"}, tf.float32, 0.0),
        ({"type": "numeric", "default": 2.5}, tf.float32, 2.5),
        ({"type": "numeric", "default": 2.5}, tf.int64, 2),
        ({"type": "categorical"}, tf.int64, -1),
        ({"type": "categorical"}, tf.string, ""),
        ({"type": "categorical", "default": "unknown"}, tf.string, "unknown"),
    ],
)
def test_fill_value_matches_the_column_type(options, dtype, expected):
    from models.model_inputs import from_custom_config

    spec = from_custom_config({"label": {"column": "y"}, "features": {"x": {"name": "x", **options}}})
    value = preprocessing._fill_value(spec.features["x"], dtype)
    assert value == expected and type(value) is type(expected)


def test_log_transform_z_scores_the_log_of_a_numeric_feature(
    tmp_path, serialized_examples, raw_feature_spec, tiny_rows
):
    import tensorflow_transform as tft

    from tests.conftest import _analyze_tiny

    output = tft.TFTransformOutput(str(_analyze_tiny(tmp_path, "features.fare.log_transform=true")))
    raw = tf.io.parse_example(tf.constant(serialized_examples), raw_feature_spec)
    got = output.transform_raw_features(raw)[transformed_name("fare")].numpy()
    fare = np.array([float(row["fare"]) if row["fare"] else 0.0 for row in tiny_rows], np.float32)
    x = np.log1p(fare).astype(np.float64)
    np.testing.assert_allclose(got, (x - x.mean()) / x.std(), rtol=1e-5, atol=1e-6)
    assert np.ptp(fare) > 10 * np.ptp(np.log1p(fare))  # the log did change the scale
