"""The Keras model and its exported signatures, trained a few steps on the tiny sample."""

import numpy as np
import pytest
import tensorflow as tf

from contracts.saved_model import WEIGHTS_FILE
from models import model as model_lib
from models import model_inputs


@pytest.fixture(scope="module")
def spec(model_config):
    return model_inputs.from_custom_config(model_config)


@pytest.fixture(scope="module")
def trained(transformed, spec):
    output, features = transformed
    features = dict(features)
    labels = features.pop(spec.label.name)
    hp = model_lib._hyperparameters(spec)
    model = model_lib._build_model(hp, spec, output)
    x = {k: tf.reshape(v, [-1, 1]) for k, v in features.items()}
    history = model.fit(x, tf.reshape(labels, [-1, 1]), epochs=20, batch_size=16, verbose=0)
    return model, history, x


def test_search_space_defaults_are_the_configured_trainer_values(spec, model_config):
    hp = model_lib._hyperparameters(spec)
    assert hp.get("learning_rate") == spec.trainer.learning_rate
    assert hp.get("first_units") == spec.trainer.hidden_units[0]
    assert hp.get("num_layers") == len(spec.trainer.hidden_units)
    other = model_inputs.from_custom_config(
        {**model_config, "trainer": {"learning_rate": 0.05, "hidden_units": [8, 4, 2]}}
    )
    hp = model_lib._hyperparameters(other)
    assert (hp.get("learning_rate"), hp.get("first_units"), hp.get("num_layers")) == (0.05, 8, 3)


def test_training_reduces_the_loss(trained):
    _, history, _ = trained
    losses = history.history["loss"]
    assert losses[-1] < losses[0]


@pytest.fixture(scope="module")
def export_dir(trained, transformed, spec, tmp_path_factory):
    model, _, _ = trained
    output, _ = transformed
    path = tmp_path_factory.mktemp("model") / "serving"
    model_lib.export(model, spec, output, str(path))
    return path


@pytest.fixture(scope="module")
def exported(export_dir):
    return tf.saved_model.load(str(export_dir))


def test_export_has_the_four_signatures(exported):
    assert set(exported.signatures) == {"serving_default", "serve_raw", "classify", "transform_features"}


class _CountingModel:
    """The trained model, counting the times a trace calls it."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, features):
        self.calls += 1
        return self.model(features)

    def save_weights(self, path):
        self.model.save_weights(path)


def test_the_export_traces_the_model_once_for_every_signature(trained, transformed, spec, tmp_path):
    """serving_default, serve_raw and classify call one traced prediction function: the model
    (for the trees, their whole walk) is in the SavedModel once, and traced once."""
    model, _, _ = trained
    output, _ = transformed
    counting = _CountingModel(model)
    model_lib.export(counting, spec, output, str(tmp_path / "serving"))
    assert counting.calls == 1
    loaded = tf.saved_model.load(str(tmp_path / "serving"))
    assert set(loaded.signatures) == {"serving_default", "serve_raw", "classify", "transform_features"}


def test_the_prediction_takes_what_parse_example_gives():
    specs = model_lib._parsed_spec(
        {"fare": tf.io.FixedLenFeature([1], tf.float32), "company": tf.io.VarLenFeature(tf.string)}
    )
    assert specs == {
        "fare": tf.TensorSpec([None, 1], tf.float32),
        "company": tf.SparseTensorSpec([None, None], tf.string),
    }
    parsed = tf.io.parse_example(
        [tf.train.Example().SerializeToString()],
        {
            "fare": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
            "company": tf.io.VarLenFeature(tf.string),
        },
    )
    assert all(specs[name].is_compatible_with(value) for name, value in parsed.items())
    # Other feature specs (SchemaGen infers none): the prediction stays inline in each signature.
    assert model_lib._parsed_spec({"x": tf.io.SparseFeature("i", "v", tf.float32, 4)}) is None


def _signature_defs(export_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    return saved.meta_graphs[0].signature_def


def test_classify_is_a_tf_serving_classification_signature(export_dir):
    signatures = _signature_defs(export_dir)
    classify = signatures["classify"]
    assert classify.method_name == "tensorflow/serving/classify"
    assert set(classify.inputs) == {"inputs"} and set(classify.outputs) == {"classes", "scores"}
    assert classify.outputs["classes"].dtype == tf.string.as_datatype_enum
    assert classify.outputs["scores"].dtype == tf.float32.as_datatype_enum
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"


def test_the_fingerprint_matches_the_rewritten_saved_model(export_dir):
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting as fingerprinting_pywrap

    written = fingerprint_pb2.FingerprintDef.FromString((export_dir / "fingerprint.pb").read_bytes())
    fresh = fingerprint_pb2.FingerprintDef.FromString(fingerprinting_pywrap.CreateFingerprintDef(str(export_dir)))
    assert written.saved_model_checksum == fresh.saved_model_checksum


def test_classify_scores_are_the_predicted_probabilities(exported, tiny_rows):
    from tests.conftest import to_example

    serialized = tf.constant([to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows])
    probabilities = exported.signatures["serving_default"](examples=serialized)["probabilities"].numpy()
    out = exported.signatures["classify"](inputs=serialized)
    assert out["classes"].numpy().tolist() == [[b"0", b"1"]] * len(tiny_rows)
    np.testing.assert_allclose(out["scores"].numpy(), np.stack([1 - probabilities, probabilities], axis=1), atol=1e-6)


def test_a_signature_without_the_classify_input_is_refused(export_dir, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(export_dir, copy)
    with pytest.raises(ValueError, match="signature 'serving_default' needs the single input 'inputs'"):
        model_lib.mark_classification_signature(str(copy), "serving_default")


def test_serving_default_takes_serialized_examples_without_the_label(exported, tiny_rows, trained):
    from tests.conftest import to_example

    model, _, x = trained
    serialized = tf.constant([to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows])
    out = exported.signatures["serving_default"](examples=serialized)
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (len(tiny_rows),)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0).reshape(-1), atol=1e-5)
    assert out["classes"].numpy().tolist() == (probabilities > 0.5).astype(int).tolist()


def test_serve_raw_agrees_with_serving_default(exported, tiny_rows, serialized_examples):
    from tests.conftest import FLOAT_COLUMNS, STRING_COLUMNS

    signature = exported.signatures["serve_raw"]
    inputs = {}
    rows = [r for r in tiny_rows if all(r[c] != "" for c in signature.structured_input_signature[1])]
    assert rows, "the tiny sample needs complete rows"
    for name, tensor_spec in signature.structured_input_signature[1].items():
        values = [r[name] for r in rows]
        if name in STRING_COLUMNS:
            inputs[name] = tf.constant(values)
        elif name in FLOAT_COLUMNS:
            inputs[name] = tf.constant([float(v) for v in values], tensor_spec.dtype)
        else:
            inputs[name] = tf.constant([int(v) for v in values], tensor_spec.dtype)
    raw = signature(**inputs)["probabilities"].numpy()
    from tests.conftest import to_example

    serialized = tf.constant([to_example(r).SerializeToString() for r in rows])
    by_example = exported.signatures["serving_default"](examples=serialized)["probabilities"].numpy()
    np.testing.assert_allclose(raw, by_example, atol=1e-5)


def test_transform_features_yields_the_label(exported, serialized_examples, spec):
    out = exported.signatures["transform_features"](examples=tf.constant(serialized_examples))
    assert spec.label.name in out


def test_the_model_is_a_keras_3_model_that_kerastuner_accepts(trained, monkeypatch):
    import keras
    import tensorflow_transform  # noqa: F401 - sets TF_USE_LEGACY_KERAS=1, as in the Trainer

    model, _, _ = trained
    assert isinstance(model, keras.Model)
    assert keras.version().startswith("3.")


def test_warm_start_loads_the_served_models_weights(export_dir, trained, transformed, spec, tmp_path):
    import shutil

    model, _, _ = trained
    output, _ = transformed
    serving = tmp_path / "serving"
    assert (
        model_lib._warm_start(model_lib._build_model(model_lib._hyperparameters(spec), spec, output), str(serving))
        is None
    )  # nothing served yet: from scratch
    shutil.copytree(export_dir, serving / "7")
    fresh = model_lib._build_model(model_lib._hyperparameters(spec), spec, output)
    assert model_lib._warm_start(fresh, str(serving)) == str(serving / "7")
    for loaded, trained_weights in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(loaded, trained_weights)


def test_warm_start_skips_layers_whose_shape_changed(export_dir, trained, transformed, spec, tmp_path):
    import shutil

    import keras_tuner

    model, _, _ = trained
    output, _ = transformed
    shutil.copytree(export_dir, tmp_path / "serving" / "7")
    hp = model_lib._hyperparameters(spec)
    wider = keras_tuner.HyperParameters.from_config(hp.get_config())
    wider.values["first_units"] = hp.get("first_units") * 2
    fresh = model_lib._build_model(wider, spec, output)
    before = [w.copy() for w in fresh.get_weights()]
    assert model_lib._warm_start(fresh, str(tmp_path / "serving")) is not None
    for now, then in zip(fresh.get_weights(), before):
        np.testing.assert_array_equal(now, then)  # every Dense layer changed shape: all kept fresh


def test_the_export_keeps_keras_weights_beside_the_saved_model(export_dir):
    assert (export_dir / "assets.extra" / WEIGHTS_FILE).stat().st_size > 0


def test_columns_the_model_does_not_read_may_change_type(exported, serialized_examples, spec):
    """A span can infer another type for an unused column; the served model must not care."""
    example = tf.train.Example.FromString(serialized_examples[0])
    example.features.feature["pickup_census_tract"].Clear()
    example.features.feature["pickup_census_tract"].bytes_list.value.append(b"not a number")
    out = exported.signatures["transform_features"](examples=tf.constant([example.SerializeToString()]))
    assert spec.label.name in out
    assert "pickup_census_tract" not in spec.features


def _train_seeded(transform_dir, work, seed, model="dnn"):
    import json
    import subprocess
    import sys

    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tests.models.train_seeded", str(transform_dir), str(work), str(seed), model],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# make test-extended's: test_local_pipeline.py's fresh run on the same data holds the same through the pipeline.
@pytest.mark.extended
def test_the_same_seed_trains_the_same_model(transform_dir, tmp_path):
    """run_fn, twice on the same data with the same trainer.seed, and once with another.

    TensorFlow's fingerprint hashes of the graph, signatures, object graph and checkpoint are
    equal too; its uuid is new with every save, and its saved_model.pb checksum differed
    between the two runs as well, so the Pusher compares the four semantic hashes only.
    """
    first = _train_seeded(transform_dir, tmp_path / "first", 7)
    second = _train_seeded(transform_dir, tmp_path / "second", 7)
    other = _train_seeded(transform_dir, tmp_path / "other", 8)
    assert first["predictions"] == second["predictions"]
    assert first["weights"] == second["weights"]
    assert other["weights"] != first["weights"]  # the seed is what made them equal
    fingerprint, again = first["fingerprint"], second["fingerprint"]
    from components.serving_baseline.baseline import SEMANTIC_HASHES

    for field in SEMANTIC_HASHES:  # what the Pusher compares with the served model
        assert fingerprint[field] == again[field], field


def test_auto_trains_both_and_exports_the_same_choice_twice(transform_dir, tmp_path):
    """run_fn with trainer.model auto, twice: the same scores, the same pick, the same model."""
    first = _train_seeded(transform_dir, tmp_path / "first", 7, "auto")
    second = _train_seeded(transform_dir, tmp_path / "second", 7, "auto")
    choice = first["choice"]
    assert choice["configured"] == "auto" and set(choice["eval_scores"]) == {"dnn", "gbt"}
    assert choice["objective"] == "val_auc" and choice["model"] in ("dnn", "gbt")
    network_clearly_better = choice["network_lead_z"] is None or choice["network_lead_z"] > choice["needed_z"]
    assert choice["model"] == ("dnn" if network_clearly_better else "gbt")
    assert second["choice"] == choice
    assert first["predictions"] == second["predictions"] and first["weights"] == second["weights"]
    from components.serving_baseline.baseline import SEMANTIC_HASHES

    for field in SEMANTIC_HASHES:  # the Pusher then sees the same model and pushes no duplicate
        assert first["fingerprint"][field] == second["fingerprint"][field], field
