"""The tf.data options every dataset of the Trainer and the Tuner runs with.

Autotuning is off. Each iterator of an autotuned dataset starts a model thread, and destroying
the iterator waits for that thread to wake, which can take up to a minute. Keras leaves every
epoch's eval iterator to the garbage collector, so autotuning turned young collections in the
Trainer into stalls of 30-60 s (benchmarks/README.md, "The Trainer at 1.5M rows").
"""

from __future__ import annotations

import tensorflow as tf


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset without tf.data's autotuning (the module docstring says why)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
