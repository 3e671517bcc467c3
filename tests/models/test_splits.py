"""Reading the transformed splits: the datasets' options, and when the splits are held in memory."""

import types

import pytest
import tensorflow as tf

from models import model_inputs, splits, training_plan

ROWS = 10


@pytest.fixture(scope="module")
def output(transformed):
    return transformed[0]


def _spec(model_config, model: str):
    return model_inputs.from_custom_config({**model_config, "trainer": {"model": model}})


class _Accessor:
    """A data accessor whose datasets hold two rows, counting the splits it is asked to read."""

    def __init__(self, label: str):
        self.label, self.reads = label, []

    def tf_dataset_factory(self, file_pattern, options, schema):
        self.reads.append(file_pattern)
        return tf.data.Dataset.from_tensors(({"x": tf.constant([1.0, 2.0])}, tf.constant([0, 1])))


def test_the_trainers_datasets_start_no_autotuning_thread(model_config, output):
    """Each tf.data iterator with autotuning starts a model thread, and destroying the iterator
    waits for that thread to wake (up to a minute): Keras leaves every epoch's eval iterator to
    the garbage collector, which then stalled training for 30-60 s at a time."""
    spec = _spec(model_config, "dnn")
    accessor = _Accessor(spec.label.name)
    for evaluation in (False, True):
        dataset = splits.input_fn(["f"], accessor, output, spec, 2, seed=1, evaluation=evaluation)
        assert dataset.options().autotune.enabled is False
    assert tf.data.Dataset.range(1).options().autotune.enabled is not False  # what it would have been
    columns = splits.read_split(["f"], accessor, output, spec)
    assert columns["x"].tolist() == [1.0, 2.0] and columns[spec.label.name].tolist() == [0, 1]


@pytest.fixture(scope="module")
def fn_args(tmp_path_factory):
    """Train and eval files of ROWS records each, as the Trainer is handed them."""
    folder = tmp_path_factory.mktemp("splits")
    for name in ("train", "eval"):
        with tf.io.TFRecordWriter(str(folder / f"{name}.tfrecord")) as writer:
            for _ in range(ROWS):
                writer.write(b"record")
    return types.SimpleNamespace(train_files=[str(folder / "train*")], eval_files=[str(folder / "eval*")])


def _held(fn_args, spec, output):
    accessor = _Accessor(spec.label.name)
    held, rows = splits.held(types.SimpleNamespace(**vars(fn_args), data_accessor=accessor), spec, output)
    return held, rows, accessor.reads


def test_the_network_alone_reads_its_files_when_the_train_split_is_over_the_budget(
    fn_args, model_config, output, monkeypatch
):
    width = len(output.transformed_feature_spec())
    monkeypatch.setattr(training_plan, "IN_MEMORY_BYTES", ROWS * width * 8 - 1)
    held, rows, reads = _held(fn_args, _spec(model_config, "dnn"), output)
    assert (held, rows, reads) == (None, ROWS, [])  # counted once, handed on, nothing read
    monkeypatch.setattr(training_plan, "IN_MEMORY_BYTES", ROWS * width * 8)
    held, rows, reads = _held(fn_args, _spec(model_config, "dnn"), output)
    assert held is not None and rows == 2 and reads == [fn_args.train_files, fn_args.eval_files]


@pytest.mark.parametrize("model", ["gbt", "auto"])
def test_the_trees_always_hold_the_splits(fn_args, model_config, output, monkeypatch, model):
    monkeypatch.setattr(training_plan, "IN_MEMORY_BYTES", 0)
    held, rows, reads = _held(fn_args, _spec(model_config, model), output)
    train, evaluation = held
    assert rows == 2 and reads == [fn_args.train_files, fn_args.eval_files]
    assert train["x"].tolist() == evaluation["x"].tolist() == [1.0, 2.0]
