"""Pure helpers of the benchmarks: percentiles, tables, Beam mode overrides, process-tree RSS."""

from __future__ import annotations

import os
import sys

import pytest

from benchmarks import beam, measure


def test_percentile_interpolates_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert measure.percentile(values, 0) == 1.0
    assert measure.percentile(values, 50) == 2.5
    assert measure.percentile(values, 100) == 4.0
    assert measure.percentile(list(range(101)), 99) == 99
    with pytest.raises(ValueError):
        measure.percentile([], 50)


def test_table_aligns_numbers_right_and_text_left():
    text = measure.table(["name", "seconds"], [["a", 1.5], ["longer", 12.25], ["c", None]])
    lines = text.splitlines()
    assert lines[0].startswith("name  ")
    assert lines[1] == "------  -------"
    assert lines[2] == "a         1.500"
    assert lines[3] == "longer     12.2"
    assert lines[4] == "c"


def test_mode_overrides_make_a_valid_config():
    from pipeline.config import load_config

    for mode in ("in_memory", "multi_threading", "multi_processing"):
        config = load_config(None, beam.mode_overrides(mode, workers=2))
        assert config.beam.direct_running_mode == mode
        assert config.beam.direct_num_workers == (1 if mode == "in_memory" else 2)
    config = load_config(None, beam.mode_overrides("portable", 2, "localhost:1", "localhost:2"))
    args = config.beam.args()
    assert args[0] == "--runner=PortableRunner"
    assert "--environment_type=EXTERNAL" in args and "--environment_config=localhost:2" in args
    assert "--job_endpoint=localhost:1" in args


def test_run_measures_a_child_and_its_memory(tmp_path):
    # The child holds ~200 MB for a second: both memory figures must see it.
    code = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.2)"
    result = measure.run([sys.executable, "-c", code], log_path=str(tmp_path / "log"), interval=0.1)
    assert result.returncode == 0
    assert result.seconds >= 1.2
    assert result.peak_process_rss > 200 * 2**20
    assert result.peak_tree_rss > 200 * 2**20
    assert measure.run([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3


def test_tree_rss_counts_this_process():
    assert measure._tree_rss(os.getpid()) > 0
    assert "cores" in measure.machine() and "loadavg" in measure.machine()
