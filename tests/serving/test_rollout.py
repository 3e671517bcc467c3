"""Canary and stable labels end to end on the stand-in, with tiny models as pushed versions:
a first push is stable and canary, a second push the canary only; `/labels/<l>` answers with
each; `tfxp promote` and `tfxp rollback` move the labels while a bounded loopback load (as
tests/serving/test_load.py) sees no failed request; bad input changes nothing.

The versions are tests/serving/tiny_model.py's TinyModel (y = w x + b) with different weights,
so each answer says which version gave it. The labels are written by the Pusher's own
function (components/atomic_pusher/executor.py, label_push) and ops/rollout.py.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import requests

from benchmarks import serving_load
from components.atomic_pusher.executor import label_push
from contracts import model_config
from contracts.model_config import CANARY, PREVIOUS, STABLE
from ops import rollout
from pipeline.config import ConfigError, load_config
from serving.standin.server import StandInServer
from tests.serving.tiny_model import build_model

W = {1: 2.0, 2: 3.0}  # version -> weight: x = 1 answers 2.5 from version 1, 3.5 from version 2


def _answer(url: str, path: str) -> float:
    reply = requests.post(f"{url}{path}:predict", data=json.dumps({"instances": [1.0]}), timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"][0]


def _version_of(answer: float) -> int:
    return {w + 0.5: v for v, w in W.items()}[answer]


def _until(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (AssertionError, KeyError, requests.RequestException):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.1)


@pytest.fixture
def rollout_env(tmp_path):
    config = load_config(None, [f"output_dir={tmp_path}", "monitor.requests=" + str(tmp_path / "requests")])
    serving_dir = config.serving_dir
    os.makedirs(serving_dir)
    build_model(os.path.join(serving_dir, "1"), w=W[1])
    # The first push: no stable yet, so both labels, in one write.
    assert label_push(serving_dir, config.model_name, 1, {}) is None
    assert model_config.read_config(serving_dir, config.model_name).labels == {STABLE: 1, CANARY: 1}
    with StandInServer(
        config.model_name,
        serving_dir,
        rest_port=0,
        grpc_port=0,
        poll_seconds=0.1,
        model_config_file=model_config.config_path(serving_dir),
        config_poll_seconds=0.1,
    ) as server:
        url = f"http://127.0.0.1:{server.rest_port}"
        config = load_config(
            None,
            [f"output_dir={tmp_path}", "monitor.requests=" + str(tmp_path / "requests"), f"pusher.serving_url={url}"],
        )
        model = f"/v1/models/{config.model_name}"
        _until(lambda: _answer(url, f"{model}/labels/stable") == 2.5)
        yield config, server, url, model


def test_push_promote_rollback_move_the_labels_with_no_failed_request(rollout_env):
    config, server, url, model = rollout_env
    assert _version_of(_answer(url, f"{model}/labels/canary")) == 1
    # The second push: listed first, labelled canary once the stand-in has it AVAILABLE.
    build_model(os.path.join(config.serving_dir, "2"), w=W[2])
    settings = {"serving_url": url, "label_wait_seconds": 30}
    assert label_push(config.serving_dir, config.model_name, 2, settings) is None
    _until(lambda: _answer(url, f"{model}/labels/canary") == 3.5)
    assert _version_of(_answer(url, f"{model}/labels/stable")) == 1
    # An unlabelled request gets the highest loaded version, as TF Serving's Latest: the canary.
    assert _version_of(_answer(url, model)) == 2
    assert server.repository.config_error is None

    body = json.dumps({"instances": [1.0]}).encode()
    result, running = {}, threading.Event()

    def load():
        running.set()
        result["load"] = serving_load.run(
            "127.0.0.1", server.rest_port, f"{model}/labels/stable:predict", body, 4, 400, deadline_seconds=120
        )

    thread = threading.Thread(target=load)
    thread.start()
    running.wait()
    change = rollout.promote(config, skip_checks=True)
    assert "live checks skipped (--skip-checks)" in change.message
    assert change.after.labels == {STABLE: 2, CANARY: 2, PREVIOUS: 1}
    _until(lambda: _answer(url, f"{model}/labels/stable") == 3.5)
    change = rollout.rollback(config)
    assert change.after.labels == {STABLE: 1, CANARY: 1} and change.after.versions == (1,)
    _until(lambda: _answer(url, f"{model}/labels/stable") == 2.5)
    overlapped = thread.is_alive()
    thread.join(timeout=150)
    assert overlapped, "the load ended before promote and rollback were seen; raise its request count"
    outcome = result["load"]
    assert dict(outcome.failures) == {} and outcome.ok == outcome.sent == 4 * 400
    # Version 2 is unloaded once no label names it.
    _until(
        lambda: requests.get(f"{url}{model}/versions/2", timeout=30).json()["model_version_status"][0]["state"] == "END"
    )


def test_bad_input_is_one_line_and_changes_nothing(rollout_env):
    config, server, url, model = rollout_env
    path = model_config.config_path(config.serving_dir)
    before = open(path).read()
    cases = [
        (lambda: rollout.promote(config, "99", skip_checks=True), "version 99 is not served"),
        (lambda: rollout.promote(config, "nightly", skip_checks=True), "label 'nightly' does not exist"),
        (lambda: rollout.promote(config, skip_checks=True), "version 1 is already stable"),
        (lambda: rollout.rollback(config), "no previous stable version is recorded"),
        (lambda: rollout.rollback(config, "42"), "version 42 is not in"),
        (lambda: rollout.canary(config, "beta"), "label 'beta' does not exist"),
    ]
    for call, wanted in cases:
        with pytest.raises(ConfigError) as err:
            call()
        assert wanted in str(err.value) and "\n" not in str(err.value)
        assert open(path).read() == before


def test_promote_refuses_without_enough_labelled_canary_traffic(rollout_env):
    config, server, url, model = rollout_env
    build_model(os.path.join(config.serving_dir, "2"), w=W[2])
    assert label_push(config.serving_dir, config.model_name, 2, {"serving_url": url, "label_wait_seconds": 30}) is None
    path = model_config.config_path(config.serving_dir)
    before = open(path).read()
    with pytest.raises(ConfigError, match="not enough labelled canary traffic to judge version 2: 0 labelled"):
        rollout.promote(config)
    assert open(path).read() == before


def test_a_label_on_a_version_not_loaded_is_refused_with_tf_serving_s_message(rollout_env):
    config, server, url, model = rollout_env
    build_model(os.path.join(config.serving_dir, "2"), w=W[2])
    # Written by hand, in one step: the canary moves to a version the server has not loaded.
    model_config.write_config(
        config.serving_dir,
        model_config.ModelConfig(config.model_name, config.serving_dir, (1, 2), {STABLE: 1, CANARY: 2}),
    )
    wanted = (
        f"Request to assign label to version 2 of model {config.model_name}, "
        "which is not currently available for inference"
    )
    _until(lambda: wanted in (server.repository.config_error or ""))
    # As TF Serving: the refused config changes nothing, and its new version does not load.
    assert _version_of(_answer(url, f"{model}/labels/canary")) == 1
    reply = requests.get(f"{url}{model}/versions/2", timeout=30)
    assert reply.status_code == 404
    # An unknown label: server_core.cc GetModelVersionForLabel's INVALID_ARGUMENT.
    reply = requests.post(f"{url}{model}/labels/nightly:predict", data='{"instances": [1.0]}', timeout=30)
    assert reply.status_code == 400 and reply.json()["error"] == "Unrecognized servable version label: nightly"


def test_the_request_log_names_the_version_a_label_sent_the_request_to(rollout_env, tmp_path):
    """Through the logging proxy (kubernetes/serving's sidecar) and the stand-in's own log, a
    /labels/canary request is logged with the canary's version: what `tfxp promote` counts."""
    import glob

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from serving.logging_proxy import LoggingProxy

    config, server, url, model = rollout_env
    build_model(os.path.join(config.serving_dir, "2"), w=W[2])
    assert label_push(config.serving_dir, config.model_name, 2, {"serving_url": url, "label_wait_seconds": 30}) is None
    _until(lambda: _answer(url, f"{model}/labels/canary") == 3.5)  # the config's next poll
    with LoggingProxy(url, str(tmp_path / "proxy-log"), 1.0, port=0) as proxy:
        proxied = f"http://127.0.0.1:{proxy.port}"
        assert _answer(proxied, f"{model}/labels/canary") == 3.5
        assert _answer(proxied, f"{model}/labels/stable") == 2.5
    logged = []
    for path in sorted(glob.glob(str(tmp_path / "proxy-log" / "*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = prediction_log_pb2.PredictionLog.FromString(raw)
            logged.append(record.predict_log.request.model_spec.version.value)
    assert logged == [2, 1]
