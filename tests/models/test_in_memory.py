"""The network's input from splits held in memory: every row once per pass, a new seeded order
each pass, the label beside its own row's features, and no autotuning thread."""

import numpy as np
import tensorflow as tf

from models import in_memory, training_plan


def _columns(rows: int) -> dict:
    ids = np.arange(rows, dtype=np.int64)
    return {"x": ids.astype(np.float32) * 10, "id": ids, "label": ids % 2}


def _passes(dataset, batches: int) -> list[np.ndarray]:
    taken = list(dataset.take(batches).as_numpy_iterator())
    for features, label in taken:
        np.testing.assert_array_equal(features["x"], features["id"] * 10)
        np.testing.assert_array_equal(label, features["id"] % 2)
        assert "label" not in features
    return [features["id"] for features, _ in taken]


def test_each_pass_is_a_new_permutation_of_every_row():
    batch, rows = 4, 10
    per_pass = training_plan.steps_for(rows, batch)
    ids = _passes(in_memory.training_batches(_columns(rows), "label", batch, seed=7), 2 * per_pass)
    assert [len(b) for b in ids[:per_pass]] == [4, 4, 2]  # the last batch of a pass is short
    first, second = np.concatenate(ids[:per_pass]), np.concatenate(ids[per_pass:])
    assert sorted(first) == sorted(second) == list(range(rows))
    assert first.tolist() != list(range(rows)) and first.tolist() != second.tolist()


def test_the_same_seed_gives_the_same_batches_and_another_seed_others():
    columns = _columns(50)
    runs = [_passes(in_memory.training_batches(columns, "label", 8, seed), 14) for seed in (3, 3, 4)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_evaluation_keeps_the_split_order_once_or_repeated_for_steps():
    columns = _columns(10)
    once = _passes(in_memory.evaluation_batches(columns, "label", 4), 100)
    assert [b.tolist() for b in once] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    repeated = _passes(in_memory.evaluation_batches(columns, "label", 4, steps=2), 4)
    assert [b.tolist() for b in repeated] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3]]


def test_no_dataset_starts_an_autotuning_thread():
    """Destroying an autotuned iterator waits for its model thread, up to a minute; Keras leaves
    every epoch's eval iterator to the garbage collector (30-60 s stalls in the Trainer)."""
    columns = _columns(10)
    assert tf.data.Dataset.range(1).options().autotune.enabled is not False
    for dataset in (
        in_memory.training_batches(columns, "label", 4, seed=1),
        in_memory.evaluation_batches(columns, "label", 4),
    ):
        assert dataset.options().autotune.enabled is False


def test_a_split_is_held_in_memory_up_to_the_budget():
    width = 16
    rows = training_plan.IN_MEMORY_BYTES // (8 * width)
    assert training_plan.fits_in_memory(rows, width)
    assert not training_plan.fits_in_memory(rows + 1, width)
