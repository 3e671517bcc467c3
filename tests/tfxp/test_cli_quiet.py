"""Commands that need no TensorFlow do not load it, so they print nothing of its start-up.

TensorFlow's C++ logging writes its start-up lines to stderr on import, whatever
TF_CPP_MIN_LOG_LEVEL says (README, The `tfxp` command); only not importing it keeps them away.
These commands read the config, ML Metadata and the serving directory, or talk REST.
"""

import socket
import subprocess
import sys

import pytest

from pipeline.config import load_config
from pipeline.metadata import sqlite_config

QUIET = [
    ["runs", "--help"],
    ["runs"],
    ["doctor"],
    ["rollback", "--help"],
    ["promote", "--help"],
    ["canary", "--help"],
    ["init", "--help"],
    ["lineage", "--help"],
    ["config"],
    ["--help"],
]


def _tfxp(tmp_path, *args):
    # The command, then whether it loaded TensorFlow, in one interpreter.
    script = (
        "import sys\nfrom tfxp.main import main\ntry:\n    code = main(sys.argv[1:])\n"
        "except SystemExit as err:\n    code = err.code\n"
        "print('tensorflow' in sys.modules, code, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args, *(["--set", f"output_dir={tmp_path}"] if "--help" not in args else [])],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def empty_store(tmp_path):
    from ml_metadata import metadata_store

    path = load_config(None, [f"output_dir={tmp_path}"]).metadata_path
    metadata_store.MetadataStore(sqlite_config(path))  # creates the store's tables, records nothing
    return path


@pytest.mark.parametrize("args", QUIET, ids=" ".join)
def test_commands_without_tensorflow_print_only_their_own_lines(args, tmp_path, empty_store):
    result = _tfxp(tmp_path, *args)
    assert result.stderr == "False 0\n", result.stderr  # nothing but the probe's own line
    assert result.stdout


def test_runs_on_an_empty_store_says_so_on_stdout(tmp_path, empty_store):
    result = _tfxp(tmp_path, "runs")
    assert result.stdout == f"no runs of 'taxi-big-tipper' recorded in {empty_store}\n"


def test_runs_without_a_store_is_one_line_on_stderr(tmp_path):
    result = _tfxp(tmp_path, "runs")
    store = load_config(None, [f"output_dir={tmp_path}"]).metadata_path
    assert result.stderr == f"error: no ML Metadata store at {store}: run the pipeline first\nFalse 2\n"


def test_the_program_itself_prints_nothing_else(tmp_path, empty_store):
    # The real entry point (python -m tfxp), with its prompt exit.
    result = subprocess.run(
        [sys.executable, "-m", "tfxp", "runs", "--set", f"output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_predict_over_rest_says_only_its_own_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = _tfxp(tmp_path, "predict", "--status", "--url", url)
    assert result.stderr == (
        f"error: cannot reach TF Serving at {url} (ConnectionError); is `tfxp serve` "
        "(or tensorflow_model_server) running?\nFalse 1\n"
    )
