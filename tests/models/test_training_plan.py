"""The rules that size training to the data (models/training_plan.py): batch size and steps from
the row count, early stopping, the Tuner's budget and space, one-hot or embedding by vocabulary
size; and the numeric feature option they pair with, log_transform."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import model as model_lib
from models import model_inputs, training_plan
from models.spec import FeatureSpec, TunerConfig, parse_budget


@pytest.mark.parametrize(
    "rows, batch",
    [(10, 32), (400, 32), (6_000, 32), (12_000, 64), (54_000, 256), (270_000, 1024), (5_000_000, 1024)],
)
def test_the_batch_size_grows_with_the_rows_within_bounds(rows, batch):
    assert training_plan.batch_size_for(rows) == batch


def test_an_epoch_is_one_pass_over_the_train_rows():
    plan = training_plan.plan(12_000)
    assert (plan.batch_size, plan.steps_per_epoch) == (64, math.ceil(12_000 / 64))
    assert plan.validation_steps is None  # one pass over the eval split
    assert plan.epochs == math.ceil(training_plan.MAX_TRAIN_STEPS / plan.steps_per_epoch)
    assert plan.patience == math.ceil(training_plan.PATIENCE_STEPS / plan.steps_per_epoch)


def test_small_tables_train_more_epochs_with_more_patience_large_ones_fewer():
    small, large = training_plan.plan(400), training_plan.plan(10_000_000)
    assert (small.steps_per_epoch, small.epochs, small.patience) == (13, training_plan.MAX_EPOCHS, 10)
    assert (large.steps_per_epoch, large.epochs, large.patience) == (9766, training_plan.MIN_EPOCHS, 3)


def test_explicit_steps_and_batch_size_override_the_rules():
    plan = training_plan.plan(12_000, batch_size=100, train_steps=300, eval_steps=7)
    assert (plan.batch_size, plan.steps_per_epoch, plan.epochs, plan.validation_steps) == (100, 300, 1, 7)
    assert plan.patience is None and plan.callbacks() == []


@pytest.mark.parametrize(
    "steps, eval_steps, per_call",
    [
        (188, None, 47),  # the bundled sample's epoch: 4 x 47
        (1173, None, 51),  # 1.5M rows: 3 x 17 x 23, and 69 is over the cap
        (197, None, 1),  # a prime: one step per call, as before
        (64, None, 64),
        (300, 7, 1),  # the eval steps must divide too
        (300, 20, 20),
    ],
)
def test_steps_per_call_divide_the_epoch_within_the_cap(steps, eval_steps, per_call):
    plan = training_plan.Plan(64, steps, 3, eval_steps, None)
    assert plan.steps_per_execution == per_call
    assert steps % per_call == 0 and per_call <= training_plan.MAX_STEPS_PER_EXECUTION


def _trained_weights(transformed, spec, steps_per_execution):
    output, features = transformed
    features = dict(features)
    labels = tf.reshape(features.pop(spec.label.name), [-1, 1])
    x = {name: tf.reshape(values, [-1, 1]) for name, values in features.items()}
    keras.utils.set_random_seed(7)
    model = model_lib._build_model(model_lib._hyperparameters(spec), spec, output, steps_per_execution)
    data = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8).repeat()
    model.fit(data, epochs=3, steps_per_epoch=8, verbose=0)
    return model.get_weights()


def test_steps_per_call_that_divide_the_epoch_train_the_same_weights_to_the_bit(transformed, model_config):
    """What Plan.steps_per_execution relies on. A count that does not divide the epoch runs past
    its end (3 calls of 3 steps for an epoch of 8), so it trains other weights: the comparison
    can tell."""
    spec = model_inputs.from_custom_config(model_config)
    one = _trained_weights(transformed, spec, 1)
    assert all(np.array_equal(a, b) for a, b in zip(one, _trained_weights(transformed, spec, 4), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(one, _trained_weights(transformed, spec, 3), strict=True))


def test_the_plan_stops_early_on_the_eval_loss_and_keeps_the_best_weights():
    stop, schedule = None, None
    for callback in training_plan.plan(12_000).callbacks():
        if isinstance(callback, keras.callbacks.EarlyStopping):
            stop = callback
        if isinstance(callback, keras.callbacks.ReduceLROnPlateau):
            schedule = callback
    assert stop.monitor == "val_loss" and stop.restore_best_weights and stop.patience == 4
    assert schedule.monitor == "val_loss" and schedule.factor == 0.5 and schedule.patience == 2


def test_count_records_counts_gzipped_and_plain_tfrecords(tmp_path):
    for name, options, n in (("a.gz", "GZIP", 5), ("b.gz", "GZIP", 4097), ("c", None, 3)):
        with tf.io.TFRecordWriter(str(tmp_path / name), options=options) as writer:
            for i in range(n):
                writer.write(b"x%d" % i)
    assert training_plan.count_records([os.path.join(tmp_path, "*")]) == 5 + 4097 + 3
    assert training_plan.count_records([os.path.join(tmp_path, "*.gz")]) == 5 + 4097


@pytest.mark.parametrize("rows, trials, widths", [(400, 4, [8, 16, 32]), (12_000, 2, [16, 32, 64])])
def test_the_search_is_sized_to_the_rows(rows, trials, widths):
    assert training_plan.default_trials(rows) == trials
    assert training_plan.unit_choices(rows) == widths
    assert training_plan.trial_steps(rows, training_plan.batch_size_for(rows)) == 100


def test_a_trial_trains_half_an_epoch_within_bounds():
    assert training_plan.trial_steps(54_000, 128) == math.ceil(math.ceil(54_000 / 128) / 2) == 211
    assert training_plan.trial_steps(5_000_000, 1024) == training_plan.TRIAL_STEP_BOUNDS[1]


def test_the_search_space_keeps_the_configured_values(model_config):
    spec = model_inputs.from_custom_config({**model_config, "trainer": {"hidden_units": [24], "learning_rate": 0.02}})
    hp = model_lib._hyperparameters(spec, 400)
    assert hp.space[1].values == [8, 16, 24, 32] and hp.get("first_units") == 24
    assert hp.get("learning_rate") == 0.02


@pytest.mark.parametrize(
    "budget, parsed",
    [
        (6, (6, None)),
        ("6 trials", (6, None)),
        ("1 trial", (1, None)),
        ("10 minutes", (None, 10.0)),
        ("2.5m", (None, 2.5)),
    ],
)
def test_a_budget_is_trials_or_minutes(budget, parsed):
    assert parse_budget(budget) == parsed


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["tuner.budget=ten minutes"], "tuner.budget: expected a number of trials (6, '6 trials') or minutes"),
        (["tuner.budget=2.5 trials"], "tuner.budget: a number of trials is a whole number"),
        (["tuner.budget=0"], "tuner.budget: must be above 0"),
        (["tuner.budget=3", "tuner.max_trials=3"], "tuner.max_trials: and tuner.budget both bound the search"),
    ],
)
def test_a_bad_budget_is_one_line_naming_the_key(overrides, message):
    from pipeline.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert TunerConfig(budget="3 trials").budget == "3 trials"


def test_a_time_budget_starts_no_trial_after_it():
    hp = keras_tuner_space()
    oracle = training_plan.TimeBudgetOracle(0.0, objective="val_loss", max_trials=5, hyperparameters=hp, seed=1)
    assert oracle.populate_space("0")["status"] == "STOPPED"
    unlimited = training_plan.TimeBudgetOracle(None, objective="val_loss", max_trials=5, hyperparameters=hp, seed=1)
    assert unlimited.populate_space("0")["status"] == "RUNNING"


def keras_tuner_space():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [8, 16])
    return hp


@pytest.mark.parametrize("ids, one_hot", [(2, True), (training_plan.ONE_HOT_MAX_IDS, True), (65, False), (5000, False)])
def test_small_vocabularies_are_one_hot_large_ones_embedded(ids, one_hot):
    inputs = keras.layers.Input(shape=(1,), dtype="int64")
    model = keras.Model(inputs, training_plan.encoded(ids, inputs, "f"))
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    width = model.output.shape[-1]
    if one_hot:
        assert not embeddings and width == ids
    else:
        assert len(embeddings) == 1 and width == training_plan.embedding_dim(ids) <= training_plan.MAX_EMBEDDING_DIM
    out = model(np.array([[0], [ids - 1]]))
    assert out.shape == (2, width)


def test_log_transform_is_a_numeric_option():
    assert FeatureSpec(name="x", type="numeric", log_transform=True).log_transform
    with pytest.raises(ValueError, match="is an option of type numeric, not categorical"):
        FeatureSpec(name="x", type="categorical", log_transform=True)
