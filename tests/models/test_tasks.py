"""Multiclass and regression (label.task): the label Transform derives, the heads, and the
signatures TF Serving runs, on the tiny sample under the bundled task configs."""

import math

import numpy as np
import pytest
import tensorflow as tf

from contracts.saved_model import CLASSES_FILE
from models import model as model_lib
from models import model_inputs
from pipeline.config import Task
from tests.conftest import to_example


def _transformed(task_transform_dirs, name, serialized_examples, raw_feature_spec):
    import tensorflow_transform as tft

    config, directory = task_transform_dirs[name]
    output = tft.TFTransformOutput(str(directory))
    raw = tf.io.parse_example(tf.constant(serialized_examples), raw_feature_spec)
    return config, output, output.transform_features_layer()(raw)


def test_multiclass_labels_are_the_index_among_the_listed_classes(
    task_transform_dirs, serialized_examples, raw_feature_spec, tiny_rows
):
    config, _, features = _transformed(task_transform_dirs, "multiclass", serialized_examples, raw_feature_spec)
    classes = list(config.label.classes)
    expected = [classes.index(r["payment_type"]) if r["payment_type"] in classes else -1 for r in tiny_rows]
    assert features[config.label.name].numpy().tolist() == expected
    assert {"payment_type_xf"} & set(features) == set()  # the label is no feature
    assert "tips_xf" in features


def test_multiclass_without_classes_learns_them_from_the_train_split(
    task_transform_dirs, serialized_examples, raw_feature_spec, tiny_rows
):
    config, output, features = _transformed(
        task_transform_dirs, "multiclass_vocabulary", serialized_examples, raw_feature_spec
    )
    assert config.label.classes == ()
    vocabulary = [v.decode() for v in output.vocabulary_by_name(model_inputs.LABEL_VOCABULARY)]
    assert vocabulary == ["Cash", "Credit Card", "Unknown"]  # most frequent first
    labels = features[config.label.name].numpy().tolist()
    assert labels == [vocabulary.index(r["payment_type"]) for r in tiny_rows]


def test_a_class_outside_the_vocabulary_is_minus_one(task_transform_dirs):
    import tensorflow_transform as tft

    _, directory = task_transform_dirs["multiclass_vocabulary"]
    output = tft.TFTransformOutput(str(directory))
    unseen = output.transform_features_layer()(
        {"payment_type": tf.sparse.from_dense(tf.constant([["Bitcoin"], ["Cash"]]))}
    )
    assert unseen["payment_class"].numpy().tolist() == [-1, 0]


def test_regression_label_is_the_z_scored_log_target(
    task_transform_dirs, serialized_examples, raw_feature_spec, tiny_rows
):
    config, output, features = _transformed(task_transform_dirs, "regression", serialized_examples, raw_feature_spec)
    assert config.label.log_transform
    target = np.log1p([float(r["fare"]) for r in tiny_rows])
    z = features[config.label.name].numpy()
    np.testing.assert_allclose(z, (target - target.mean()) / target.std(), rtol=1e-4, atol=1e-4)
    spec = model_inputs.from_custom_config(config.model_code_config())
    mean, std = model_lib.target_scale(spec, output)
    assert math.isclose(mean, target.mean(), rel_tol=1e-5) and math.isclose(std, target.std(), rel_tol=1e-4)


# ---------------------------------------------------------------------------------------- models


def _train(config, output, features, epochs=30):
    import keras

    spec = model_inputs.from_custom_config(config.model_code_config())
    features = dict(features)
    labels = features.pop(spec.label.name)
    keep = labels.numpy() >= 0 if spec.label.task is Task.MULTICLASS else np.ones(labels.shape[0], bool)
    x = {k: tf.reshape(tf.boolean_mask(v, keep), [-1, 1]) for k, v in features.items()}
    keras.utils.set_random_seed(1)
    model = model_lib._build_model(model_lib._hyperparameters(spec), spec, output)
    history = model.fit(x, tf.boolean_mask(labels, keep), epochs=epochs, batch_size=16, verbose=0)
    return spec, model, history


@pytest.fixture(scope="module", params=["multiclass", "multiclass_vocabulary", "regression"])
def exported(request, task_transform_dirs, serialized_examples, raw_feature_spec, tmp_path_factory):
    config, output, features = _transformed(task_transform_dirs, request.param, serialized_examples, raw_feature_spec)
    spec, model, history = _train(config, output, features)
    path = tmp_path_factory.mktemp(request.param) / "model"
    model_lib.export(model, spec, output, str(path))
    return request.param, spec, output, history, path


def _signature_defs(path):
    from components.serving_warmup import warmup

    return warmup.signature_defs(str(path))


def test_training_reduces_the_loss(exported):
    losses = exported[3].history["loss"]
    assert losses[-1] < losses[0]


def test_each_task_exports_its_tf_serving_signatures(exported):
    name, spec, _, _, path = exported
    signatures = _signature_defs(path)
    if spec.label.task is Task.REGRESSION:
        assert set(signatures) >= {"serving_default", "serve_raw", "regress", "transform_features"}
        assert "classify" not in signatures
        regress = signatures["regress"]
        assert regress.method_name == "tensorflow/serving/regress"
        assert set(regress.inputs) == {"inputs"} and set(regress.outputs) == {"outputs"}
        assert regress.outputs["outputs"].dtype == tf.float32.as_datatype_enum
    else:
        assert "regress" not in signatures
        assert signatures["classify"].method_name == "tensorflow/serving/classify"
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"


def test_multiclass_classify_answers_the_class_names_with_the_softmax(exported, tiny_rows):
    name, spec, output, _, path = exported
    if spec.label.task is not Task.MULTICLASS:
        pytest.skip("a classification signature")
    loaded = tf.saved_model.load(str(path))
    serialized = tf.constant([to_example(r, drop=("payment_type",)).SerializeToString() for r in tiny_rows])
    names = model_lib.class_names(spec, output)
    assert names == (
        ["Cash", "Credit Card", "No Charge", "Unknown"] if name == "multiclass" else ["Cash", "Credit Card", "Unknown"]
    )
    assert (path / "assets.extra" / CLASSES_FILE).read_text().splitlines() == names
    answer = loaded.signatures["classify"](inputs=serialized)
    assert answer["classes"].numpy().tolist() == [[n.encode() for n in names]] * len(tiny_rows)
    predicted = loaded.signatures["serving_default"](examples=serialized)
    np.testing.assert_allclose(answer["scores"].numpy(), predicted["probabilities"].numpy(), atol=1e-6)
    np.testing.assert_allclose(answer["scores"].numpy().sum(axis=1), 1.0, atol=1e-5)
    best = predicted["probabilities"].numpy().argmax(axis=1)
    assert predicted["classes"].numpy().tolist() == [names[i].encode() for i in best]
    np.testing.assert_allclose(predicted["probability"].numpy(), predicted["probabilities"].numpy().max(axis=1))
    # Trained on cash (no tip recorded) and card rides: most rides are told apart.
    truth = [r["payment_type"].encode() for r in tiny_rows]
    assert np.mean(np.array(predicted["classes"].numpy().tolist()) == np.array(truth)) > 0.8


def test_regression_predicts_in_the_labels_units(exported, tiny_rows):
    _, spec, output, _, path = exported
    if spec.label.task is not Task.REGRESSION:
        pytest.skip("a regression signature")
    loaded = tf.saved_model.load(str(path))
    serialized = tf.constant([to_example(r, drop=("fare",)).SerializeToString() for r in tiny_rows])
    predictions = loaded.signatures["serving_default"](examples=serialized)["predictions"].numpy()
    outputs = loaded.signatures["regress"](inputs=serialized)["outputs"].numpy()
    np.testing.assert_allclose(outputs, predictions)
    fares = np.array([float(r["fare"]) for r in tiny_rows])
    assert np.median(np.abs(predictions - fares)) < np.median(np.abs(np.median(fares) - fares))  # beats a constant
    # TFMA reads the label from transform_features: in dollars, not the z-score of the log.
    with_label = tf.constant([to_example(r).SerializeToString() for r in tiny_rows])
    label = loaded.signatures["transform_features"](examples=with_label)[spec.label.name].numpy()
    np.testing.assert_allclose(label, fares, rtol=1e-6)


def test_the_serving_check_passes_on_tf_servings_loading_path(exported, serialized_examples):
    from components.serving_check import check
    from components.serving_warmup import warmup

    _, spec, _, _, path = exported
    examples = warmup.drop_features(serialized_examples[:8], [spec.label.column])
    warmup.write_warmup(str(path), warmup.prediction_logs(examples, "m", _signature_defs(path)))
    result = check.check(str(path))
    expected = "regress" if spec.label.task is Task.REGRESSION else "classify"
    assert expected in result.signatures and result.records >= len(result.signatures)


def test_a_regress_signature_needs_the_single_output_outputs(exported, tmp_path):
    import shutil

    _, spec, _, _, path = exported
    if spec.label.task is not Task.REGRESSION:
        pytest.skip("a regression model")
    copy = tmp_path / "model"
    shutil.copytree(path, copy)
    with pytest.raises(ValueError, match="signature 'serving_default' needs the single input 'inputs'"):
        model_lib.mark_signature_method(str(copy), "serving_default", "tensorflow/serving/regress")
