"""Trainer and Tuner entry points: `run_fn` and `tuner_fn`, thin over the helpers below.

The Keras model reads the transformed features named by the feature definitions; its head
is the task's (label.task): a sigmoid for binary, a softmax over the classes for multiclass,
a linear unit on the z-scored (log-)target for regression. trainer.model gbt trains
gradient-boosted trees on the same features instead (models/gbt.py: a tf.Module that answers
what the Keras model answers), and auto trains both and exports the better on the eval split.
The exported SavedModel carries four signatures:
- `serving_default`: serialized tf.Examples of raw features (TF Serving's predict API form);
  binary: "probabilities" and "classes" (0/1); multiclass: "probabilities" per class,
  "classes" (the predicted class name) and "probability" (its probability); regression:
  "predictions", in the label's units;
- `serve_raw`: one tensor per raw feature column, for clients that send plain values;
- `classify` (classification) or `regress` (regression): serialized tf.Examples under
  "inputs", answering "classes" and "scores" per class, or "outputs"; their methods are TF
  Serving's classify and regress methods, so `:classify`/`:regress` and the RPCs accept them;
- `transform_features`: raw examples to transformed features (used by TFMA for the label;
  for regression the label in its own units).
"""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs  # not tfx.v1: pipeline/pipeline.py says why
from tfx.components.tuner.component import TunerFnResult

from contracts.saved_model import (
    ASSETS_EXTRA,
    CLASSES_FILE,
    CLASSIFY_SIGNATURE,
    DEFAULT_SIGNATURE,
    GBT_MODEL_FILE,
    RAW_SIGNATURE,
    REGRESS_SIGNATURE,
    TRAINER_CHOICE,
    TRANSFORM_SIGNATURE,
    WARM_STARTED_FROM,
    WEIGHTS_FILE,
)
from contracts.serving_dir import latest_served
from models import gbt, in_memory, model_choice, model_inputs, preprocessing, splits, training_plan
from models.spec import FeatureType, RegressionLoss, Task, TrainerModel, parse_budget
from models.tasks import TASKS

CLASS_LABELS = ("0", "1")

# The model is built with Keras 3 (`keras`), never `tf.keras`: KerasTuner accepts only Keras 3
# models, and importing tf.Transform sets TF_USE_LEGACY_KERAS=1, which can turn `tf.keras`
# into Keras 2 depending on import order. TFT's transform layer (Keras 2) is only attached
# to the model for saving and called inside the serving functions.


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and TensorFlow's random generators, and TensorFlow's op determinism."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_names(spec: model_inputs.ModelSpec, tf_transform_output: tft.TFTransformOutput) -> list[str]:
    """The classes the model answers, in the order of its outputs."""
    if spec.label.task is Task.BINARY:
        return list(CLASS_LABELS)
    if spec.label.classes:
        return list(spec.label.classes)
    return [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for v in tf_transform_output.vocabulary_by_name(model_inputs.LABEL_VOCABULARY)
    ]


def target_scale(
    spec: model_inputs.ModelSpec, tf_transform_output: tft.TFTransformOutput, tft_layer=None
) -> tuple[float, float]:
    """(mean, standard deviation) of the regression target (after log1p with log_transform)
    as tf.Transform's scale_to_z_score fitted them: read back by transforming two known
    targets, since TFTransformOutput does not expose an analyzer's value. Through TFT's
    Keras layer, which also runs a TF1-traced transform (force_tf_compat_v1) eagerly."""
    import numpy as np

    tft_layer = tft_layer or tf_transform_output.transform_features_layer()

    feature = tf_transform_output.raw_feature_spec()[spec.label.column]
    probe = tf.constant([["1"], ["2"]]) if feature.dtype == tf.string else tf.constant([[1], [2]], feature.dtype)
    if not isinstance(feature, tf.io.FixedLenFeature):
        probe = tf.sparse.from_dense(probe)
    z = np.asarray(tft_layer({spec.label.column: probe})[spec.label.name]).reshape(-1).astype(np.float64)
    targets = np.log1p([1.0, 2.0]) if spec.label.log_transform else np.array([1.0, 2.0])
    std = (targets[1] - targets[0]) / (z[1] - z[0])
    return float(targets[0] - std * z[0]), float(std)


def _hyperparameters(spec: model_inputs.ModelSpec, train_rows: int | None = None) -> keras_tuner.HyperParameters:
    """The search space, its widths sized to the train split's rows (training_plan.unit_choices);
    its defaults are the configured trainer values."""
    hp = keras_tuner.HyperParameters()
    trainer = spec.trainer
    units = trainer.hidden_units
    widths = training_plan.unit_choices(train_rows) if train_rows is not None else [16, 32, 64]
    rates = sorted({*training_plan.LEARNING_RATES, trainer.learning_rate})
    hp.Choice("learning_rate", rates, default=trainer.learning_rate)
    hp.Choice("first_units", sorted({*widths, units[0]}), default=units[0])
    hp.Int("num_layers", 1, 3, default=len(units))
    return hp


def _inputs(
    spec: model_inputs.ModelSpec, tf_transform_output: tft.TFTransformOutput
) -> tuple[list[str], dict[str, int]]:
    """The model's transformed inputs: the numeric ones, and {categorical one: number of ids}
    (vocabularies, buckets, timestamp parts, crosses)."""
    numeric, categorical = [], {}
    for name, feature in spec.features.items():
        key = model_inputs.transformed_name(name)
        if feature.type is FeatureType.NUMERIC:
            numeric.append(key)
        elif feature.type is FeatureType.BUCKETIZED:
            categorical[key] = feature.num_buckets
        elif feature.type is FeatureType.CATEGORICAL:
            categorical[key] = tf_transform_output.vocabulary_size_by_name(name) + feature.num_oov_buckets
        # a timestamp's parts are among categorical_inputs below, its days among numeric_inputs
    numeric.extend(model_inputs.numeric_inputs(spec))
    categorical.update(model_inputs.categorical_inputs(spec))
    return numeric, categorical


def _build_model(
    hp: keras_tuner.HyperParameters,
    spec: model_inputs.ModelSpec,
    tf_transform_output: tft.TFTransformOutput,
    steps_per_execution: int = 1,
) -> keras.Model:
    """A feed-forward network over the transformed features, with the task's head: numbers as
    they are, categorical ids (vocabularies, buckets, timestamp parts, crosses) one-hot, or
    embedded when they have more ids than training_plan.ONE_HOT_MAX_IDS. Compiled to run
    `steps_per_execution` steps per call (training_plan.Plan.steps_per_execution)."""
    inputs, wide, deep = {}, [], []
    numeric, categorical = _inputs(spec, tf_transform_output)
    for key in numeric:
        inputs[key] = keras.layers.Input(name=key, shape=(1,), dtype=tf.float32)
        deep.append(inputs[key])
    for key, num_tokens in categorical.items():
        inputs[key] = keras.layers.Input(name=key, shape=(1,), dtype=tf.int64)
        wide.append(training_plan.encoded(num_tokens, inputs[key], key))
    layers = deep + wide
    x = keras.layers.concatenate(layers) if len(layers) > 1 else layers[0]
    units = hp.get("first_units")
    for _ in range(hp.get("num_layers")):
        x = keras.layers.Dense(units, activation="relu")(x)
        units = max(4, units // 2)
    task = spec.label.task
    if task is Task.BINARY:
        output = keras.layers.Dense(1, activation="sigmoid")(x)
        loss, metrics = "binary_crossentropy", [keras.metrics.BinaryAccuracy(), keras.metrics.AUC(name="auc")]
    elif task is Task.MULTICLASS:
        output = keras.layers.Dense(len(class_names(spec, tf_transform_output)), activation="softmax")(x)
        loss, metrics = "sparse_categorical_crossentropy", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        # The target is z-scored by Transform: Huber's delta of 1 is one standard deviation.
        output = keras.layers.Dense(1)(x)
        loss = keras.losses.Huber(delta=1.0) if spec.trainer.loss is RegressionLoss.HUBER else "mse"
        metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        loss=loss,
        optimizer=keras.optimizers.Adam(learning_rate=hp.get("learning_rate")),
        metrics=metrics,
        steps_per_execution=steps_per_execution,
    )
    return model


def _raw_serving_spec(spec: model_inputs.ModelSpec, tf_transform_output: tft.TFTransformOutput):
    raw_spec = tf_transform_output.raw_feature_spec()
    return {name: raw_spec[name] for name in model_inputs.raw_input_columns(spec)}


def _parsed_spec(raw_spec: dict[str, Any]) -> dict[str, tf.TypeSpec] | None:
    """What `tf.io.parse_example` returns for `raw_spec`, as type specs; None for a feature
    spec other than fixed-length and variable-length ones (the schemas SchemaGen infers)."""
    specs = {}
    for name, feature in raw_spec.items():
        if isinstance(feature, tf.io.FixedLenFeature):
            specs[name] = tf.TensorSpec([None, *feature.shape], feature.dtype)
        elif isinstance(feature, tf.io.VarLenFeature):
            specs[name] = tf.SparseTensorSpec([None, None], feature.dtype)
        else:
            return None
    return specs


def _serving_functions(
    model: keras.Model, spec: model_inputs.ModelSpec, tf_transform_output: tft.TFTransformOutput, tft_layer
) -> dict[str, Any]:
    """The serving tf.functions, each with its input signature: {signature key: function}."""
    raw_spec = _raw_serving_spec(spec, tf_transform_output)
    task = spec.label.task
    names = class_names(spec, tf_transform_output) if task is not Task.REGRESSION else []
    mean, std = target_scale(spec, tf_transform_output, tft_layer) if task is Task.REGRESSION else (0.0, 1.0)

    def predict(raw_features):
        """The model on parsed raw columns. Traced once, as a function of its own that every
        prediction signature calls, where an inline one traced the transform layer and the
        model (the trees' graph) into each signature again: export took that much longer, and
        the SavedModel held each copy."""
        output = model(tft_layer(raw_features))
        if task is Task.BINARY:
            probability = tf.reshape(output, [-1])
            return {"probabilities": probability, "classes": tf.cast(probability > 0.5, tf.int64)}
        if task is Task.MULTICLASS:
            return {
                "probabilities": output,
                "classes": tf.gather(tf.constant(names), tf.argmax(output, axis=1)),
                "probability": tf.reduce_max(output, axis=1),
            }
        target = mean + std * tf.reshape(tf.cast(output, tf.float32), [-1])
        return {"predictions": tf.math.expm1(target) if spec.label.log_transform else target}

    parsed = _parsed_spec(raw_spec)
    if parsed is not None:
        predict = tf.function(predict, input_signature=[parsed])

    def scores(probabilities):
        """classify's "scores": one column per class, in the order of `names`."""
        if task is Task.BINARY:
            return tf.stack([1.0 - probabilities, probabilities], axis=1)
        return probabilities

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, raw_spec))

    @tf.function(
        input_signature=[
            {name: tf.TensorSpec(shape=[None], dtype=feature.dtype, name=name) for name, feature in raw_spec.items()}
        ]
    )
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
        probabilities = predict(tf.io.parse_example(inputs, raw_spec))["probabilities"]
        rows = tf.shape(probabilities)[0]
        return {"classes": tf.tile(tf.constant([names]), [rows, 1]), "scores": scores(probabilities)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")])
    def regress(inputs):
        return {"outputs": predict(tf.io.parse_example(inputs, raw_spec))["predictions"]}

    # Only the columns the transform reads: the other columns' inferred types can change from
    # one span to the next, and a baseline model must still parse the new span's examples.
    all_raw = tf_transform_output.raw_feature_spec()
    label_spec = {**raw_spec, **{name: all_raw[name] for name in model_inputs.label_columns(spec)}}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(examples):
        parsed = tf.io.parse_example(examples, label_spec)
        transformed = tft_layer(parsed)
        if task is Task.REGRESSION:
            # TFMA compares the predictions with the label in its own units, not the z-score.
            column = parsed[spec.label.column]
            default = "" if column.dtype == tf.string else 0
            transformed[spec.label.name] = preprocessing.as_float(preprocessing.dense(column, default))
        return transformed

    functions = {DEFAULT_SIGNATURE: serve_examples, RAW_SIGNATURE: serve_raw, TRANSFORM_SIGNATURE: transform_features}
    if task is Task.REGRESSION:
        functions[REGRESS_SIGNATURE] = regress
    else:
        functions[CLASSIFY_SIGNATURE] = classify
    return functions


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """Returns a KerasTuner random search over learning rate and layer sizes, its space, trials
    and trial length sized to the train split (models/training_plan.py) unless configured."""
    spec = model_inputs.from_custom_config(fn_args.custom_config)
    seed = _seed(spec.tuner.seed, spec)
    seed_everything(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train_rows = training_plan.count_records(fn_args.train_files)
    trials, minutes = spec.tuner.max_trials, None
    if spec.tuner.budget is not None:
        trials, minutes = parse_budget(spec.tuner.budget)
    if trials is None and minutes is None:
        trials = training_plan.default_trials(train_rows)
    oracle = training_plan.TimeBudgetOracle(
        minutes,
        objective=keras_tuner.Objective(*TASKS[spec.label.task].tuner_objective),
        max_trials=trials or training_plan.MAX_TRIALS_IN_TIME,
        hyperparameters=_hyperparameters(spec, train_rows),
        seed=seed,
    )
    batch_size = spec.trainer.batch_size or training_plan.batch_size_for(train_rows)
    steps = fn_args.train_steps or training_plan.trial_steps(train_rows, batch_size)
    validation_steps = fn_args.eval_steps  # None: one pass over the eval split
    per_call = training_plan.steps_per_call(steps, validation_steps)
    tuner = keras_tuner.Tuner(
        oracle=oracle,
        hypermodel=lambda hp: _build_model(hp, spec, tf_transform_output, per_call),
        directory=fn_args.working_dir,
        project_name="tuning",
        overwrite=True,
    )
    logging.info(
        "Tuning: %s trials (%s minutes), %d train rows, batch %d, %d steps per trial",
        trials,
        minutes,
        train_rows,
        batch_size,
        steps,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": splits.input_fn(
                fn_args.train_files, fn_args.data_accessor, tf_transform_output, spec, batch_size, seed
            ),
            "validation_data": splits.eval_input(fn_args, tf_transform_output, spec, seed, validation_steps),
            "steps_per_epoch": steps,
            "validation_steps": validation_steps,
        },
    )


def run_fn(fn_args: FnArgs) -> None:
    """Trains the configured model (trainer.model: the DNN with the tuned hyperparameters when
    given, gradient-boosted trees, or both, keeping the better on the eval split) and exports it."""
    spec = model_inputs.from_custom_config(fn_args.custom_config)
    seed = _seed(None, spec)
    seed_everything(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    kind = spec.trainer.model
    warm_start_dir = fn_args.custom_config.get("warm_start_dir") or ""
    candidates: dict[str, Any] = {}
    warm_started_from = None
    held, train_rows = splits.held(fn_args, spec, tf_transform_output)
    # LightGBM trains on its own thread (one, for the same trees on every machine) while the
    # network trains: neither keeps both cores busy alone, and neither reads the other's state.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightgbm") as pool:
        trees = None
        if kind in (TrainerModel.GBT, TrainerModel.AUTO):
            if warm_start_dir:
                logging.info("trainer.warm_start is skipped for gbt: the trees train from scratch")
            train_data, eval_data = held
            trees = pool.submit(_train_gbt, train_data, eval_data, spec, tf_transform_output, seed)
        if kind in (TrainerModel.DNN, TrainerModel.AUTO):
            candidates["dnn"], warm_started_from = _train_dnn(
                fn_args, spec, tf_transform_output, seed, warm_start_dir, held, train_rows
            )
        if trees is not None:
            candidates["gbt"] = trees.result()
    if kind is TrainerModel.AUTO:
        numeric, categorical = _inputs(spec, tf_transform_output)
        choice = choose(candidates, eval_data, spec, numeric + list(categorical))
    else:
        choice = {"configured": kind.value, "model": kind.value}
    logging.info("Exporting the %s model: %s", choice["model"], choice.get("reason", "trainer.model says so"))
    export(
        candidates[choice["model"]],
        spec,
        tf_transform_output,
        fn_args.serving_model_dir,
        warm_started_from if choice["model"] == "dnn" else None,
        choice,
    )


def _train_dnn(
    fn_args, spec, tf_transform_output, seed: int, warm_start_dir: str, held, train_rows: int
) -> tuple[keras.Model, str | None]:
    """The Keras model (with the tuned hyperparameters when given), and the served model it
    warm-started from. `held` (train, eval), the splits held in memory, are read from there;
    None: from their files. `train_rows`: the train split's rows (splits.held)."""
    if fn_args.hyperparameters:
        hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hp = _hyperparameters(spec)
    logging.info("Training with hyperparameters %s", hp.values)
    plan = training_plan.plan(train_rows, spec.trainer.batch_size, fn_args.train_steps, fn_args.eval_steps)
    logging.info("Training plan: %s (splits %s)", plan, "in memory" if held else "read from their files")
    if held:
        train_data, eval_data = held
        label = spec.label.name
        train = in_memory.training_batches(train_data, label, plan.batch_size, seed)
        evaluation = in_memory.evaluation_batches(
            eval_data, label, training_plan.EVAL_BATCH_SIZE, plan.validation_steps
        )
    else:
        train = splits.input_fn(
            fn_args.train_files, fn_args.data_accessor, tf_transform_output, spec, plan.batch_size, seed
        )
        evaluation = splits.eval_input(fn_args, tf_transform_output, spec, seed, plan.validation_steps)
    model = _build_model(hp, spec, tf_transform_output, plan.steps_per_execution)
    warm_started_from = _warm_start(model, warm_start_dir)
    model.fit(
        train,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        validation_data=evaluation,
        validation_steps=plan.validation_steps,
        verbose=2,
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir), *plan.callbacks()],
    )
    return model, warm_started_from


def _train_gbt(train_data, eval_data, spec, tf_transform_output, seed: int) -> gbt.TreeEnsemble:
    """LightGBM's trees on the transformed train split, stopped early on the eval split, as a
    TensorFlow evaluator."""
    import numpy as np

    numeric, categorical = _inputs(spec, tf_transform_output)
    # Buckets are ordered: numbers. Ids without an order are LightGBM categories when few enough.
    as_categories = [
        key for key, size in categorical.items() if size <= gbt.MAX_CATEGORIES and not _is_bucketized(spec, key)
    ]
    names = tuple(numeric + list(categorical))

    def data(columns):
        x = np.stack([columns[name].astype(np.float64) for name in names], axis=1)
        return gbt.Data(x, columns[spec.label.name].astype(np.float64), names)

    task = spec.label.task
    if task is Task.BINARY:
        objective = "binary"
    elif task is Task.MULTICLASS:
        objective = "multiclass"
    else:
        objective = "huber" if spec.trainer.loss is RegressionLoss.HUBER else "regression"
    config = spec.trainer.gbt
    classes = len(class_names(spec, tf_transform_output)) if task is Task.MULTICLASS else 1
    params = gbt.lightgbm_params(objective, classes, config, seed)
    if objective == "huber":
        params["alpha"] = 1.0  # delta: one standard deviation of the z-scored target, as the DNN's
    booster = gbt.train(
        data(train_data), data(eval_data), as_categories, params, config.num_trees, config.early_stopping_rounds
    )
    logging.info(
        "Trained %d LightGBM iterations (%d categorical inputs of %d)",
        booster.current_iteration(),
        len(as_categories),
        len(names),
    )
    return gbt.TreeEnsemble(gbt.flatten(booster.dump_model()), booster.model_to_string())


def _is_bucketized(spec, key: str) -> bool:
    return any(
        model_inputs.transformed_name(name) == key and feature.type is FeatureType.BUCKETIZED
        for name, feature in spec.features.items()
    )


def choose(candidates: dict[str, Any], eval_data: dict[str, Any], spec, input_names: list[str]) -> dict[str, Any]:
    """trainer.model auto: which candidate to export, by the paired comparison on the whole eval
    split in model_choice. Returns the record written to assets.extra/TRAINER_CHOICE."""
    labels = eval_data[spec.label.name]
    features = {k: eval_data[k].reshape(-1, 1) for k in input_names}
    predictions = {}
    for name, model in candidates.items():
        if isinstance(model, gbt.TreeEnsemble):
            predictions[name] = model.predict(features)
        else:
            predictions[name] = model.predict(features, batch_size=splits.READ_BATCH_SIZE, verbose=0)
    return model_choice.decide(spec.label.task, spec.trainer.loss, labels, predictions)


def _seed(seed: int | None, spec: model_inputs.ModelSpec) -> int:
    """`seed`, else trainer.seed."""
    return seed if seed is not None else spec.trainer.seed


def _warm_start(model: keras.Model, serving_dir: str) -> str | None:
    """Loads the newest served model's weights where their shapes still fit; returns its path.

    Layers whose shapes changed (a vocabulary grew, the tuner chose other units) keep their
    fresh initialisation; Keras skips them with a warning.
    """
    served = latest_served(serving_dir) if serving_dir else None
    weights = tf.io.gfile.join(served, ASSETS_EXTRA, WEIGHTS_FILE) if served else None
    if not weights or not tf.io.gfile.exists(weights):
        logging.info("No served model with Keras weights under %r: training from scratch", serving_dir)
        return None
    model.load_weights(weights, skip_mismatch=True)
    logging.info("Warm-started from %s", weights)
    return served


def export(
    model: keras.Model,
    spec: model_inputs.ModelSpec,
    tf_transform_output: tft.TFTransformOutput,
    export_dir: str,
    warm_started_from: str | None = None,
    choice: dict[str, Any] | None = None,
) -> None:
    """Saves the model with its serving signatures as the SavedModel TF Serving loads, and in
    assets.extra/ (which TF Serving ignores) its Keras weights for warm-starting the next one,
    or for gradient-boosted trees (a gbt.TreeEnsemble) LightGBM's own text model, and
    `choice`, which model trainer.model chose and why (TRAINER_CHOICE).

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
    signatures = {
        name: function.get_concrete_function()
        for name, function in _serving_functions(model, spec, tf_transform_output, tft_layer).items()
    }
    root = tf.Module()
    captured = {}
    for concrete in signatures.values():
        for variable in concrete.variables:
            captured.setdefault(id(variable), variable)
    # In name order, not capture order: the same model then saves the same graph (fingerprint).
    root.model_variables = sorted(captured.values(), key=lambda v: v.name)
    root.tft_layer = tft_layer  # its vocabularies and hash tables are saved as the model's assets
    tf.saved_model.save(root, export_dir, signatures=signatures)
    if REGRESS_SIGNATURE in signatures:
        mark_signature_method(export_dir, REGRESS_SIGNATURE, tf.saved_model.REGRESS_METHOD_NAME)
    else:
        mark_classification_signature(export_dir)
    extra = tf.io.gfile.join(export_dir, ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    if isinstance(model, gbt.TreeEnsemble):
        with tf.io.gfile.GFile(tf.io.gfile.join(extra, GBT_MODEL_FILE), "w") as f:
            f.write(model.model_text)
    else:
        model.save_weights(tf.io.gfile.join(extra, WEIGHTS_FILE))
    if choice:
        with tf.io.gfile.GFile(tf.io.gfile.join(extra, TRAINER_CHOICE), "w") as f:
            f.write(json.dumps(choice, indent=2, sort_keys=True) + "\n")
    if spec.label.task is not Task.REGRESSION:
        with tf.io.gfile.GFile(tf.io.gfile.join(extra, CLASSES_FILE), "w") as f:
            f.write("".join(f"{name}\n" for name in class_names(spec, tf_transform_output)))
    if warm_started_from:
        with tf.io.gfile.GFile(tf.io.gfile.join(extra, WARM_STARTED_FROM), "w") as f:
            f.write(warm_started_from + "\n")


def mark_classification_signature(export_dir: str, key: str = CLASSIFY_SIGNATURE) -> None:
    """Gives signature `key` TF Serving's classify method in the saved SavedModel."""
    mark_signature_method(export_dir, key, tf.saved_model.CLASSIFY_METHOD_NAME)


def mark_signature_method(export_dir: str, key: str, method: str) -> None:
    """Gives signature `key` TF Serving's classify or regress `method` in the saved SavedModel.

    TF2's savers (`tf.saved_model.save`, Keras' ExportArchive) write every signature with the
    predict method and offer no way to choose another, and TF Serving's Classify and Regress
    APIs refuse those. The method name is only a label on the SignatureDef, so it is set in
    saved_model.pb, and the fingerprint that hashes that file is written again:
    `fingerprinting_utils` is TensorFlow's private module, used because no public API writes
    a fingerprint. The signature must have the single input "inputs" (classifier.cc and
    regressor.cc look it up by that name); regress also the single output "outputs".
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = tf.io.gfile.join(export_dir, tf.saved_model.SAVED_MODEL_FILENAME_PB)
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved.ParseFromString(f.read())
    signature = saved.meta_graphs[0].signature_def[key]
    kind = "regress" if method == tf.saved_model.REGRESS_METHOD_NAME else "classify"
    if set(signature.inputs) != {tf.saved_model.CLASSIFY_INPUTS}:
        raise ValueError(
            f"signature {key!r} needs the single input {tf.saved_model.CLASSIFY_INPUTS!r} "
            f"to be a {kind} signature; it has {sorted(signature.inputs)}"
        )
    if kind == "regress" and set(signature.outputs) != {tf.saved_model.REGRESS_OUTPUTS}:
        raise ValueError(
            f"signature {key!r} needs the single output {tf.saved_model.REGRESS_OUTPUTS!r} "
            f"to be a regress signature; it has {sorted(signature.outputs)}"
        )
    signature.method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved.SerializeToString())
    fingerprinting_utils.write_fingerprint(export_dir)
