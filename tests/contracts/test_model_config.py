"""The model config contract (contracts/model_config.py): the text-format ModelServerConfig the
Pusher and `tfxp promote` / `rollback` write, its atomic write, and the label rules."""

from __future__ import annotations

import os

import pytest

from contracts import model_config
from contracts.model_config import CANARY, PREVIOUS, STABLE, ModelConfig, ModelConfigError

NAME, BASE = "taxi", "/srv/serving/taxi"


def test_render_and_parse_round_trip_as_tf_serving_s_proto():
    config = ModelConfig(NAME, BASE, (1, 2), {STABLE: 1, CANARY: 2})
    text = model_config.render(config)
    assert "model_version_policy {\n      specific {\n        versions: 1\n        versions: 2" in text
    assert 'version_labels {\n      key: "canary"\n      value: 2' in text
    assert model_config.parse(text, NAME) == config
    # What TF Serving itself parses (tensorflow_serving/config/model_server_config.proto).
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    entry = parsed.model_config_list.config[0]
    assert entry.base_path == BASE and list(entry.model_version_policy.specific.versions) == [1, 2]


def test_a_label_on_a_version_the_config_does_not_load_is_refused():
    with pytest.raises(ModelConfigError, match="label 'canary' names version 3, which the config does not load"):
        model_config.render(ModelConfig(NAME, BASE, (1, 2), {STABLE: 1, CANARY: 3}))


@pytest.mark.parametrize(
    "text, wanted",
    [
        ("model_config_list { config { name: 'taxi' ", "is not a text-format ModelServerConfig"),
        ("model_config_list { config { name: 'other' base_path: '/x' } }", "has no model 'taxi' (models: other)"),
        (
            "model_config_list { config { name: 'taxi' base_path: '/x' model_version_policy { all {} } } }",
            "model_version_policy all is not handled",
        ),
    ],
)
def test_a_bad_file_is_one_line(text, wanted):
    with pytest.raises(ModelConfigError) as err:
        model_config.parse(text, NAME, "models.config")
    assert wanted in str(err.value) and "\n" not in str(err.value)


def test_the_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    first = ModelConfig(NAME, str(tmp_path), (1,), {STABLE: 1, CANARY: 1})
    path = model_config.write_config(str(tmp_path), first)
    assert os.listdir(tmp_path) == [model_config.CONFIG_FILE]
    assert model_config.read_config(str(tmp_path), NAME) == first

    # A write that fails before the rename leaves the old file whole and no temporary file.
    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        model_config.write_config(str(tmp_path), first.relabelled(canary=None))
    assert os.listdir(tmp_path) == [model_config.CONFIG_FILE]
    assert model_config.read_config(str(tmp_path), NAME) == first
    assert open(path).read() == model_config.render(first)


def test_a_first_push_is_stable_and_canary_in_one_step():
    listed, labelled = model_config.plan_push(None, NAME, BASE, 10, CANARY)
    assert listed == ModelConfig(NAME, BASE, (10,), {})
    assert labelled == ModelConfig(NAME, BASE, (10,), {STABLE: 10, CANARY: 10})
    # New labels only: TF Serving takes them with --allow_version_labels_for_unavailable_models.
    assert not model_config.moves_a_label(ModelConfig(NAME, BASE), labelled)


def test_a_second_push_is_listed_first_then_the_canary_moves():
    first = ModelConfig(NAME, BASE, (10,), {STABLE: 10, CANARY: 10})
    listed, labelled = model_config.plan_push(first, NAME, BASE, 20, CANARY)
    assert listed == ModelConfig(NAME, BASE, (10, 20), {STABLE: 10, CANARY: 10})
    assert labelled == ModelConfig(NAME, BASE, (10, 20), {STABLE: 10, CANARY: 20})
    assert model_config.moves_a_label(first, labelled)
    # A third push replaces the canary; the version no label names is no longer loaded.
    _, third = model_config.plan_push(labelled, NAME, BASE, 30, CANARY)
    assert third == ModelConfig(NAME, BASE, (10, 30), {STABLE: 10, CANARY: 30})


def test_rollout_stable_moves_both_labels_and_keeps_the_old_stable_as_previous():
    first = ModelConfig(NAME, BASE, (10,), {STABLE: 10, CANARY: 10})
    _, labelled = model_config.plan_push(first, NAME, BASE, 20, STABLE)
    assert labelled == ModelConfig(NAME, BASE, (10, 20), {STABLE: 20, CANARY: 20, PREVIOUS: 10})


def test_stable_version_is_the_label_else_the_newest(tmp_path):
    assert model_config.stable_version(str(tmp_path), NAME, [1, 2]) == 2
    model_config.write_config(str(tmp_path), ModelConfig(NAME, str(tmp_path), (1, 2), {STABLE: 1, CANARY: 2}))
    assert model_config.stable_version(str(tmp_path), NAME, [1, 2]) == 1
    # A stable version whose directory is gone is not served: the newest complete one is.
    assert model_config.stable_version(str(tmp_path), NAME, [2]) == 2
    assert model_config.stable_version(str(tmp_path), NAME, []) is None


def test_not_available_message_is_tf_serving_s():
    # server_core.cc UpdateModelVersionLabelMap.
    assert model_config.not_available_message(7, NAME) == (
        "Request to assign label to version 7 of model taxi, which is not currently available for inference"
    )


def test_labels_of_names_the_labels_on_a_version_now(tmp_path):
    serving = str(tmp_path)
    assert model_config.labels_of(serving, 1) == []  # no config file: no labels, no error
    model_config.write_config(serving, ModelConfig(NAME, serving, (1, 2), {STABLE: 1, PREVIOUS: 1, CANARY: 2}))
    assert model_config.labels_of(serving, 1) == [STABLE, PREVIOUS]
    assert model_config.labels_of(serving, 2) == [CANARY]
    assert model_config.labels_of(serving, 3) == []
    with open(model_config.config_path(serving), "w") as f:
        f.write("model_config_list { config { name: ")
    assert model_config.labels_of(serving, 1) == []  # a damaged file must not fail a summary
