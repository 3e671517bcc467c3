"""The tfxp command's handling of bad input: one line on stderr, a non-zero exit, no traceback."""

import importlib
import json
import subprocess
import sys

import pytest

from tests.conftest import TINY_CSV
from tfxp.commands import EXIT_BAD_INPUT
from tfxp.main import EXIT_CODES, main


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "data.path=/no/such/data"], "data path /no/such/data does not exist"),
        (["--set", "trainer.bogus=1"], "unknown option 'bogus'"),
        (
            ["--set", "features.nope.type=numeric", "--set", f"data.path={TINY_CSV}"],
            "feature column(s) 'nope' named in the config are not in",
        ),
        (["--config", "/no/such.yaml"], "config file /no/such.yaml does not exist"),
        (["--set", "data.path=[unclosed"], "override 'data.path=[unclosed': the value is not valid YAML"),
        (
            ["--set", f"data.path={TINY_CSV}", "--set", "output_dir=/proc/x"],
            "output directory /proc/x cannot be written",
        ),
    ],
)
def test_run_rejects_bad_input_before_starting(args, message, capsys, tmp_path):
    code = main(["run", "--set", f"output_dir={tmp_path}", *args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "serving").exists()


def test_empty_csv_in_a_subprocess(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfxp",
            "run",
            "--set",
            f"data.path={empty}",
            "--set",
            f"output_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert f"error: data file {empty} is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_values_in_a_subprocess_get_one_line_and_exit_2(tmp_path):
    lines = TINY_CSV.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    row = lines[5].split(",")
    row[header.index("trip_miles")] = "1e400"
    data = tmp_path / "data.csv"
    data.write_text("".join([*lines[:5], ",".join(row), *lines[6:]]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfxp",
            "run",
            "--set",
            f"data.path={data}",
            "--set",
            f"output_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr == (
        f"error: data file {data}, line 6, column 'trip_miles': '1e400' is not finite; "
        "give a finite number, or leave the cell empty to use the feature's default\n"
    )
    assert not (tmp_path / "out").exists()  # nothing written before the data passed


def test_runs_without_a_store_says_so(capsys, tmp_path):
    assert main(["runs", "--set", f"output_dir={tmp_path}"]) == EXIT_BAD_INPUT
    assert "run the pipeline first" in capsys.readouterr().err


def test_config_prints_the_resolved_values(capsys):
    assert main(["config", "--set", "trainer.train_steps=42"]) == 0
    assert '"train_steps": 42' in capsys.readouterr().out


def test_the_program_exits_promptly_with_its_output_flushed():
    # entry_point ends the process with os._exit: the whole output must still arrive.
    result = subprocess.run(
        [sys.executable, "-m", "tfxp", "config", "--set", "trainer.train_steps=42"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["trainer"]["train_steps"] == 42


@pytest.mark.parametrize("name", sorted(EXIT_CODES))
def test_each_error_the_exit_codes_name_is_a_class_at_that_path(name):
    # The table names its errors, so that main imports none of them: a moved one must move here too.
    module, _, qualname = name.rpartition(".")
    error = getattr(importlib.import_module(module), qualname)
    assert issubclass(error, Exception) and f"{error.__module__}.{error.__qualname__}" == name
