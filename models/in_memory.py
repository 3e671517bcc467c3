"""The network's input from splits held in memory, as NumPy columns (`splits.read_split`).

Read from the transformed TFRecords, every epoch decompresses and parses the whole train split
again, which took most of an epoch's time. Held in memory, a split is read once, and the trees
of `trainer.model: auto` train on the same arrays. `training_plan.fits_in_memory` says when.

Training batches follow a fresh permutation of all rows on every pass, drawn from the seed and
the pass's number with a stateless shuffle, so the same seed gives the same batches in every
run. Evaluation batches keep the split's order, so every epoch's eval loss is over the same rows.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from models.dataset_options import without_autotune


def training_batches(columns: Mapping[str, np.ndarray], label: str, batch_size: int, seed: int) -> tf.data.Dataset:
    """(features, label) batches without end: pass after pass over every row, each pass in its
    own seeded order, its last batch short when the rows do not divide evenly."""
    tensors = {name: tf.constant(values) for name, values in columns.items()}
    rows = len(columns[label])

    def one_pass(number):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(rows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), number])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.counter().flat_map(one_pass)
    return without_autotune(batches.map(lambda rows_: _take(tensors, label, rows_)))


def evaluation_batches(
    columns: Mapping[str, np.ndarray], label: str, batch_size: int, steps: int | None = None
) -> tf.data.Dataset:
    """(features, label) batches in the split's order: one pass, or `steps` batches per epoch of
    a repeated split when steps is given."""
    tensors = {name: tf.constant(values) for name, values in columns.items()}
    batches = tf.data.Dataset.range(len(columns[label])).batch(batch_size)
    if steps:
        batches = batches.repeat()
    return without_autotune(batches.map(lambda rows_: _take(tensors, label, rows_)))


def _take(tensors: Mapping[str, tf.Tensor], label: str, rows):
    """The batch of `rows`: the features by name, and the label."""
    features = {name: tf.gather(values, rows) for name, values in tensors.items() if name != label}
    return features, tf.gather(tensors[label], rows)
