"""The zoo (tests/pipeline/zoo_data.py) as a new user meets the pipeline: in a directory outside
the checkout, `tfxp init DATA --label COLUMN --output config.yaml`, then `tfxp run --config
config.yaml` with no edit and the defaults a user gets, then the pushed model answers `tfxp
predict` through `tfxp serve`, the rows named by the file's own header (iris: `sepal length
(cm)`, `1ère mesure`; wine: `od280/od315_of_diluted_wines`, which become feature keys).

`tfxp init` writes no evaluator thresholds, so every first model is judged by its task's
first-run gate (it must beat the naive predictor of its task on the test split) and pushes.
About a minute per data set here (2 cores).
"""

from __future__ import annotations

import csv
import json
import pathlib
import re
import signal
import subprocess
import sys

import pytest
import yaml

from contracts.column_names import feature_key
from tests.pipeline.zoo_data import ZOO

pytestmark = pytest.mark.slow


def _tfxp(cwd: pathlib.Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfxp", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def first_run(request, tmp_path_factory):
    """init then run, from a fresh directory under the system's temporary directory."""
    home = tmp_path_factory.mktemp(request.param)
    case = ZOO[request.param](home)
    init = _tfxp(home, "init", case.path.name, "--label", case.label, "--output", "config.yaml")
    assert init.returncode == 0, init.stderr
    run = _tfxp(home, "run", "--config", "config.yaml")
    return request.param, case, home, run


@pytest.mark.parametrize("first_run", list(ZOO), indirect=True)
def test_the_run_completes_on_the_config_as_written(first_run):
    _, _, home, run = first_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"outputs under {home / 'output'}" in run.stdout
    assert re.search(r"^  Pusher +COMPLETE", run.stdout, re.M), run.stdout[-2000:]
    assert "test-split metrics:" in run.stdout


class Server:
    """`tfxp serve` of the pushed model, as a user starts it from the same directory (the
    stand-in, whose banner gives the ports it picked)."""

    def __init__(self, home: pathlib.Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfxp", "serve", "--config", "config.yaml", "--engine", "standin"]
            + ["--rest-port", "0", "--grpc-port", "0"],
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        banner, ports = self.process.stdout.readline(), self.process.stdout.readline()
        match = re.search(r"REST: http://127.0.0.1:(\d+)", ports)
        assert match, (banner, ports, self.process.stderr.read() if self.process.poll() is not None else "")
        self.url = f"http://127.0.0.1:{match[1]}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def _pushed_and_predicting(first_run) -> None:
    _, case, home, run = first_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "blessed: yes" in run.stdout, run.stdout[-1500:]
    pushed = re.search(r"pushed model: (\S+)", run.stdout)[1]
    assert pathlib.Path(pushed).is_dir()
    # Five rows of the user's file, the label column left out, as a client sends them.
    with open(case.path, newline="") as f:
        rows = [{k: v for k, v in row.items() if k != case.label} for row, _ in zip(csv.DictReader(f), range(5))]
    with open(home / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    server = Server(home)
    try:
        done = _tfxp(home, "predict", "rows.csv", "--config", "config.yaml", "--url", server.url, timeout=120)
        metadata = _tfxp(home, "predict", "--metadata", "--config", "config.yaml", "--url", server.url, timeout=120)
    finally:
        server.stop()
    # The model's raw inputs are the feature keys of the columns the config names by header.
    signatures = json.loads(metadata.stdout)["metadata"]["signature_def"]["signature_def"]
    written = yaml.safe_load((home / "config.yaml").read_text())["features"]
    assert {feature_key(name) for name in written} <= set(signatures["serve_raw"]["inputs"])
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["row"] for a in answers] == [1, 2, 3, 4, 5]
    assert all(len(a) > 1 for a in answers)  # a prediction beside the row number


@pytest.mark.parametrize("first_run", list(ZOO), indirect=True)
def test_the_first_run_pushes_and_the_model_answers_predict(first_run):
    _pushed_and_predicting(first_run)
