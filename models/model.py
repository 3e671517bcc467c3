"""Trainer and Tuner entry points: `run_fn` and `tuner_fn`, thin over the helpers below.

The Keras model reads the transformed features named by the feature definitions; the exported
SavedModel carries three signatures:
- `serving_default`: serialized tf.Examples of raw features (TF Serving's predict API form);
- `serve_raw`: one tensor per raw feature column, for clients that send plain values;
- `classify`: serialized tf.Examples under "inputs", answering "classes" and "scores" per class;
  its method is TF Serving's classify method, so `:classify` and the Classify RPC accept it;
- `transform_features`: raw examples to transformed features (used by TFMA for the label).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import features as feature_defs
from pipeline.config import FeatureType

_EVAL_BATCH_SIZE = 200
CLASSIFY_SIGNATURE = "classify"
CLASS_LABELS = ("0", "1")
WEIGHTS_FILE = "keras.weights.h5"
WARM_STARTED_FROM = "warm_started_from"

# The model is built with Keras 3 (`keras`), never `tf.keras`: KerasTuner accepts only Keras 3
# models, and importing tf.Transform sets TF_USE_LEGACY_KERAS=1, which can turn `tf.keras`
# into Keras 2 depending on import order. TFT's transform layer (Keras 2) is only attached
# to the model for saving and called inside the serving functions.


def _input_fn(file_pattern, data_accessor, tf_transform_output: tft.TFTransformOutput,
              label_name: str, batch_size: int) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_name),
        tf_transform_output.transformed_metadata.schema).repeat()


def _hyperparameters(spec: feature_defs.ModelSpec) -> keras_tuner.HyperParameters:
    """The search space; its defaults are the configured trainer values."""
    hp = keras_tuner.HyperParameters()
    trainer = spec.hyperparameters
    units = list(trainer.get("hidden_units") or [32, 16])
    hp.Choice("learning_rate", sorted({1e-2, 1e-3, float(trainer.get("learning_rate", 1e-3))}),
              default=float(trainer.get("learning_rate", 1e-3)))
    hp.Choice("first_units", sorted({16, 32, 64, units[0]}), default=units[0])
    hp.Int("num_layers", 1, 3, default=len(units))
    return hp


def _build_model(hp: keras_tuner.HyperParameters, spec: feature_defs.ModelSpec,
                 tf_transform_output: tft.TFTransformOutput) -> keras.Model:
    """A wide-and-deep binary classifier over the transformed features."""
    inputs, wide, deep = {}, [], []
    for name, feature in spec.features.items():
        key = feature_defs.transformed_name(name)
        if feature.type is FeatureType.NUMERIC:
            inputs[key] = keras.layers.Input(name=key, shape=(1,), dtype=tf.float32)
            deep.append(inputs[key])
            continue
        inputs[key] = keras.layers.Input(name=key, shape=(1,), dtype=tf.int64)
        if feature.type is FeatureType.BUCKETIZED:
            num_tokens = feature.num_buckets
        else:
            num_tokens = tf_transform_output.vocabulary_size_by_name(name) + feature.num_oov_buckets
        wide.append(keras.layers.CategoryEncoding(num_tokens=num_tokens, output_mode="one_hot")(
            inputs[key]))
    layers = deep + wide
    x = keras.layers.concatenate(layers) if len(layers) > 1 else layers[0]
    units = hp.get("first_units")
    for _ in range(hp.get("num_layers")):
        x = keras.layers.Dense(units, activation="relu")(x)
        units = max(4, units // 2)
    output = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(loss="binary_crossentropy",
                  optimizer=keras.optimizers.Adam(learning_rate=hp.get("learning_rate")),
                  metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.AUC(name="auc")])
    return model


def _raw_serving_spec(spec: feature_defs.ModelSpec, tf_transform_output: tft.TFTransformOutput):
    raw_spec = tf_transform_output.raw_feature_spec()
    return {name: raw_spec[name] for name in feature_defs.raw_input_columns(spec)}


def _serving_functions(model: keras.Model, spec: feature_defs.ModelSpec,
                       tf_transform_output: tft.TFTransformOutput, tft_layer) -> dict[str, Any]:
    """The serving tf.functions, each with its input signature: {signature key: function}."""
    raw_spec = _raw_serving_spec(spec, tf_transform_output)

    def predict(raw_features):
        transformed = tft_layer(raw_features)
        probability = tf.reshape(model(transformed), [-1])
        return {"probabilities": probability,
                "classes": tf.cast(probability > 0.5, tf.int64)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, raw_spec))

    @tf.function(input_signature=[{
        name: tf.TensorSpec(shape=[None], dtype=feature.dtype, name=name)
        for name, feature in raw_spec.items()}])
    def serve_raw(columns):
        # Plain values, one per row: wrap them the way parse_example presents each column.
        raw = {}
        for name, feature in raw_spec.items():
            value = columns[name]
            if isinstance(feature, tf.io.FixedLenFeature):
                raw[name] = tf.reshape(value, [-1, *feature.shape])
            else:
                rows = tf.shape(value, out_type=tf.int64)[0]
                indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
                raw[name] = tf.SparseTensor(indices, value, tf.stack([rows, 1]))
        return predict(raw)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")])
    def classify(inputs):
        probability = predict(tf.io.parse_example(inputs, raw_spec))["probabilities"]
        rows = tf.shape(probability)[0]
        return {"classes": tf.tile(tf.constant([list(CLASS_LABELS)]), [rows, 1]),
                "scores": tf.stack([1.0 - probability, probability], axis=1)}

    # Only the columns the transform reads: the other columns' inferred types can change from
    # one span to the next, and a baseline model must still parse the new span's examples.
    all_raw = tf_transform_output.raw_feature_spec()
    label_spec = {**raw_spec, **{name: all_raw[name] for name in feature_defs.label_columns(spec)}}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(examples):
        return tft_layer(tf.io.parse_example(examples, label_spec))

    return {"serving_default": serve_examples, "serve_raw": serve_raw,
            CLASSIFY_SIGNATURE: classify, "transform_features": transform_features}


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """Returns a KerasTuner RandomSearch over learning rate and layer sizes."""
    spec = feature_defs.from_custom_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(
        lambda hp: _build_model(hp, spec, tf_transform_output),
        hyperparameters=_hyperparameters(spec),
        max_trials=int(spec.tuner.get("max_trials", 2)),
        objective=keras_tuner.Objective("val_auc", "max"),
        directory=fn_args.working_dir, project_name="tuning", overwrite=True)
    batch_size = int(spec.hyperparameters.get("batch_size", 64))
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                       spec.label.name, batch_size),
        "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                                     spec.label.name, _EVAL_BATCH_SIZE),
        "steps_per_epoch": fn_args.train_steps,
        "validation_steps": fn_args.eval_steps,
    })


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the model (with the tuned hyperparameters when given) and exports it."""
    spec = feature_defs.from_custom_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if fn_args.hyperparameters:
        hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hp = _hyperparameters(spec)
    logging.info("Training with hyperparameters %s", hp.values)
    batch_size = int(spec.hyperparameters.get("batch_size", 64))
    train = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                      spec.label.name, batch_size)
    evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                           spec.label.name, _EVAL_BATCH_SIZE)
    model = _build_model(hp, spec, tf_transform_output)
    warm_started_from = _warm_start(model, fn_args.custom_config.get("warm_start_dir") or "")
    model.fit(train, steps_per_epoch=fn_args.train_steps, validation_data=evaluation,
              validation_steps=fn_args.eval_steps, verbose=2,
              callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)])
    export(model, spec, tf_transform_output, fn_args.serving_model_dir, warm_started_from)


def _warm_start(model: keras.Model, serving_dir: str) -> str | None:
    """Loads the newest served model's weights where their shapes still fit; returns its path.

    Layers whose shapes changed (a vocabulary grew, the tuner chose other units) keep their
    fresh initialisation; Keras skips them with a warning.
    """
    from components.serving_baseline.baseline import latest_served

    served = latest_served(serving_dir) if serving_dir else None
    weights = tf.io.gfile.join(served, "assets.extra", WEIGHTS_FILE) if served else None
    if not weights or not tf.io.gfile.exists(weights):
        logging.info("No served model with Keras weights under %r: training from scratch", serving_dir)
        return None
    model.load_weights(weights, skip_mismatch=True)
    logging.info("Warm-started from %s", weights)
    return served


def export(model: keras.Model, spec: feature_defs.ModelSpec, tf_transform_output: tft.TFTransformOutput,
           export_dir: str, warm_started_from: str | None = None) -> None:
    """Saves the model with its serving signatures as the SavedModel TF Serving loads, and its
    Keras weights in assets.extra/ (which TF Serving ignores) for warm-starting the next one.

    The saved root is a tf.Module that holds the TensorFlow variables the signatures capture
    and TFT's transform layer, not the Keras model. Saving the Keras 3 model itself checkpoints
    copies of its variables while the signatures read the originals, and TF Serving's loader
    (a TF1 session: graph import, restore op, init op) then fails every signature with
    "Could not find variable" (keras-team/keras#20095). Keras' own ExportArchive tracks the
    same variables, but on Python 3.13 it silently drops the lookup tables of a tracked
    non-Keras layer (its `track` skips roots whose walk raises TypeError), and TFT's
    vocabularies are such tables.
    """
    tft_layer = tf_transform_output.transform_features_layer()
    signatures = {name: function.get_concrete_function()
                  for name, function in _serving_functions(model, spec, tf_transform_output, tft_layer).items()}
    root = tf.Module()
    captured = {}
    for concrete in signatures.values():
        for variable in concrete.variables:
            captured.setdefault(id(variable), variable)
    root.model_variables = list(captured.values())
    root.tft_layer = tft_layer  # its vocabularies and hash tables are saved as the model's assets
    tf.saved_model.save(root, export_dir, signatures=signatures)
    mark_classification_signature(export_dir)
    extra = tf.io.gfile.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    model.save_weights(tf.io.gfile.join(extra, WEIGHTS_FILE))
    if warm_started_from:
        with tf.io.gfile.GFile(tf.io.gfile.join(extra, WARM_STARTED_FROM), "w") as f:
            f.write(warm_started_from + "\n")


def mark_classification_signature(export_dir: str, key: str = CLASSIFY_SIGNATURE) -> None:
    """Gives signature `key` TF Serving's classify method in the saved SavedModel.

    TF2's savers (`tf.saved_model.save`, Keras' ExportArchive) write every signature with the
    predict method and offer no way to choose another, and TF Serving's Classify API refuses
    those. The method name is only a label on the SignatureDef, so it is set in saved_model.pb,
    and the fingerprint that hashes that file is written again: `fingerprinting_utils` is
    TensorFlow's private module, used because no public API writes a fingerprint.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = tf.io.gfile.join(export_dir, tf.saved_model.SAVED_MODEL_FILENAME_PB)
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved.ParseFromString(f.read())
    signature = saved.meta_graphs[0].signature_def[key]
    if set(signature.inputs) != {tf.saved_model.CLASSIFY_INPUTS}:
        raise ValueError(f"signature {key!r} needs the single input {tf.saved_model.CLASSIFY_INPUTS!r} "
                         f"to be a classify signature; it has {sorted(signature.inputs)}")
    signature.method_name = tf.saved_model.CLASSIFY_METHOD_NAME
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved.SerializeToString())
    fingerprinting_utils.write_fingerprint(export_dir)
