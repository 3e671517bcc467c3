"""The Trainer's and the Tuner's input: the transformed train and eval splits, read from their
TFRecords either as batched datasets (`input_fn`, `eval_input`) or whole into NumPy columns
(`read_split`, `held`), which models/in_memory.py batches for the network and the trees train on.

Rows whose class the model does not answer (Transform gives them id -1) are left out in both
forms, so the network trains and is judged on the same rows either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx_bsl.public import tfxio

from models import model_inputs, training_plan
from models.dataset_options import without_autotune
from models.spec import Task, TrainerModel

READ_BATCH_SIZE = 4096  # rows per batch when a split is read whole into NumPy (trees, auto)


def input_fn(
    file_pattern,
    data_accessor,
    tf_transform_output: tft.TFTransformOutput,
    spec: model_inputs.ModelSpec,
    batch_size: int,
    seed: int,
    evaluation: bool = False,
    steps: int | None = None,
) -> tf.data.Dataset:
    """The split's batches: shuffled (seeded) and repeated for training. For `evaluation` in
    file order, once (or repeated when `steps`, trainer.eval_steps, counts the batches): every
    epoch's eval loss, which early stopping and the learning rate schedule follow, is then over
    the same rows in every run (a reshuffled, repeated eval set gave other losses run to run)."""
    passes = {"shuffle": False, "num_epochs": None if steps else 1} if evaluation else {}
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size, label_key=spec.label.name, shuffle_seed=seed, **passes
    )
    dataset = without_autotune(
        data_accessor.tf_dataset_factory(file_pattern, options, tf_transform_output.transformed_metadata.schema)
    )
    if spec.label.task is Task.MULTICLASS:
        dataset = dataset.map(known_classes)
    return dataset if evaluation and not steps else dataset.repeat()


def eval_input(fn_args, tf_transform_output: tft.TFTransformOutput, spec, seed: int, steps: int | None):
    """The eval split as the Tuner's and the Trainer's fit read it: in file order, `steps`
    batches per epoch."""
    return input_fn(
        fn_args.eval_files,
        fn_args.data_accessor,
        tf_transform_output,
        spec,
        training_plan.EVAL_BATCH_SIZE,
        seed,
        evaluation=True,
        steps=steps,
    )


def known_classes(features, label):
    """The rows of a batch whose class is one of the model's (Transform gives the others -1)."""
    keep = tf.reshape(label >= 0, [-1])
    return {k: tf.boolean_mask(v, keep) for k, v in features.items()}, tf.boolean_mask(label, keep)


def held(fn_args, spec, tf_transform_output) -> tuple[tuple[dict, dict] | None, int]:
    """The train and eval splits as NumPy columns when they are held in memory: always for the
    trees (gbt, auto), and for the network alone when the train split fits
    training_plan.IN_MEMORY_BYTES; else None (the network reads the files every epoch). Then
    the train split's rows, counted once."""
    if spec.trainer.model is TrainerModel.DNN:
        rows = training_plan.count_records(fn_args.train_files)
        width = len(tf_transform_output.transformed_feature_spec())
        if not training_plan.fits_in_memory(rows, width):
            logging.info("The train split (%d rows, %d columns) is read from its files every epoch", rows, width)
            return None, rows
    train = read_split(fn_args.train_files, fn_args.data_accessor, tf_transform_output, spec)
    evaluation = read_split(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, spec)
    return (train, evaluation), len(train[spec.label.name])


def read_split(file_pattern, data_accessor, tf_transform_output: tft.TFTransformOutput, spec) -> dict[str, Any]:
    """One transformed split as NumPy arrays, {input or label name: [n]}, in file order (rows
    of classes the model does not answer left out, as in training the network)."""
    dataset = without_autotune(
        data_accessor.tf_dataset_factory(
            file_pattern,
            tfxio.TensorFlowDatasetOptions(
                batch_size=READ_BATCH_SIZE, label_key=spec.label.name, shuffle=False, num_epochs=1
            ),
            tf_transform_output.transformed_metadata.schema,
        )
    )
    if spec.label.task is Task.MULTICLASS:
        dataset = dataset.map(known_classes)
    columns: dict[str, list] = {}
    for features, label in dataset.as_numpy_iterator():
        for name, value in {**features, spec.label.name: label}.items():
            columns.setdefault(name, []).append(np.asarray(value).reshape(-1))
    if not columns:
        raise ValueError(f"no examples in {file_pattern}: the split is empty")
    return {name: np.concatenate(parts) for name, parts in columns.items()}
