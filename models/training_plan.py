"""Training settings that follow the data: the batch size, epochs, early stopping and learning
rate schedule of the Trainer, the Tuner's search space and trial budget, and how a categorical
input is encoded; each a plain rule of the row count (or vocabulary size), so a test pins it.

The Trainer and the Tuner count the rows of the transformed splits they read (`count_records`):
TFX gives a `run_fn` the files but not their row count, and the statistics artifact is not
among the Trainer's inputs. An explicit `trainer.train_steps` (or `trainer.batch_size`,
`tuner.train_steps`, ...) overrides the rule it replaces.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Iterable

import keras
import keras_tuner
import tensorflow as tf

# The batch size aims at this many steps per epoch, a power of two within BATCH_BOUNDS: small
# tables get small batches (more updates per epoch), large ones larger (fewer, cheaper steps).
STEPS_PER_EPOCH_TARGET = 200
BATCH_BOUNDS = (32, 1024)
# Training stops at the first of: early stopping (no better eval loss for `patience` epochs),
# MAX_TRAIN_STEPS steps (rounded up to whole epochs), MAX_EPOCHS epochs; at least MIN_EPOCHS.
MAX_TRAIN_STEPS = 10_000
MIN_EPOCHS, MAX_EPOCHS = 3, 100
# Early stopping waits about this many steps without a better eval loss, within PATIENCE_BOUNDS
# epochs (a small table's epoch is a few steps, a noisy signal); the learning rate halves after
# half of that wait.
PATIENCE_STEPS = 600
PATIENCE_BOUNDS = (3, 10)
# The network alone (trainer.model dnn) trains from the splits held in memory when the train
# split's columns take at most this many bytes (8 per value); larger splits are read from their
# files every epoch. The trees (gbt, auto) hold the splits in memory whatever their size.
IN_MEMORY_BYTES = 2**30
# Batches of the eval split, which one pass per epoch scores (unless trainer.eval_steps is set).
EVAL_BATCH_SIZE = 200
# Keras runs up to this many train steps per call of its compiled step (compile's
# steps_per_execution), which saves a return to Python after every step; measured in
# benchmarks/README.md.
MAX_STEPS_PER_EXECUTION = 64

# A categorical input with more ids than this is embedded, at most this wide; with fewer it is
# one-hot (a weight per value, which small vocabularies can afford and learn well).
ONE_HOT_MAX_IDS = 64
MAX_EMBEDDING_DIM = 16

# A Tuner trial trains half an epoch of the train split (settings are compared, not finished),
# at least and at most these many steps.
TRIAL_EPOCH_FRACTION = 0.5
TRIAL_STEP_BOUNDS = (100, 300)
# Trials of the default search: a small table's trials are cheap and its settings matter most.
SMALL_TABLE_ROWS = 5_000
DEFAULT_TRIALS = {"small": 4, "other": 2}
# A time budget (tuner.budget in minutes) stops starting trials after it; this caps their number.
MAX_TRIALS_IN_TIME = 100


def count_records(file_patterns: Iterable[str]) -> int:
    """The records in the TFRecord files matching the patterns (gzip where they end in .gz, as
    Transform writes them)."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    total = 0
    for compression in ("GZIP", ""):
        chosen = [f for f in files if f.endswith(".gz") == (compression == "GZIP")]
        if chosen:
            records = tf.data.TFRecordDataset(chosen, compression_type=compression).batch(4096)
            total += int(records.reduce(tf.constant(0, tf.int64), lambda n, batch: n + tf.size(batch, tf.int64)))
    return total


def batch_size_for(rows: int) -> int:
    """The power of two nearest rows / STEPS_PER_EPOCH_TARGET, within BATCH_BOUNDS."""
    low, high = BATCH_BOUNDS
    return min(high, max(low, 2 ** round(math.log2(max(rows, 1) / STEPS_PER_EPOCH_TARGET))))


def fits_in_memory(rows: int, columns: int) -> bool:
    """Whether `rows` rows of `columns` columns fit IN_MEMORY_BYTES, at 8 bytes per value."""
    return rows * columns * 8 <= IN_MEMORY_BYTES


def steps_for(rows: int, batch_size: int) -> int:
    """Batches in one pass over `rows` rows (a last short batch counts)."""
    return max(1, math.ceil(rows / batch_size))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long the Trainer trains, in what batches, and when it stops."""

    batch_size: int
    steps_per_epoch: int
    epochs: int
    validation_steps: int | None  # None: one pass over the eval split
    patience: int | None  # epochs without a better eval loss before stopping; None: no early stopping

    @property
    def steps_per_execution(self) -> int:
        """`steps_per_call` of this plan's epoch and eval steps."""
        return steps_per_call(self.steps_per_epoch, self.validation_steps)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Early stopping (back to the best epoch's weights) and halving the learning rate on a
        plateau of the eval loss; none for a fixed step count."""
        if self.patience is None:
            return []
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(1, self.patience // 2), min_lr=0.0, verbose=1
            ),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True, verbose=1
            ),
        ]


def steps_per_call(steps: int, eval_steps: int | None = None) -> int:
    """Keras' steps per call (compile's steps_per_execution) for an epoch of `steps` steps and
    `eval_steps` eval steps (None: one pass): their largest common divisor up to
    MAX_STEPS_PER_EXECUTION. Keras runs whole calls, so a call that did not divide the epoch
    would run past its end into the next epoch's batches; dividing it, every epoch trains on
    the batches it trained on one step per call, and the weights are the same to the bit
    (tests/models/test_training_plan.py)."""
    common = math.gcd(steps, eval_steps or steps)
    return max(d for d in range(1, min(common, MAX_STEPS_PER_EXECUTION) + 1) if common % d == 0)


def plan(
    train_rows: int,
    batch_size: int | None = None,
    train_steps: int | None = None,
    eval_steps: int | None = None,
) -> Plan:
    """The Trainer's plan for a train split of `train_rows` rows.

    `train_steps` given: that many steps as one epoch, no early stopping (the explicit override).
    Otherwise epochs of one pass each, until early stopping or the step cap.
    """
    batch = batch_size or batch_size_for(train_rows)
    if train_steps:
        return Plan(batch, train_steps, 1, eval_steps, None)
    per_epoch = steps_for(train_rows, batch)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MAX_TRAIN_STEPS / per_epoch)))
    low, high = PATIENCE_BOUNDS
    patience = min(high, max(low, math.ceil(PATIENCE_STEPS / per_epoch)))
    return Plan(batch, per_epoch, epochs, eval_steps, patience)


def trial_steps(train_rows: int, batch_size: int) -> int:
    """A Tuner trial's steps: TRIAL_EPOCH_FRACTION of an epoch, within TRIAL_STEP_BOUNDS."""
    low, high = TRIAL_STEP_BOUNDS
    return min(high, max(low, math.ceil(TRIAL_EPOCH_FRACTION * steps_for(train_rows, batch_size))))


def unit_choices(train_rows: int) -> list[int]:
    """The first hidden layer's widths the Tuner tries: wider for more rows."""
    if train_rows < 2_000:
        return [8, 16, 32]
    if train_rows < 50_000:
        return [16, 32, 64]
    if train_rows < 500_000:
        return [32, 64, 128]
    return [64, 128, 256]


LEARNING_RATES = [1e-3, 3e-3, 1e-2]


def default_trials(train_rows: int) -> int:
    """Trials of the search when the config sets no budget."""
    return DEFAULT_TRIALS["small" if train_rows <= SMALL_TABLE_ROWS else "other"]


def embedding_dim(num_ids: int) -> int:
    """The width of an embedded categorical input: fast.ai's rule of thumb 1.6 * n^0.56,
    at most MAX_EMBEDDING_DIM."""
    return min(MAX_EMBEDDING_DIM, max(2, round(1.6 * num_ids**0.56)))


def encoded(num_ids: int, ids: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """A categorical input of `num_ids` ids: one-hot up to ONE_HOT_MAX_IDS, embedded above."""
    if num_ids <= ONE_HOT_MAX_IDS:
        return keras.layers.CategoryEncoding(num_tokens=num_ids, output_mode="one_hot")(ids)
    embedded = keras.layers.Embedding(num_ids, embedding_dim(num_ids), name=f"{name}_embedding")(ids)
    return keras.layers.Flatten()(embedded)


class TimeBudgetOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search that starts no trial after `minutes` (from its creation; None: no time
    limit, only max_trials); a trial under way finishes. Which trials fit depends on the
    machine's speed, so a time budget is the one setting whose search is not reproducible; a
    number of trials is."""

    def __init__(self, minutes: float | None, **kwargs):
        super().__init__(**kwargs)
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes

    def populate_space(self, trial_id):
        if self.deadline is not None and time.monotonic() > self.deadline:
            return {"status": "STOPPED", "values": None}  # populate_space's documented stop
        return super().populate_space(trial_id)
