"""The trainer tier's plumbing: which Transform outputs it reads, and the result line it parses."""

import json
import os

import pytest

from benchmarks import trainer


def _execution(root, pipeline: str, number: int, mtime: int):
    paths = []
    for output in ("transform_graph", "transformed_examples"):
        path = root / "pipelines" / pipeline / "Transform" / output / str(number)
        path.mkdir(parents=True)
        os.utime(path, (mtime, mtime))
        paths.append(str(path))
    return tuple(paths)


def test_the_newest_transform_execution_is_read(tmp_path):
    _execution(tmp_path, "taxi", 9, 1_000)
    newest = _execution(tmp_path, "taxi", 12, 2_000)
    _execution(tmp_path, "taxi", 30, 1_500)  # a higher id is not newer
    assert trainer.transform_outputs(str(tmp_path)) == newest


def test_a_missing_scale_run_says_which_command_makes_it(tmp_path):
    with pytest.raises(SystemExit, match="run `python -m benchmarks scale --rows N` first"):
        trainer.transform_outputs(str(tmp_path))


def test_the_result_line_is_read_from_the_log(tmp_path):
    log = tmp_path / "trainer.log"
    result = {"run_fn_seconds": 1.5, "gc_seconds": 0.1, "longest_gc_seconds": 0.05, "exported": "gbt"}
    log.write_text("INFO: training\n" + trainer.RESULT + json.dumps(result) + "\nmore\n")
    assert trainer._result(str(log)) == result
    log.write_text("INFO: training\n")
    with pytest.raises(SystemExit, match="printed no result"):
        trainer._result(str(log))
