"""The Pusher's label step (components/atomic_pusher/executor.py, label_push) on fake versions:
a first push is stable and canary, a later one lists its version first and then takes the
canary; a version the named server never loads leaves the labels where they were."""

from __future__ import annotations

import socket

from components.atomic_pusher.executor import label_push
from contracts import model_config
from contracts.model_config import CANARY, STABLE, ModelConfig
from tests.serving import fake_saved_model


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_first_push_both_labels_second_the_canary_without_a_server(tmp_path):
    serving = str(tmp_path)
    fake_saved_model.write(tmp_path / "100", "a")
    assert label_push(serving, "taxi", 100, {}) is None
    assert model_config.read_config(serving, "taxi") == ModelConfig("taxi", serving, (100,), {STABLE: 100, CANARY: 100})
    fake_saved_model.write(tmp_path / "200", "b")
    assert label_push(serving, "taxi", 200, {"rollout": "canary"}) is None
    assert model_config.read_config(serving, "taxi") == ModelConfig(
        "taxi", serving, (100, 200), {STABLE: 100, CANARY: 200}
    )


def test_a_serving_directory_from_before_the_config_keeps_its_newest_version_stable(tmp_path):
    serving = str(tmp_path)
    fake_saved_model.write(tmp_path / "100", "a")
    fake_saved_model.write(tmp_path / "200", "b")
    assert label_push(serving, "taxi", 200, {}) is None
    # 100 was what TF Serving's latest policy served before this push: it stays stable.
    assert model_config.read_config(serving, "taxi").labels == {STABLE: 100, CANARY: 200}


def test_a_version_the_server_does_not_load_in_time_leaves_the_labels(tmp_path):
    serving = str(tmp_path)
    fake_saved_model.write(tmp_path / "100", "a")
    label_push(serving, "taxi", 100, {})
    fake_saved_model.write(tmp_path / "200", "b")
    url = f"http://127.0.0.1:{_closed_port()}"
    why = label_push(serving, "taxi", 200, {"serving_url": url, "label_wait_seconds": 0.5})
    assert why.startswith("the labels stay where they were: version 200 is unreachable")
    assert "tfxp canary 200" in why
    # Listed (so a server loads it), not labelled.
    assert model_config.read_config(serving, "taxi") == ModelConfig(
        "taxi", serving, (100, 200), {STABLE: 100, CANARY: 100}
    )
